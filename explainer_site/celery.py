"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in each app's ``tasks.py``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "explainer_site.settings.local")

app = Celery("explainer_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
