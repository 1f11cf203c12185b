"""The test suite: real PostgreSQL and Redis at the local defaults (overridable), never SQLite."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
ALLOWED_HOSTS = ["testserver", ".test", "127.0.0.1", "localhost"]
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"
FIELD_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LWZpZWxkLWtleS0wMTIzNDU2Nzg5YWI="]
RECORDING_SIGNING_KEYS = ["test-only-recording-link-key-0123456789abcdef"]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test"),
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout",
    DATABASE_CONNECT_TIMEOUT,  # noqa: F405
)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError(
        "The test suite runs against PostgreSQL only; DATABASE_URL must be postgres://"
    )

# A separate Redis database so tests never touch a running demo's data; under pytest-xdist
# each worker (gw0, gw1, …) takes the next database along, as it takes its own test_* database.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/1")
# The processes a test starts (workers, web) inherit the variables: the shifted REDIS_URL is
# exported with a marker so that they use it as it is instead of shifting it again.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker.startswith("gw") and os.environ.get("TEST_REDIS_SHIFTED_FOR") != _xdist_worker:
    _redis = urlsplit(REDIS_URL)
    _db = int(_redis.path.strip("/") or 0) + int(_xdist_worker[2:])
    REDIS_URL = urlunsplit(_redis._replace(path=f"/{_db}"))
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["TEST_REDIS_SHIFTED_FOR"] = _xdist_worker
CACHES = {
    "default": {
        **CACHES["default"],  # noqa: F405  (the timeouts)
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "beetel-test",
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PBX_EVENT_BATCH_SECONDS = 0  # publish (and so, eagerly, process) each event at once
# Tests run in a transaction the batcher's own connection cannot see: the direct insert here;
# pbx/tests/test_group_commit.py turns it on with committed data.
PBX_WEBHOOK_GROUP_COMMIT = False

PUBLIC_URL = "https://beetel.test"
AMOCRM_CLIENT_ID = "test-client-id"
AMOCRM_CLIENT_SECRET = "test-client-secret-0123456789-abcdefghijklmnop"
AMOCRM_API_BASE_URL = "https://amocrm.sandbox.test"
BEELINE_API_URL = "https://beeline.sandbox.test/apis/portal"

SANDBOX_ENABLED = True
INSTALLED_APPS = [*INSTALLED_APPS, *SANDBOX_APPS]  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "INFO"  # noqa: F405
ROUTING_BATCH_PAUSE_SECONDS = 0.0
