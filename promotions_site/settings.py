"""Settings for the promotions service: one module, configured from environment variables.

Unset variables give the embedded default (SQLite file, in-process jobs) so a fresh laptop runs the
app with no services; production sets DATABASE_URL to PostgreSQL and turns DEBUG off.
"""

import ipaddress
import os
import tempfile
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from promotions_site.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdefghijklmnop"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "promotions_site.apps.ConsoleAdminConfig",  # django.contrib.admin, with the console as its site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "promotions",
    "wallets",
    "redemptions",
    "promotions_site",
]

MIDDLEWARE = [
    "promotions_site.middleware.LeadingSlashesMiddleware",
    "promotions_site.middleware.RequestIdMiddleware",
    "promotions_site.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "promotions_site.middleware.JsonErrorMiddleware",
    "promotions_site.limits.RequestBodyLimitMiddleware",
    "promotions_site.middleware.NulInUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "promotions_site.admin_format.OrgTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The middleware the admin and the pages need and the API does not (promotions_site/handlers.py): the
# API authenticates each request by its API client, never by a session or cookie (no session, no
# logged-in user, no messages), its DRF views are exempt from CSRF, and it speaks epoch milliseconds
# and offsets, not the staff's time zone. On the API's paths they read and write nothing.
ADMIN_ONLY_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "promotions_site.admin_format.OrgTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)
# What the API's paths go through: the request id, the access log, the security headers (and
# X-Frame-Options, Content-Length) every answer carries, the JSON error envelope, the body cap.
API_MIDDLEWARE = [name for name in MIDDLEWARE if name not in ADMIN_ONLY_MIDDLEWARE]
# The paths served through API_MIDDLEWARE: the REST API's (not /api/docs/: the Swagger page uses CSRF).
API_MIDDLEWARE_PATH_PREFIXES = ("/api_gateway/", "/v2/", "/v3/")

ROOT_URLCONF = "promotions_site.urls"
WSGI_APPLICATION = "promotions_site.wsgi.application"
ASGI_APPLICATION = "promotions_site.asgi.application"

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

# --- Database -------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# A pooler between the app and PostgreSQL: unset (direct connections, or PgBouncer in session mode) or
# "transaction" (PgBouncer's pool_mode=transaction: each transaction may run on another server
# connection, so nothing may outlive a transaction; docs/operations.md, "PgBouncer").
DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "")
if DATABASE_POOLER not in {"", "transaction"}:
    raise ImproperlyConfigured("DATABASE_POOLER must be unset or transaction.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, checking a persistent connection only after it sat idle (promotions_site/postgresql).
    DATABASES["default"]["ENGINE"] = "promotions_site.postgresql"
    if DATABASE_POOLER == "transaction":
        # Nothing session-scoped. Parameters bound in the client and no prepared statements
        # (Django's defaults, pinned here against a DATABASE_URL query string): with server-side
        # binding psycopg prepares a query it has run prepare_threshold times, on one server
        # connection, and runs it later on another that never saw it. No server-side cursors:
        # outside a transaction Django declares them WITH HOLD, and the next FETCH may reach
        # another server connection. No `options` startup parameter: PgBouncer refuses it, so the
        # statement timeout is the database role's (ALTER ROLE ... SET statement_timeout).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            prepare_threshold=None, server_side_binding=False
        )
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        # A runaway query must not hold a connection (and its locks) forever.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c statement_timeout={int(os.environ.get('DB_STATEMENT_TIMEOUT_MS', '30000'))}"
        )
        # Prepared statements, but only those asked for (`server_bound_cursor(prepared=True)`: the
        # redemption's call and evaluate's two): Django's default (None) refuses even those, and
        # psycopg's automatic preparation after this many runs of a query never comes.
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
    # An unreachable database fails a request within seconds (a JSON 503), instead of hanging it.
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_promotions")}
else:
    # The embedded SQLite serves the demo while a bulk job writes in a background thread. SQLite has
    # one writer at a time; these make the others wait their turn instead of failing:
    # - WAL: readers (the job page, the admin) read the last commit while a writer writes, and a
    #   writer never waits for readers.
    # - BEGIN IMMEDIATE: a transaction takes the write lock when it starts, waiting for it under the
    #   busy timeout. A deferred one (the default) reads first and fails at once ("database is
    #   locked", no waiting) when it then wants to write while another connection holds the lock.
    # - the busy timeout: how long a writer waits for the lock (a bulk-job chunk holds it a second
    #   or so: BULK_JOB_CHUNK_SIZE below).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=int(os.environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
    _sqlite_file = DATABASES["default"]["NAME"]
    if _sqlite_file and _sqlite_file != ":memory:":
        # Tests on a file too, not Django's in-memory default: a shared-cache memory database locks
        # whole tables with no busy timeout, so a test reading while a job thread writes gets
        # "database table is locked". One file per test process, in the temporary directory, so two
        # runs in one checkout never share (or delete) each other's.
        _sqlite_path = Path(_sqlite_file)
        DATABASES["default"]["TEST"] = {
            "NAME": str(Path(tempfile.gettempdir()) / f"test_{_sqlite_path.stem}_{os.getpid()}.sqlite3")
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "promotions.User"

# --- Caches (rate limits, sign-in throttles) -------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Deployments (or a benchmark's runs) sharing one Redis keep their counts apart by prefix.
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background jobs -------------------------------------------------------------------------------
# Unset: jobs run in-process (the embedded default). Set to redis://... or amqp://... for Celery workers.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Without a broker every task runs in the caller's process at once (same code, no worker needed).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A chunk is acknowledged when done, so a crashed worker's chunk is delivered again (chunks are idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis only (RabbitMQ redelivers as soon as the dead worker's connection drops): a task a worker took
# and never acknowledged (the whole worker died) is delivered again after this many seconds. A chunk
# delivered twice is harmless, so this can be much shorter than kombu's default hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600"))
}
CELERY_TASK_DEFAULT_QUEUE = "promotions"
CELERY_BEAT_SCHEDULE: dict = {
    # `celery -A promotions_site beat`: ACTIVE earned promotions past their validTill become EXPIRED.
    "expire-earned-promotions": {
        "task": "wallets.tasks.earned_promotions_expire_task",
        "schedule": crontab(minute=0),  # hourly, on the hour
    },
    # Idempotency-Key rows past their retention are deleted (promotions_site/idempotency.py).
    "purge-idempotency-keys": {
        "task": "promotions.tasks.idempotency_keys_purge_task",
        "schedule": crontab(minute=30),  # hourly, at half past
    },
    # The admin's stored customer lists no longer needed (wallets/services/bulk_job_inputs.py).
    "purge-bulk-job-inputs": {
        "task": "wallets.tasks.bulk_job_inputs_purge_task",
        "schedule": crontab(minute=45),  # hourly, at a quarter to
    },
    # Open carts past their lock TTL give back their reservations (docs/cart-locks.md); reads release
    # them too, this keeps the counters tidy for carts nobody reads again.
    "expire-cart-locks": {
        "task": "redemptions.tasks.cart_locks_expire_task",
        "schedule": crontab(),  # every minute
    },
    # The dashboard's daily summaries: each org's closed days (redemptions/summaries.py).
    "refresh-redemption-days": {
        "task": "redemptions.tasks.redemption_days_refresh_task",
        "schedule": crontab(minute=5),  # hourly: an org's day closes at its own midnight
    },
}
# Bulk jobs of the admin (issue, bulk earn): up to this many customers run at once in the request;
# larger ones run in chunks on Celery workers, or without a broker in-process ("thread": in the
# background, so the progress bar moves; "sync": before the request returns).
BULK_JOB_INLINE_MAX = int(os.environ.get("BULK_JOB_INLINE_MAX", "1000"))
BULK_JOBS_IN_PROCESS = os.environ.get("BULK_JOBS_IN_PROCESS", "thread")
# Customers per chunk, each chunk one transaction. SQLite has one writer at a time and the others wait
# for it (the busy timeout above): small chunks there keep a till's redemption or an admin save
# waiting for a running job a second or so, not the tens of seconds a PostgreSQL-sized chunk takes.
BULK_JOB_CHUNK_SIZE = int(
    os.environ.get("BULK_JOB_CHUNK_SIZE")
    or (200 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 2000)
)

