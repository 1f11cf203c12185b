"""`make test` needs the real PostgreSQL and Redis: when one is unreachable the run stops at once
with a message naming it, and never falls back to SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANY_TEST = "core/tests/test_health.py::test_healthz_answers_while_the_process_is_up"


def _pytest(**env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ANY_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "url", "named"),
    [
        ("REDIS_URL", "redis://127.0.0.1:1/0", "Redis is not reachable"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere", "PostgreSQL is not reachable"),
    ],
)
def test_run_stops_with_a_clear_message_when_a_service_is_down(variable, url, named):
    result = _pytest(**{variable: url})

    assert result.returncode == 3, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert named in output and f"set {variable}" in output
    assert "passed" not in output


def test_sqlite_is_refused_rather_than_used():
    result = _pytest(DATABASE_URL="sqlite:///tmp-tests.sqlite3")

    assert result.returncode != 0
    assert "PostgreSQL only" in result.stdout + result.stderr
    assert not (ROOT / "tmp-tests.sqlite3").exists()
