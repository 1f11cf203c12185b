"""Production: every required variable must be present and well-formed, or the process refuses
to start with a message naming the variable. The sandbox is never enabled here."""

from __future__ import annotations

from config.settings import checks
from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SANDBOX_ENABLED = False

SECRET_KEY = checks.secret_key(env, "SECRET_KEY")
FIELD_ENCRYPTION_KEYS = checks.fernet_keys(env, "FIELD_ENCRYPTION_KEYS")
RECORDING_SIGNING_KEYS = checks.signing_keys(env, "RECORDING_SIGNING_KEYS")
PUBLIC_URL = checks.https_url(env, "PUBLIC_URL")
AMOCRM_CLIENT_ID = checks.required_str(env, "AMOCRM_CLIENT_ID")
AMOCRM_CLIENT_SECRET = checks.required_str(env, "AMOCRM_CLIENT_SECRET")
AMOCRM_API_BASE_URL = checks.optional_url(env, "AMOCRM_API_BASE_URL")
BEELINE_API_URL = checks.https_url(
    env, "BEELINE_API_URL", default="https://cloudpbx.beeline.ru/apis/portal"
)
DATABASES = {"default": checks.postgres_database(env, "DATABASE_URL")}
REDIS_URL = checks.redis_url(env, "REDIS_URL")
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CELERY_BROKER_URL = REDIS_URL

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[checks.host_of(PUBLIC_URL)])
CSRF_TRUSTED_ORIGINS = [PUBLIC_URL]

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe, and Prometheus scrapes, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/redis$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Support staff must pass TOTP two-factor authentication (django-otp) unless switched off.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=True)

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN)
