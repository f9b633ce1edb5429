"""Production: secrets and hosts must come from the environment; HTTPS hardening switched on by env.

Files (uploads, fitted models, plots, ZIPs) go through Django's storage API: a volume shared by web and
workers by default, or S3-compatible storage when ``EXPLAINER_S3_BUCKET`` is set (needs django-storages[s3]),
so workers on other machines need no shared disk.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SPECTACULAR_SETTINGS, STORAGES, env_bool

if not os.environ.get("DJANGO_SECRET_KEY"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY in the environment for production.")

DEBUG = False
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# drf-spectacular adds its schema-generation warnings to `check --deploy`; they are about the API
# documentation's completeness, not about deployment safety, so they do not gate a release.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "ENABLE_DJANGO_DEPLOY_CHECK": False}

S3_BUCKET = os.environ.get("EXPLAINER_S3_BUCKET", "").strip()
if S3_BUCKET:
    STORAGES = {
        **STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": os.environ.get("EXPLAINER_S3_ENDPOINT_URL") or None,
                "region_name": os.environ.get("EXPLAINER_S3_REGION") or None,
                "default_acl": None,  # private objects; the app serves them through owner-checked views
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
