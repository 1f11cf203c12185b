"""Settings shared by every environment.

Every value comes through the one ``env`` object (django-environ). Environment-specific modules
(local, test, production) import * from here and override; production additionally validates
that every required variable is present and well-formed (see ``config.settings.checks``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from corsheaders.defaults import default_headers as cors_default_headers

from config.settings import checks

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

INSTALLED_APPS = [
    # django.contrib.admin with the staff site of core/admin_site.py (two-factor when required)
    "config.apps.BeetelAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "corsheaders",
    "django_htmx",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "core",
    "integration",
    "pbx",
    "crm",
    "cabinet",
]

MIDDLEWARE = [
    "config.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "core.tenancy.AdminUnscopedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out admin login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "cabinet.context_processors.language_next",
            ],
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's database, used by several processes and threads at once: wait for the write
    # lock instead of failing, and take it when a transaction begins (IMMEDIATE), so that
    # read-then-write claims cannot interleave — core/locks.py relies on it.
    _sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite_options.setdefault("timeout", 20)
    _sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite_options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
# Seconds to establish a PostgreSQL connection (libpq's connect_timeout: whole seconds, at
# least 2). With the database down or unreachable a request (the webhook: 503) or a probe fails
# within it instead of waiting the driver's default of over two minutes.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=2)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", DATABASE_CONNECT_TIMEOUT
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Seconds; every Redis client of the application (core.redis) fails within these when Redis is
# down or frozen, instead of hanging a request or a worker.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "beetel",
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Russian is the default UI language (the setup manual's labels); English is the second locale.
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One date/time format per language (config/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
# The default; the cabinet shows each organization's pages in its own Organization.time_zone.
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 12
# A session row is written only when a view stores something (the cabinet login, the admin).
SESSION_SAVE_EVERY_REQUEST = False
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# --- Product configuration [contract: docs/architecture.md "Configuration"] -----------------------
SECRET_KEY = env.str("SECRET_KEY", default="")
# Comma-separated Fernet keys, newest first. The newest encrypts; all of them decrypt.
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[])
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
AMOCRM_CLIENT_ID = env.str("AMOCRM_CLIENT_ID", default="")
AMOCRM_CLIENT_SECRET = env.str("AMOCRM_CLIENT_SECRET", default="")
# Unset in production: amoCRM calls go to https://{account host}. The sandbox and tests set it.
AMOCRM_API_BASE_URL = env.str("AMOCRM_API_BASE_URL", default="").rstrip("/")
BEELINE_API_URL = env.str(
    "BEELINE_API_URL", default="https://cloudpbx.beeline.ru/apis/portal"
).rstrip("/")
SENTRY_DSN = env.str("SENTRY_DSN", default="")
# Keys of the recording links (/recordings/<token>), comma-separated, newest first: the newest
# encrypts new links, every listed key still opens the links made with it (rotation). Separate
# from SECRET_KEY so that neither rotation breaks the other's links or sessions.
RECORDING_SIGNING_KEYS: list[str] = env.list("RECORDING_SIGNING_KEYS", default=[])

# --- Who is asking [docs/security.md] ---------------------------------------------------------
# How many reverse proxies of ours stand in front of the web process. 0: the client is
# REMOTE_ADDR. N: the N-th address from the right of X-Forwarded-For (the one our outermost
# proxy saw); anything left of it is what the client claims and is never trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Prometheus /metrics (config/metrics.py): answered to a request carrying
# ``Authorization: Bearer <METRICS_TOKEN>`` (when set) or coming from one of these networks.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = checks.networks(
    env, "METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
)
# Support staff must pass TOTP two-factor authentication (django-otp) to use the admin and to
# open organizations in the cabinet. Production switches it on by default.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=False)
# The admin login (django-axes): a client address or a username is locked out for
# AXES_COOLOFF_TIME after AXES_FAILURE_LIMIT wrong passwords; the lock answers 429.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_address"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# The cabinet's key login (cabinet/throttling.py): per client address, and the global level
# above which every address is held to the stricter limit (slower guessing, nobody locked out).
CABINET_LOGIN_ATTEMPTS_PER_IP = env.int("CABINET_LOGIN_ATTEMPTS_PER_IP", default=10)
CABINET_LOGIN_ATTEMPTS_GLOBAL = env.int("CABINET_LOGIN_ATTEMPTS_GLOBAL", default=300)
CABINET_LOGIN_ATTEMPTS_PER_IP_UNDER_PRESSURE = 2

# The sandbox emulators are mounted only where a settings module switches this on.
SANDBOX_ENABLED = False
SANDBOX_APPS = ["sandbox", "sandbox.amocrm", "sandbox.amocrm.widget_host", "sandbox.beeline"]
# Beeline emulator: the longest subscription it grants (s), and how long after a call ends its
# recording stays "not ready" (s).
SANDBOX_BEELINE_MAX_SUBSCRIPTION = env.int("SANDBOX_BEELINE_MAX_SUBSCRIPTION", default=3600)
SANDBOX_BEELINE_RECORD_DELAY = env.int("SANDBOX_BEELINE_RECORD_DELAY", default=20)

# --- Celery [config/celery_app.py reads the CELERY_ namespace] ------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("events", "crm", "default")
# The events queue (worker-events) takes short tasks only: folding events into calls, settling
# calls, the sweeper and the ringing pop-up. Beeline API work (subscriptions, abonent syncs,
# statistics reconciliation: seconds to minutes per task) goes to default, so however many
# organizations are due, a pop-up never waits behind it.
_EVENTS_TASKS = (
    "pbx.tasks.pbx_event_process",
    "pbx.tasks.pbx_events_process",
    "pbx.tasks.pbx_events_sweep",
    "pbx.tasks.pbx_call_finalize",
    "pbx.tasks.pbx_calls_finalize_due",
    # The ringing pop-up must not wait behind amoCRM batches on the crm queue.
    "integration.tasks.pipeline_ring_notify",
)
CELERY_TASK_ROUTES = {
    **{name: {"queue": "events"} for name in _EVENTS_TASKS},
    "pbx.tasks.*": {"queue": "default"},
    "crm.tasks.*": {"queue": "crm"},
    "integration.tasks.pipeline_*": {"queue": "crm"},
    "integration.tasks.callback*": {"queue": "crm"},
}
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that dies before acknowledging it (acks_late, SIGKILL, lost host) is
# handed out again this long after it was taken. Redis counts the wait of a countdown/ETA task
# too, so every task's countdown plus its hard time limit must stay below it, or a slow task
# would run twice: countdowns are capped at CELERY_COUNTDOWN_MAX_SECONDS (fan-outs are spread
# within it, retries wait at most that), and the system check ``celery.E001``
# (config.settings.checks.celery_timing_check) refuses a configuration that breaks the rule.
CELERY_VISIBILITY_TIMEOUT_SECONDS = 30 * 60
CELERY_COUNTDOWN_MAX_SECONDS = 10 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
    # Redis down or frozen: a publish (in a web request too) fails within these instead of
    # waiting for ever on a dead connection. Above the workers' 1 s BRPOP wait.
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": max(REDIS_SOCKET_TIMEOUT, 2.0),
    "socket_keepalive": True,
    # A timed-out write may have been applied: not replayed by the client, the publish retry
    # policy below decides (our tasks are idempotent, a rare duplicate message is harmless).
    "retry_on_timeout": False,
}
# Publishing gives up after two more tries within about a second (Celery's default is three
# tries); the caller then logs and relies on a sweep (events, deliveries, finalization).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# Workers and beat (re)connecting to the broker.
CELERY_BROKER_CONNECTION_TIMEOUT = 4.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker keeps Django's LOGGING (the redacting JSON handler) instead of installing its own
# root handler (see also the setup_logging receiver in config/celery_app.py).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The beat schedule lives in code. Apps register their periodic tasks here by dotted name;
# a name that does not exist yet is simply never sent (a later issue fills it in).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "audit-prune": {
        "task": "core.tasks.audit_prune",
        "schedule": crontab(minute=17, hour=3),
    },
    # Every token is refreshed hours before it expires, so refresh tokens never reach 3 months.
    "amo-tokens-refresh-due": {
        "task": "crm.tasks.amo_tokens_refresh_due",
        "schedule": crontab(minute="*/20"),
    },
    # Beeline (pbx): renew subscriptions before expiry / after backoff; safety-net finalizer.
    "pbx-subscriptions-renew-due": {
        "task": "pbx.tasks.subscription_renew_due",
        "schedule": 60.0,
    },
    # Events stored but never queued (broker down, web process died) are queued again.
    "pbx-events-sweep": {
        "task": "pbx.tasks.pbx_events_sweep",
        "schedule": 30.0,
    },
    "pbx-calls-finalize-due": {
        "task": "pbx.tasks.pbx_calls_finalize_due",
        "schedule": 30.0,
    },
    "pbx-sync-all": {
        "task": "pbx.tasks.pbx_sync_all",
        "schedule": crontab(minute=41, hour=4),
    },
    "pbx-events-prune": {
        "task": "pbx.tasks.pbx_events_prune",
        "schedule": crontab(minute=29, hour=3),
    },
    # The call pipeline (integration): due retries and abandoned claims, paused deliveries of
    # organizations that are healthy again, and Beeline statistics reconciliation.
    "pipeline-drain-due": {
        "task": "integration.tasks.pipeline_drain_due",
        "schedule": 30.0,
    },
    "pipeline-resume-paused": {
        "task": "integration.tasks.pipeline_resume_paused",
        "schedule": 120.0,
    },
    "pbx-statistics-reconcile": {
        "task": "pbx.tasks.statistics_reconcile_all",
        "schedule": crontab(minute="*/10"),  # PBX_RECONCILE_PERIOD_SECONDS
    },
    # Security housekeeping: expired cabinet/admin sessions, old webhook secrets past their
    # grace period, uninstall hooks whose revocation amoCRM has not confirmed yet.
    "sessions-clear-expired": {
        "task": "cabinet.tasks.sessions_clear_expired",
        "schedule": crontab(minute=53, hour="*/6"),
    },
    "pbx-webhook-secrets-expire": {
        "task": "pbx.tasks.webhook_secrets_expire",
        "schedule": crontab(minute="*/15"),
    },
    "amo-disconnects-confirm-due": {
        "task": "crm.tasks.amo_disconnects_confirm_due",
        "schedule": crontab(minute="*/10"),
    },
    # Call-back tracking: SLA notifications (working hours only) and tasks left to complete.
    "callbacks-due": {
        "task": "integration.tasks.callbacks_due",
        "schedule": 60.0,
    },
}

# --- Logging: one structured line per event (config/logs.py) --------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.logs.RequestIdFilter"},
        "redact": {"()": "config.logs.SecretRedactingFilter"},
    },
    "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

AUDIT_RETENTION = timedelta(days=90)

# --- Beeline (pbx) ---------------------------------------------------------------------------
# A call is handed on this long after its last leg was released (late legs of group calls).
PBX_CALL_SETTLE_SECONDS = env.int("PBX_CALL_SETTLE_SECONDS", default=2)
# Recordings streamed at once by one web process: keep it below gunicorn's WEB_THREADS
# (config/gunicorn_conf.py, default 16) so slow players never take the webhook's last threads.
RECORDING_STREAMS_PER_PROCESS = env.int("RECORDING_STREAMS_PER_PROCESS", default=14)
PBX_WEBHOOK_MAX_BYTES = env.int("PBX_WEBHOOK_MAX_BYTES", default=256 * 1024)
# Group commit of the webhook's inserts (pbx.event_group_commit): the events a web process
# receives at the same moment are stored by one statement and one commit, on a connection of
# its own. Off: one insert and commit per event on the request thread's connection.
PBX_WEBHOOK_GROUP_COMMIT = env.bool("PBX_WEBHOOK_GROUP_COMMIT", default=True)
# The web process publishes stored events' ids to the events queue once per this many seconds
# (one message per batch, pbx.event_publisher); 0 publishes each event at once.
PBX_EVENT_BATCH_SECONDS = env.float("PBX_EVENT_BATCH_SECONDS", default=0.05)
# An event still unprocessed this long after it was stored is queued again by the sweeper.
PBX_EVENT_SWEEP_AFTER_SECONDS = 30
# Requested lifetime; Beeline may grant less, and we renew before the granted expiry.
PBX_SUBSCRIPTION_SECONDS = env.int("PBX_SUBSCRIPTION_SECONDS", default=86400)
PBX_SUBSCRIPTION_RENEW_MARGIN_SECONDS = env.int(
    "PBX_SUBSCRIPTION_RENEW_MARGIN_SECONDS", default=3 * 3600
)
PBX_SUBSCRIPTION_RETRY_BASE_SECONDS = 30
PBX_SUBSCRIPTION_RETRY_MAX_SECONDS = 15 * 60
PBX_SUBSCRIPTION_CLAIM_SECONDS = 15 * 60  # a queued renewal not done by then is queued again
PBX_SUBSCRIPTION_RENEW_BATCH = 2000  # organizations queued per beat tick at most
PBX_FANOUT_CHUNK = 50  # tasks released together, then PBX_FANOUT_SPACING_SECONDS later the next
PBX_FANOUT_SPACING_SECONDS = 10
PBX_HTTP_RETRY_DELAYS = (0.5, 2.0)  # safe reads only
PBX_EVENT_RETENTION_DAYS = env.int("PBX_EVENT_RETENTION_DAYS", default=30)
# After a webhook secret is rotated the old URL keeps working this long (events in flight and
# Beeline's retries to the old subscription), then answers 404.
PBX_WEBHOOK_SECRET_GRACE_SECONDS = env.int("PBX_WEBHOOK_SECRET_GRACE_SECONDS", default=6 * 3600)

# --- Call pipeline (integration) ------------------------------------------------------------
# Deliveries taken per drain round; amoCRM requests inside carry at most 50 items each
# (crm.client.BATCH_SIZE). Bigger rounds mean fewer half-empty task/contact batches.
PIPELINE_CLAIM_SIZE = 150
# The lease, the retry steps, the reconciliation's grace and period below can be shortened
# through the environment only to compress time in a test run (bench/chaos.py).
# A claimed delivery not finished by then is taken up again.
PIPELINE_LEASE_SECONDS = env.int("PIPELINE_LEASE_SECONDS", default=300)
# Transient failures: 10 s, 20 s, 40 s … (+-20 % jitter), at most PIPELINE_RETRY_MAX_SECONDS.
PIPELINE_RETRY_BASE_SECONDS = env.int("PIPELINE_RETRY_BASE_SECONDS", default=10)
PIPELINE_RETRY_MAX_SECONDS = env.int("PIPELINE_RETRY_MAX_SECONDS", default=900)
PIPELINE_GIVE_UP_SECONDS = 24 * 3600  # then the call is marked failed (retry button)
# Reconciliation with Beeline statistics: the window looked at, and how long after its end a
# call must be before we decide its events were lost (they may still be on their way).
PBX_RECONCILE_HOURS = env.int("PBX_RECONCILE_HOURS", default=2)
PBX_RECONCILE_GRACE_SECONDS = env.int("PBX_RECONCILE_GRACE_SECONDS", default=120)
# The beat's period, over which the reads are spread (600: on the clock's tens of minutes).
PBX_RECONCILE_PERIOD_SECONDS = env.int("PBX_RECONCILE_PERIOD_SECONDS", default=600)
if PBX_RECONCILE_PERIOD_SECONDS != 600:
    CELERY_BEAT_SCHEDULE["pbx-statistics-reconcile"]["schedule"] = float(
        PBX_RECONCILE_PERIOD_SECONDS
    )
PBX_RECONCILE_CHUNK = 20  # organizations reconciled one after the other by one task

# --- amoCRM (crm) ----------------------------------------------------------------------------
# Paced just below amoCRM's 7 requests/second per account (docs/amocrm-api.md §8): at 6.4/s
# any 8 requests span 1.09 s, so up to 90 ms of transit jitter cannot make amoCRM count 8 in
# a second; a 429 anyway pauses and slows the whole account (crm/ratelimit.py).
AMOCRM_RATE_LIMIT_PER_SECOND = env.float("AMOCRM_RATE_LIMIT_PER_SECOND", default=6.4)
# Requests of one delivery round in flight at once — contact searches, call-log batches — so
# their answers overlap the pacing (crm/inflight.py).
AMOCRM_SEARCH_CONCURRENCY = env.int("AMOCRM_SEARCH_CONCURRENCY", default=3)
# The widget API's telephony side (crm.telephony.TelephonyBackend), provided by integration.
WIDGET_TELEPHONY_BACKEND = env.str(
    "WIDGET_TELEPHONY_BACKEND", default="integration.widget.TelephonyBackend"
)
# CORS only for the widget API; which origins is decided in crm.cors (amoCRM hosts, sandbox).
CORS_URLS_REGEX = r"^/amocrm/widget/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-auth-token")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

# --- «Звонок ответственному»: Beeline ICR rules in step with amoCRM (integration.routing) ----
# Rules per Beeline request and the pause between requests (Beeline's limits are unknown).
ROUTING_BATCH_SIZE = env.int("ROUTING_BATCH_SIZE", default=50)
ROUTING_BATCH_PAUSE_SECONDS = env.float("ROUTING_BATCH_PAUSE_SECONDS", default=0.5)
# The full reconciliation's period; organizations are spread this far apart within a tick.
ROUTING_RECONCILE_MINUTES = env.int("ROUTING_RECONCILE_MINUTES", default=30)
ROUTING_DISPATCH_SPACING_SECONDS = 2.0
CELERY_BEAT_SCHEDULE["routing-reconcile"] = {
    "task": "integration.tasks.routing_sync_due",
    "schedule": ROUTING_RECONCILE_MINUTES * 60.0,
}
