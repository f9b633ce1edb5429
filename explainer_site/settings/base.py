"""Settings shared by every environment; everything that differs between machines comes from the environment."""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("EXPLAINER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-key-change-me-in-production-0123456789abcdef")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: the API docs load nothing from the internet
    "accounts",
    "datasets",
    "explanations",
    "uploaded_models",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # before WhiteNoise, so static files carry the policy too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "explainer_site.urls"
WSGI_APPLICATION = "explainer_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write the same file: WAL lets readers go on while one writes, and
    # IMMEDIATE transactions plus a timeout make writers queue instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.NotOnlyWhitespaceValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "datasets:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"  # files are only ever served through views that check their owner
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads: streamed to disk, bounded.
EXPLAINER_MAX_UPLOAD_MB = int(os.environ.get("EXPLAINER_MAX_UPLOAD_MB", "200"))
# Models users bring (uploaded_models): the file limit is EXPLAINER_MAX_UPLOAD_MB, as for datasets.
EXPLAINER_MAX_UPLOADED_MODELS_PER_USER = int(os.environ.get("EXPLAINER_MAX_UPLOADED_MODELS_PER_USER", "20"))
EXPLAINER_MAX_ROWS = int(os.environ.get("EXPLAINER_MAX_ROWS", "2000000"))
EXPLAINER_MAX_COLUMNS = int(os.environ.get("EXPLAINER_MAX_COLUMNS", "2000"))
EXPLAINER_SYNC_INGEST_MB = float(os.environ.get("EXPLAINER_SYNC_INGEST_MB", "20"))  # bigger uploads are read by a worker
# Ingest bounds (issue 15): pixels decoded for one image ZIP (counted from the headers, before decoding), the
# pixels an image ZIP may hold and still be read in the web request (more, or over 2,000 images, goes to a
# worker), and the worker's time (soft; hard = soft + 60 s) and extra memory for reading one upload.
EXPLAINER_IMAGE_MAX_PIXELS = int(os.environ.get("EXPLAINER_IMAGE_MAX_PIXELS", "500000000"))
EXPLAINER_SYNC_IMAGE_PIXELS = int(os.environ.get("EXPLAINER_SYNC_IMAGE_PIXELS", "20000000"))
# Pixel columns an image ZIP's images keep (height x width x channels) before they are shrunk: a 64 x 64 colour
# image; EXPLAINER_MAX_COLUMNS, the limit for CSVs, would shrink colour images to 25 x 25.
EXPLAINER_IMAGE_PIXEL_COLUMNS = int(os.environ.get("EXPLAINER_IMAGE_PIXEL_COLUMNS", str(64 * 64 * 3)))
EXPLAINER_INGEST_SOFT_TIME_LIMIT = int(os.environ.get("EXPLAINER_INGEST_SOFT_TIME_LIMIT", "600"))
EXPLAINER_INGEST_MAX_MEMORY_MB = int(os.environ.get("EXPLAINER_INGEST_MAX_MEMORY_MB", "4096"))
EXPLAINER_MAX_TRAIN_ROWS = int(os.environ.get("EXPLAINER_MAX_TRAIN_ROWS", "100000"))  # bigger tables train on a sample
EXPLAINER_MAX_TEST_ROWS = int(os.environ.get("EXPLAINER_MAX_TEST_ROWS", "50000"))
EXPLAINER_MAX_JOB_ROWS = int(os.environ.get("EXPLAINER_MAX_JOB_ROWS", "5000"))
EXPLAINER_BATCH_SIZE = int(os.environ.get("EXPLAINER_BATCH_SIZE", "16"))  # rows per explain call: the engines call the model once per batch
# A classifier's rows go to at least this many explain steps per explainer (when it has that many rows), so the
# worker processes share even a three-row job instead of one of them explaining it all while the other waits.
EXPLAINER_BATCHES_MIN = int(os.environ.get("EXPLAINER_BATCHES_MIN", "3"))
# Trust scores: how many times each explainer reruns with other seeds to measure its stability, when a job does not say.
EXPLAINER_TRUST_STABILITY_RUNS = int(os.environ.get("EXPLAINER_TRUST_STABILITY_RUNS", "5"))
# Image jobs, when they do not say: images per explainer checked on the randomised network (sanity), and training
# images explained and retrained on for ROAR (0 turns either off).
EXPLAINER_TRUST_SANITY_IMAGES = int(os.environ.get("EXPLAINER_TRUST_SANITY_IMAGES", "3"))
EXPLAINER_TRUST_ROAR_IMAGES = int(os.environ.get("EXPLAINER_TRUST_ROAR_IMAGES", "200"))
# Sharing the workers: an account may have EXPLAINER_MAX_ACTIVE_JOBS_PER_USER jobs queued or running at once (429
# beyond), and one job may cost at most EXPLAINER_MAX_JOB_COST model evaluations (rows x classifiers x samples per
# explainer x (1 + stability reruns); 0 turns a limit off). Between users the queue itself is fair: see
# EXPLAINER_STEPS_IN_FLIGHT_PER_USER below.
EXPLAINER_MAX_ACTIVE_JOBS_PER_USER = int(os.environ.get("EXPLAINER_MAX_ACTIVE_JOBS_PER_USER", "3"))
EXPLAINER_MAX_JOB_COST = int(os.environ.get("EXPLAINER_MAX_JOB_COST", str(100_000_000)))
# The what-if editor: a job holds at most EXPLAINER_SCENARIOS_PER_JOB edited rows, and an account may ask for
# EXPLAINER_SCENARIOS_PER_HOUR of them an hour (429 beyond; 0 turns a cap off). Workers of the "interactive" queue
# compute them, so a long job never keeps a person waiting for one.
EXPLAINER_SCENARIOS_PER_JOB = int(os.environ.get("EXPLAINER_SCENARIOS_PER_JOB", "100"))
EXPLAINER_SCENARIOS_PER_HOUR = int(os.environ.get("EXPLAINER_SCENARIOS_PER_HOUR", "120"))
# Looks inside an image job's CNN (feature visualisations, neuron groups, adversarial examples) one account may ask
# for an hour (429 beyond; 0 turns the cap off); each runs on the "gpu" queue.
EXPLAINER_NETWORK_VIEWS_PER_HOUR = int(os.environ.get("EXPLAINER_NETWORK_VIEWS_PER_HOUR", "120"))
FILE_UPLOAD_HANDLERS = [
    "datasets.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable API answered a browser's Accept header with HTML pages, errors included, on /api/
    # (and its inline scripts are blocked by the CSP). The docs are at /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [  # JSON strictly (no NaN, bounded numbers and depth): explainer_site/parsers.py
        "explainer_site.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "explainer_site.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Explainer API",
    "DESCRIPTION": "Upload tables, train classifiers and explain their predictions with LIME, Anchors and SHAP.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from validator.swagger.io: the docs page talks to this server only.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# Content-Security-Policy on every response (django-csp): scripts and styles only from this server's files, so an
# injected <script>, on*= handler or style attribute does nothing. Templates keep their code in static/js/ and pass
# data in data-* attributes or json_script blocks; plot SVGs get a stricter policy of their own (see plot_file).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True

# Celery: a broker that needs no server by default (kombu's filesystem transport under var/).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Connect and publish time out in seconds, so a dead broker means "queue unavailable" (503), not a hung request.
    # A message unacknowledged for visibility_timeout goes back to the queue: longer than any one step may run
    # (its hard time limit), so a live step is never delivered twice; a dead worker's steps come back sooner,
    # through the sweeper (EXPLAINER_JOB_STALE_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "900")) + 360,
                                       "socket_connect_timeout": 3, "socket_timeout": 15}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process imports the steps' code as it starts (explanations.tasks.step_work_import): a few seconds, more
