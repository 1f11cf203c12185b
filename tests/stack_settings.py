"""Settings of the processes a stack test starts (gunicorn and a Celery worker): the test
suite's settings with the emulators mounted, tasks really queued, pytest-django's test database
and the URLs of the test's own gunicorn. Values come from the environment the test sets;
nothing here is used outside those tests."""

from __future__ import annotations

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = False
DATABASES["default"]["NAME"] = os.environ["STACK_DATABASE_NAME"]
PUBLIC_URL = os.environ["STACK_PUBLIC_URL"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
AMOCRM_API_BASE_URL = f"{PUBLIC_URL}/sandbox/amocrm"
BEELINE_API_URL = f"{PUBLIC_URL}/sandbox/beeline"
PBX_CALL_SETTLE_SECONDS = 1
# As in production: the web process stores the webhook's events through its group commit (the
# stack tests' data is committed, so the batcher's own connection sees it).
PBX_WEBHOOK_GROUP_COMMIT = True
# A probe task that logs a credential the way a careless line would (tests/log_probe.py).
CELERY_IMPORTS = ["tests.log_probe"]