# Promo-code generation (docs/codes.md): up to this many codes are written before the request returns;
# more run in the background like the bulk jobs above (Celery, or in-process per BULK_JOBS_IN_PROCESS).
PROMO_CODES_INLINE_MAX = int(os.environ.get("PROMO_CODES_INLINE_MAX", "10000"))
# Codes one request may ask for (Capillary's 10 million; a deployment may lower it).
PROMO_CODES_COUNT_MAX = int(os.environ.get("PROMO_CODES_COUNT_MAX", "10000000"))
# Codes per chunk, each chunk one transaction (smaller on SQLite for the same reason as bulk jobs).
PROMO_CODE_CHUNK_SIZE = int(
    os.environ.get("PROMO_CODE_CHUNK_SIZE")
    or (2000 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 50_000)
)

# --- Internationalisation --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# Moments with their zone (`2026-12-03 19:45 CET`): promotions_site/formats/en/formats.py.
FORMAT_MODULE_PATH = ["promotions_site.formats"]
# The server time zone: ISO timestamps in responses (eventTimeISO, validTillISO) are rendered in it,
# as Capillary renders them in its cluster's zone. Orgs have their own zone for end-of-day rules.
TIME_ZONE = os.environ.get("SERVER_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# --- Admin uploads (the issue and bulk-earn screens' customer lists) -------------------------------
# A file larger than this is refused with a form error, dropped as its bytes pass the cap (never stored
# whole). 16 MiB holds a million customer ids.
ADMIN_UPLOAD_MAX_BYTES = int(os.environ.get("ADMIN_UPLOAD_MAX_BYTES", str(16 * 1024 * 1024)))
FILE_UPLOAD_HANDLERS = [
    "promotions_site.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# A bulk job's input file is offered on its page for this many days after the job finished, then deleted.
BULK_JOB_INPUT_RETENTION_DAYS = int(os.environ.get("BULK_JOB_INPUT_RETENTION_DAYS", "30"))

# --- API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "promotions_site.auth.ApiClientBasicAuthentication",
        "promotions_site.auth.ApiClientTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["promotions_site.auth.HasApiAccess"],
    "DEFAULT_RENDERER_CLASSES": ["promotions_site.shapes.ShapedJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["promotions_site.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "promotions_site.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["promotions_site.throttling.ApiClientRateThrottle"],
    # Proxies in front of the app that append to X-Forwarded-For, counted (see TRUSTED_PROXIES below).
    # 0, the default: the client's address is REMOTE_ADDR and X-Forwarded-For is never read.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    "DEFAULT_SCHEMA_CLASS": "promotions_site.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

# The proxies in front of the app named by address or network instead of counted: the client's address
# is the nearest X-Forwarded-For hop that is not one of them, read only when REMOTE_ADDR is one of them.
# Neither this nor NUM_PROXIES is implied by BEHIND_TLS_PROXY: a header any client can write is trusted
# only when the operator says who writes it (docs/operations.md, "Client addresses").
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _network in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_network!r} is not an address or network.") from exc
if TRUSTED_PROXIES and REST_FRAMEWORK["NUM_PROXIES"]:
    raise ImproperlyConfigured("Set NUM_PROXIES or TRUSTED_PROXIES, not both.")

# Idempotency-Key: how long the answer kept for a key is replayed (the IETF draft asks servers to publish it).
IDEMPOTENCY_KEY_RETENTION_HOURS = 72
# --- Limits (docs/api.md, "Limits and rate limiting") ------------------------------------------------------
# A request body on an API path larger than this is refused with 413 before it is read.
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(1024 * 1024)))
# Free-form JSON objects stored as sent (eventDetails.eventPayload, customFieldValues, earningCriteria,
# tenderCondition, ...): at most this many bytes each, serialized.
API_MAX_FREE_JSON_BYTES = int(os.environ.get("API_MAX_FREE_JSON_BYTES", "16384"))
# Customer ids per issueBulk request (each request locks its customers in one transaction).
ISSUE_BULK_MAX_CUSTOMERS = int(os.environ.get("ISSUE_BULK_MAX_CUSTOMERS", "10000"))
# "N/period" (period: s, m, h, d, optionally with a count: 5m); "off" disables the limit.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "6000/m")  # per API client, every API call
# Failed sign-ins (API clients and admin users apart): per username from one address, per address,
# and per username from every address, beyond which only addresses that have not failed are checked.
LOGIN_FAILURE_LIMIT_PER_USERNAME = os.environ.get("LOGIN_FAILURE_LIMIT_PER_USERNAME", "10/5m")
LOGIN_FAILURE_LIMIT_PER_IP = os.environ.get("LOGIN_FAILURE_LIMIT_PER_IP", "30/5m")
LOGIN_FAILURE_CEILING_PER_USERNAME = os.environ.get("LOGIN_FAILURE_CEILING_PER_USERNAME", "100/h")
# Promo codes looked up that the org does not have (GET code, link; promotions/code_guard.py): per API
# client, and per customer when the call names one. Past either, code look-ups answer 429.
CODE_GUESS_LIMIT_PER_CLIENT = os.environ.get("CODE_GUESS_LIMIT_PER_CLIENT", "100/10m")
CODE_GUESS_LIMIT_PER_CUSTOMER = os.environ.get("CODE_GUESS_LIMIT_PER_CUSTOMER", "10/10m")

