"""`make chaos`, short: the whole stack as real processes (gunicorn, both Celery workers, beat,
a private redis-server and PostgreSQL cluster) plays 60 calls over 4 organizations while Redis
is killed and frozen, workers and beat are killed, amoCRM answers 429, 500 and 403 and loses
answers, Beeline events are dropped or come late and PostgreSQL restarts; every call must be in
amoCRM exactly once (bench/chaos.py; docs/operations.md «Chaos run»)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings

from tests.processes import ROOT

pytestmark = pytest.mark.chaos

FAULTS = [
    "worker-kill #1 (worker)",
    "worker-kill #2 (worker-events)",
    "worker-kill #3 (worker)",
    "amo-429-storm",
    "amo-403-one-account",
    "redis-kill",
    "redis-freeze",
    "beat-kill",
    "amo-500 (10 min)",
    "amo-lost-answers-20%",
    "beeline-drop-5%",
    "late-events (10 min)",
    "pg-restart",
]


def test_short_chaos_run_loses_and_duplicates_no_call():
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL}  # used only without redis-server
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script sets up its own stack
    run = subprocess.run(
        [sys.executable, "bench/chaos.py", "--short", "--seed", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # about 3 minutes on an idle machine; 7 seen on a loaded one
    )
    out = run.stdout + run.stderr
    # One row per fault (played, calls, contacts, tasks, lost, no task, dup, recover) or a
    # printed reason why it was skipped, never silence.
    for name in FAULTS:
        row = re.search(rf"^{re.escape(name)}\s+(\d+–\d+\s+(\d+\s+){{7}}\S+|skipped)", out, re.M)
        assert row, f"no row for {name}:\n{out[-6000:]}"
    total = re.search(r"^TOTAL\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    assert total, out[-6000:]
    played, _calls, _contacts, _tasks, lost, no_task, duplicated = map(int, total.groups())
    assert played == 60, out[-6000:]
    assert (lost, no_task, duplicated) == (0, 0, 0), out[-6000:]
    assert run.returncode == 0 and "RESULT: PASS" in out, out[-6000:]
