"""Deployment files: the compose file validates and has the expected shape; production settings pass
Django's deploy checks."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.stack import REPO_ROOT

pytestmark = pytest.mark.integration

APP_SERVICES = ("migrate", "web", "worker", "worker-gpu")


def compose_config(*args: str) -> subprocess.CompletedProcess:
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: run `bash scripts/test_deps.sh` (make test does)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRES_", "EXPLAINER_"))}
    return subprocess.run([docker_compose, "-f", str(REPO_ROOT / "docker-compose.yml"), *args, "config"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_compose_file_validates_with_the_example_env():
    result = compose_config("--env-file", str(REPO_ROOT / ".env.example"))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {*APP_SERVICES, "redis", "postgres"}

    # Web and workers: one image (the GPU worker is the same Dockerfile with a CUDA torch build arg).
    assert {services[s]["build"]["context"] for s in APP_SERVICES} == {str(REPO_ROOT)}
    assert services["web"]["image"] == services["worker"]["image"] == services["migrate"]["image"]
    assert services["worker-gpu"]["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][services["worker"]["command"].index("-Q") + 1] == "celery,interactive"
    assert services["worker-gpu"]["command"][services["worker-gpu"]["command"].index("-Q") + 1] == "gpu"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]

    for name in ("web", "worker", "worker-gpu", "redis", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "explainer_site.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "media:/app/var/media:rw" in services[name]["volumes"], services[name]["volumes"]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "media" in config["volumes"]


def test_compose_refuses_to_start_without_secrets():
    result = compose_config()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr


def test_dockerfile_builds_one_image_for_web_and_workers():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_VARIANT" in dockerfile and "download.pytorch.org/whl/${TORCH_VARIANT}" in dockerfile
    assert "collectstatic" in dockerfile and "USER app" in dockerfile
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git", ".env"} <= set(ignored)


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "EXPLAINER_S3"))}
    base.update({"DJANGO_SETTINGS_MODULE": "explainer_site.settings.production", "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    base.update(env)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=REPO_ROOT, env=base, capture_output=True, text=True, timeout=120)


def test_production_settings_pass_the_deploy_check(tmp_path):
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "explainer.example.org",
           "EXPLAINER_VAR_DIR": str(tmp_path)}
    result = deploy_check(**env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr

    # The check has teeth: HTTPS switched off by env is reported.
    result = deploy_check(**env, DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_COOKIES="false")
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W012" in result.stderr


def test_production_settings_need_a_secret_and_switch_to_s3_by_env(tmp_path):
    result = deploy_check(EXPLAINER_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr

    code = ("from django.conf import settings; s = settings.STORAGES['default']; "
            "print(s['BACKEND'], s['OPTIONS']['bucket_name'], s['OPTIONS']['endpoint_url'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "explainer_site.settings.production", "DJANGO_SECRET_KEY": "x" * 60,
                "EXPLAINER_VAR_DIR": str(tmp_path), "EXPLAINER_S3_BUCKET": "explainer-media",
                "EXPLAINER_S3_ENDPOINT_URL": "http://minio:9000"})
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["storages.backends.s3.S3Storage", "explainer-media", "http://minio:9000"]