# API client secrets are stored as HMAC-SHA256 under this key (promotions_site/client_secrets.py).
# Changing it without naming the old one in the fallbacks stops every API client's secret from verifying:
# rotating SECRET_KEY while this is unset is such a change (docs/operations.md, "API client secrets").
API_CLIENT_SECRET_KEY = os.environ.get("API_CLIENT_SECRET_KEY") or SECRET_KEY
# Earlier keys that still verify; a secret checked under one is rewritten under the current key.
API_CLIENT_SECRET_KEY_FALLBACKS = env_list("API_CLIENT_SECRET_KEY_FALLBACKS", [])
# Secrets stored before the keyed hash (PBKDF2, ~0.4 s each) still verify, and are rewritten on their
# next success: slow checks running or failed, all clients together, beyond which one is refused (429).
# Ten a minute: a flood aimed at such a client costs a few CPU-seconds a minute, and a till that
# fails once does not shut out the others.
LEGACY_SECRET_CHECK_LIMIT = os.environ.get("LEGACY_SECRET_CHECK_LIMIT", "10/m")

# OAuth access tokens: lifetime bounds (each API client picks its own within them).
OAUTH_TOKEN_DEFAULT_TTL_SECONDS = 300
OAUTH_TOKEN_MAX_TTL_SECONDS = 3600