# on a busy machine, beyond Celery's 4 s default for a process to come up.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = float(os.environ.get("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "60"))
CELERY_TASK_DEFAULT_QUEUE = "celery"
# A job is a pipeline of small steps (explanations.pipeline), so the limits are those of one step: training one
# classifier, or explaining one batch of rows.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "900"))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 120
# ... and a job's own budget: the seconds of all its steps together (on every worker), so a job too big for this
# server ends failed with the reason instead of filling the workers for hours in steps that are each short.
EXPLAINER_JOB_TIME_LIMIT = int(os.environ.get("EXPLAINER_JOB_TIME_LIMIT", str(4 * 3600)))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The stale-job sweeper (run by every worker every EXPLAINER_JOB_SWEEP_SECONDS, and by `manage.py jobs_sweep`):
# a running step beats its heartbeat every EXPLAINER_HEARTBEAT_SECONDS; one silent for EXPLAINER_JOB_STALE_SECONDS
# lost its worker; a step queued for EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS and never started lost its message. Both
# are queued again, until a step has been started EXPLAINER_JOB_MAX_ATTEMPTS times; then the job fails with the reason.
# An account has at most EXPLAINER_STEPS_IN_FLIGHT_PER_USER steps in the queue or running at once: the rest wait
# in the database and follow as these finish, behind other users' steps (fair sharing comes from the queue).
EXPLAINER_HEARTBEAT_SECONDS = float(os.environ.get("EXPLAINER_HEARTBEAT_SECONDS", "10"))
EXPLAINER_JOB_STALE_SECONDS = int(os.environ.get("EXPLAINER_JOB_STALE_SECONDS", "45"))
EXPLAINER_STEPS_IN_FLIGHT_PER_USER = int(os.environ.get("EXPLAINER_STEPS_IN_FLIGHT_PER_USER", "4"))
EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS = int(os.environ.get("EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS", str(6 * 3600)))
EXPLAINER_JOB_MAX_ATTEMPTS = int(os.environ.get("EXPLAINER_JOB_MAX_ATTEMPTS", "3"))
EXPLAINER_JOB_SWEEP_SECONDS = float(os.environ.get("EXPLAINER_JOB_SWEEP_SECONDS", "15"))

