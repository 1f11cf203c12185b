"""Settings of a real Celery worker started by a test (tests/test_pipeline_worker.py).

The test suite's settings, with tasks really queued (not eager), pytest-django's test
database, and the emulators reached over HTTP on the test's live server (the worker is another
process: the in-process ``responses`` routing does not reach it). Values come from the
environment the test sets; nothing here is used outside that test.
"""

from __future__ import annotations

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = False
DATABASES["default"]["NAME"] = os.environ["WORKER_DATABASE_NAME"]
AMOCRM_API_BASE_URL = os.environ["WORKER_AMOCRM_API_BASE_URL"]
BEELINE_API_URL = os.environ["WORKER_BEELINE_API_URL"]
# Short enough for a test to wait for: a killed worker's claim is taken up again after this.
PIPELINE_LEASE_SECONDS = int(os.environ.get("WORKER_PIPELINE_LEASE_SECONDS", "3"))
PBX_CALL_SETTLE_SECONDS = 1
