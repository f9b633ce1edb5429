"""Unit tests: services run in-process (eager Celery), fast password hashing, a throwaway media root."""

import tempfile

from .base import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = "memory://"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="explainer-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EXPLAINER_TRUST_STABILITY_RUNS = 0  # unit tests that measure stability ask for it (params["trust"]) with few reruns
EXPLAINER_TRUST_SANITY_IMAGES = 0  # likewise the image sanity check and ROAR (tests/explanations/test_image_trust_job.py)
EXPLAINER_TRUST_ROAR_IMAGES = 0
EXPLAINER_HEARTBEAT_SECONDS = 0  # eager steps run in the test's thread and transaction: no heartbeat thread