# Shared by web processes (login rate limits): Redis when the broker is Redis, else per-process memory.
CACHE_URL = os.environ.get("CACHE_URL") or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}
    if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Logins: one lockout (django-axes) for every login form, the site's and the admin's, keyed by username + client
# address only, so failures against one account or from one client lock nobody else out. The client address is
# REMOTE_ADDR unless EXPLAINER_TRUSTED_PROXY_COUNT proxies in front append it to EXPLAINER_CLIENT_IP_HEADER.
# Sign-up attempts (refused ones too) are counted per address: EXPLAINER_SIGNUP_PER_HOUR (0 turns it off).
EXPLAINER_LOGIN_MAX_FAILURES = int(os.environ.get("EXPLAINER_LOGIN_MAX_FAILURES", "5"))
EXPLAINER_LOGIN_LOCKOUT_MINUTES = int(os.environ.get("EXPLAINER_LOGIN_LOCKOUT_MINUTES", "15"))
EXPLAINER_TRUSTED_PROXY_COUNT = int(os.environ.get("EXPLAINER_TRUSTED_PROXY_COUNT", "0"))
EXPLAINER_CLIENT_IP_HEADER = os.environ.get("EXPLAINER_CLIENT_IP_HEADER", "X-Forwarded-For")
EXPLAINER_SIGNUP_PER_HOUR = int(os.environ.get("EXPLAINER_SIGNUP_PER_HOUR", "5"))
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last: it turns a locked attempt's page into the 429 answer
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "accounts.lockout.LoginLockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = "accounts.lockout.login_failure_limit"  # read EXPLAINER_LOGIN_* at each call
AXES_COOLOFF_TIME = "accounts.lockout.login_cool_off"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True  # each try while locked restarts the wait the page states
AXES_USERNAME_CALLABLE = "accounts.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "accounts.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.views.login_locked"
AXES_ENABLE_ADMIN = False  # the cache handler writes no AccessAttempt rows: an admin page of them would stay empty

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"matplotlib": {"level": "WARNING"}, "PIL": {"level": "WARNING"}},
}