SPECTACULAR_SETTINGS = {
    "TITLE": "Promotions service API",
    "DESCRIPTION": (
        "A drop-in replacement for Capillary's cart-promotion APIs. Authenticate with HTTP Basic "
        "(API client username and password, or the MD5 hex digest of the password) or with an OAuth "
        "token from `POST /v3/oauth/token/generate`, sent as `X-CAP-API-OAUTH-TOKEN` or "
        "`Authorization: Bearer`. The credentials decide the organization: another org's objects "
        'answer 404. Errors use the documented envelope: `{"errors": [{"code", "message"}]}` on '
        'v1 and v3 calls, `{"warnings": [], "errors": [{"status": false, "code", "message"}]}` on v2 calls.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "promotions_site.schema.allow_empty_optional_query_parameters",
        "promotions_site.schema.document_negotiation_errors",
        "promotions_site.schema.require_request_bodies",
    ],
    # One component per choice set that several serializers share (else drf-spectacular guesses names).
    "ENUM_NAME_OVERRIDES": {
        "PromotionTypeEnum": ["POS", "CODE", "CUSTOMER", "EARNING", "REWARD"],
        "RestrictionKpiEnum": ["REDEMPTION", "TRANSACTION", "DISCOUNT"],
        "EarnedFromTypeEnum": ["BULK_ISSUE", "ACTIVITY", "MILESTONE", "REWARD"],
        "ConditionTypeEnum": "promotions.serializers.CONDITION_TYPES",
        "ActionTypeEnum": "promotions.serializers.ACTION_TYPES",
        # The `type` of both a TENDER condition and a TENDER action (the other variants' are their own).
        "TenderTypeEnum": ["TENDER"],
        "ComparisonOperatorEnum": ["EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL"],
        # The `operator` of a product criteria and of storeCriteria.
        "CriteriaOperatorEnum": ["IN", "NOT_IN"],
        "DiscountTypeEnum": ["ABSOLUTE", "PERCENTAGE"],
        # A limit's `frequency` and a time window's `repeatFrequency`.
        "RepeatFrequencyEnum": "promotions.serializers.REPEAT_FREQUENCIES",
        "PromotionModeEnum": ["DISCOUNT", "PAYMENT_VOUCHER"],
    },
}

# --- Security (production-safe when DEBUG is off) --------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", True) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and the Prometheus scraper talk plain HTTP to a worker (TLS ends at the load balancer).
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# `preload` only lets the domain be submitted to the browsers' preload list (hstspreload.org); it is
# part of what `check --deploy` asks for. SECURE_HSTS_PRELOAD=0 leaves it out.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Paths whose errors are rendered as JSON (never Django's HTML pages).
API_PATH_PREFIXES = ("/api_gateway/", "/v2/", "/v3/", "/api/")

# --- Operations: logs, health, metrics ---------------------------------------------------------------
# One JSON object per line (json, the default when DEBUG is off) or a readable line (plain).
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = logging_config(log_format=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))

# /health/ready: how long each check (database, broker) may take before it counts as failed.
HEALTH_CHECK_TIMEOUT_SECONDS = float(os.environ.get("HEALTH_CHECK_TIMEOUT_SECONDS", "2"))

# /metrics: a bearer token and/or the networks a scraper may come from (REMOTE_ADDR); each one set
# must match. With neither, /metrics is open in DEBUG and refused (403) otherwise.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: {_network!r} is not an address or network."
        ) from _error
