# One image for the web server and the Celery workers (docker-compose.yml gives each its command).
# TORCH_VARIANT picks the PyTorch wheel: "cpu" (small, the default) or a CUDA build such as "cu126"
# for the GPU worker.
FROM python:3.11-slim-bookworm

ARG TORCH_VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=explainer_site.settings.production \
    EXPLAINER_VAR_DIR=/app/var \
    MEDIA_ROOT=/app/var/media \
    STATIC_ROOT=/app/staticfiles \
    NUMBA_CACHE_DIR=/app/var/numba

# libgomp: OpenMP for scikit-learn and torch.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app

WORKDIR /app
COPY requirements.txt ./
RUN pip install --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" -r requirements.txt \
    && pip install "django-storages[s3]>=1.14"

COPY . .
# Static files are collected at build time and served by WhiteNoise; the key only lets settings load.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "explainer_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
