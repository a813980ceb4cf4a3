"""Settings shared by every mode; values that differ per deployment come from the environment.

Modes: `local` (the embedded default: SQLite under var/, tasks inline), `test`, and
`production` (PostgreSQL, Redis, HTTPS). See the README's configuration table.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

SECRET_KEY = env_str("SECRET_KEY", "insecure-local-only-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "simple_history",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "trial",
    "patients",
    "treatments",
    "assessments",
    "surgery",
    "biobank",
    "followup",
    "visits",
    "exchange",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # The access matrix (trial/access.py): every URL's rule, before any view runs.
    "trial.middleware.AccessMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Account security (trial/accounts.py): the idle timeout, then the second factor.
    "trial.accounts.IdleSessionMiddleware",
    "trial.accounts.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trial.context_processors.study",
            ],
        },
    },
]

# The embedded default is a SQLite file under var/; PostgreSQL is the database of record.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'plm_edc.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several writers (runserver threads, a worker) share the file: wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "patients:patient-list"
LOGOUT_REDIRECT_URL = "login"


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, not {value}.")
    return value


# Account security (trial/accounts.py, README "Account security").
# django-axes checks every password given to authenticate() (login page, API token) before the
# other backends: after AXES_FAILURE_LIMIT failures for one user name from one address, that pair is
# refused for AXES_COOLOFF_MINUTES (each further try restarts the wait). Locking by the pair,
# not by the name alone, keeps a stranger from locking a colleague out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _positive("AXES_FAILURE_LIMIT", env_int("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(
    minutes=_positive("AXES_COOLOFF_MINUTES", env_int("AXES_COOLOFF_MINUTES", 30))
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The lockout page (registration/locked_out.html, status 429).
AXES_LOCKOUT_CALLABLE = "trial.views_accounts.lockout_response"
AXES_RESET_ON_SUCCESS = True
# trial.LoginEvent is the account log; axes keeps only its failure counters.
AXES_DISABLE_ACCESS_LOG = True
# The client's address (lockouts and the login log) is the connection's, or behind
# TRUSTED_PROXY_COUNT reverse proxies the one that many entries from the right of
# X-Forwarded-For (what the outermost proxy saw); entries further left can be forged.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "trial.accounts.client_ip"

# A session ends after SESSION_IDLE_MINUTES without a request (trial.accounts.
# IdleSessionMiddleware logs it and says so on the login page). The cookie itself lives longer,
# so the expiry can be told apart from a missing session; closing the browser ends nothing.
SESSION_IDLE_MINUTES = _positive("SESSION_IDLE_MINUTES", env_int("SESSION_IDLE_MINUTES", 30))
SESSION_COOKIE_AGE = max(SESSION_IDLE_MINUTES, 12 * 60) * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = False

# TOTP second factor (django-otp): optional for everyone, required for the roles listed here
# (role names of trial.models.Role, e.g. "investigator,data_manager").
REQUIRE_2FA_ROLES = env_list("REQUIRE_2FA_ROLES")
OTP_TOTP_ISSUER = "PLM-EDC"

# Uploads: the retrospective import takes files up to IMPORT_MAX_BYTES (exchange/forms.py).
# Files above FILE_UPLOAD_MAX_MEMORY_SIZE go to a temporary file instead of memory; a request
# body other than files is capped by DATA_UPLOAD_MAX_MEMORY_SIZE (forms and JSON are small).
IMPORT_MAX_BYTES = _positive("IMPORT_MAX_BYTES", env_int("IMPORT_MAX_BYTES", 10 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# E-mail: the console by default; SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PLM-EDC <edc@localhost>")

# Celery: Redis when REDIS_URL is set; otherwise tasks run inline (eager) in the web process.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL

# The cache (the analysis dataset per data stamp, analytics/cache.py; the API throttle
# counters): Redis when REDIS_URL is set, shared by every web process; else per process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "plm-edc",
        }
    }
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Redis has no real acknowledgement: a task held by a worker that dies outright (SIGKILL, OOM of
# the main process, host lost) goes to another worker only after this timeout (kombu's default
# is an hour; measured by bench/faults.py). Keep it above the longest retry countdown
# (send_daily_reminders: 60·2⁴ = 960 s) plus a run, or a delayed retry would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1200)}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# The study this deployment serves (created by trial's data migration).
STUDY_CODE = env_str("STUDY_CODE", "NCT06873178")
PATIENT_LIST_PAGE_SIZE = 25

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # matplotlib's PDF backend logs every font subset at INFO.
        "fontTools": {"level": "WARNING"},
        # django-axes logs every successful login at INFO; failures and lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True

# Reminders (visits.reminders): the daily digest run by Celery beat at REMINDER_HOUR:00 in
# TIME_ZONE, or by `manage.py send_reminders` from cron where there is no Redis. SITE_URL is
# the address people open the EDC at: the links in the e-mails start with it.
SITE_URL = env_str("SITE_URL", "").rstrip("/") or "http://127.0.0.1:8000"
REMINDER_HOUR = env_int("REMINDER_HOUR", 7)
REMINDER_DUE_WITHIN_DAYS = 3  # a visit is "due soon" from this many days before its window
MDT_PENDING_DAYS = 14  # investigators are reminded of a referral with no decision after this

# REST API (/api/v1/: config/api.py; shared policies: config/api_policies.py): JSON only, for
# logged-in users with the right permission; errors are JSON too, with the messages keyed by
# the query parameter to fix. Scripts authenticate with a token (POST /api/v1/auth/token/,
# then "Authorization: Token …"), the browser with its session. The throttle counts requests per
# user in the default cache: a per-process cache unless a shared one (Redis) is configured,
# so with several web processes each counts on its own.
REST_FRAMEWORK = {
    # Token first: a script without a token is answered 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "config.api_policies.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The browsable HTML view only while DEBUG is on (ContentNegotiation decides per request,
    # so settings/local.py's DEBUG counts).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.api_policies.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.api_policies.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "120/min"),
        # POST /api/v1/auth/token/ per client address: password guessing stays slow.
        "token": "10/min",
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "STRICT_JSON": True,
}

# OpenAPI 3 schema at /api/schema/ and Swagger UI at /api/docs/ (logged-in users), the UI
# served from drf-spectacular-sidecar's static files: hospital networks block CDNs.
SPECTACULAR_SETTINGS = {
    "TITLE": "PLM-EDC API",
    "DESCRIPTION": (
        "Read endpoints of every CRF and the statisticians' exports (analysis dataset, form "
        "tables, codebook, CDISC ODM 1.3.2). Authenticate with a token from "
        "POST /api/v1/auth/token/ (header `Authorization: Token <token>`) or a browser session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set shared by several fields (check --deploy warns otherwise).
    "ENUM_NAME_OVERRIDES": {
        "CohortEnum": "trial.models.Cohort",
        "FormStatusEnum": "trial.models.FormStatus",
        "PatientStatusEnum": "patients.models.Patient.Status",
        "VisitStatusEnum": "visits.models.VisitStatus",
        "ResponseEnum": "assessments.models.ImagingStudy.Response",
        "PancreaticProcedureEnum": "surgery.models.PancreaticProcedure",
        "MarginEnum": "surgery.models.Pathology.Margin",
    },
}

# Date shifting of de-identified exports (analytics.exports.deid): the secret of the per-patient
# offsets. Empty = SECRET_KEY. Set it once and keep it: changing it changes every offset, so
# shifted tables of different releases no longer line up.
EXPORT_DATE_SHIFT_SECRET = env_str("EXPORT_DATE_SHIFT_SECRET", "")

# The audit trail's hash chain (trial/audit.py): every history row carries an HMAC with this key
# over its content and the previous row of the same record. Empty = SECRET_KEY. Keep it out of
# the database's reach: whoever holds it and the database could rewrite the chain.
AUDIT_CHAIN_KEY = env_str("AUDIT_CHAIN_KEY", "")
