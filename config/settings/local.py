"""Development and `make demo`: SQLite by default, the sandbox mounted, dev-only secrets."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403
from config.settings.base import PUBLIC_URL, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Dev-only values: production refuses to start without real ones.
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-do-not-use-in-production")
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["ZGV2LW9ubHktZmllbGQta2V5LW5vdC1mb3ItcHJvZCE="]
)
RECORDING_SIGNING_KEYS = env.list(
    "RECORDING_SIGNING_KEYS", default=["dev-only-recording-link-key-not-for-production"]
)
AMOCRM_CLIENT_ID = env.str("AMOCRM_CLIENT_ID", default="beetel-sandbox-client")
AMOCRM_CLIENT_SECRET = env.str(
    "AMOCRM_CLIENT_SECRET", default="beetel-sandbox-client-secret-0123456789abcdef"
)

SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
if SANDBOX_ENABLED:
    INSTALLED_APPS = [*INSTALLED_APPS, *SANDBOX_APPS]  # noqa: F405
    AMOCRM_API_BASE_URL = env.str("AMOCRM_API_BASE_URL", default=f"{PUBLIC_URL}/sandbox/amocrm")
    BEELINE_API_URL = env.str("BEELINE_API_URL", default=f"{PUBLIC_URL}/sandbox/beeline")

# Without a reachable Redis the demo runs Celery tasks in-process (make demo says so).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
if CELERY_TASK_ALWAYS_EAGER:
    # `make demo` without Redis: the cache lives in the (single) web process too.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
