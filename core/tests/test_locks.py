"""The advisory-lock helper: on PostgreSQL (the real locks, across connections) and on SQLite,
the demo's database (flock files for session locks, IMMEDIATE transactions for transaction
locks) — the latter also in real SQLite databases shared by several processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

from core import locks
from core.locks import advisory_lock, advisory_xact_lock, lock_key

ROOT = Path(__file__).resolve().parents[2]


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``work`` on its own thread, hence its own database connection."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # re-raised by the test through the outcome
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def try_lock(name: str) -> bool:
    with advisory_lock(name, wait=False) as acquired:
        return acquired


def xact_lock_then(name: str, done: threading.Event) -> bool:
    with transaction.atomic():
        advisory_xact_lock(name)
        done.set()
    return True


@pytest.fixture(params=["postgresql", "sqlite"])
def vendor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # Every thread's connection reports SQLite: the session locks become flock files.
        monkeypatch.setattr(type(connections["default"]), "vendor", "sqlite")
        monkeypatch.setattr(locks, "_sqlite_lock_dir", lambda connection: tmp_path)
    return str(request.param)


def test_lock_key_is_a_stable_signed_64_bit_number():
    assert lock_key("pipeline:7") == lock_key("pipeline:7") != lock_key("pipeline:8")
    assert -(2**63) <= lock_key("pipeline:7") < 2**63


def test_session_lock_excludes_other_sessions_until_released(db, vendor):
    with advisory_lock("test:session") as acquired:
        assert acquired
        thread, outcome = in_thread(lambda: try_lock("test:session"))
        thread.join(5)
        assert outcome == {"value": False}
        # The holder itself may take it again (re-entrant, like a PostgreSQL session).
        assert try_lock("test:session")
    thread, outcome = in_thread(lambda: try_lock("test:session"))
    thread.join(5)
    assert outcome == {"value": True}


def test_transaction_lock_is_held_until_commit(transactional_db):
    done = threading.Event()
    with transaction.atomic():
        advisory_xact_lock("test:xact")
        thread, outcome = in_thread(lambda: xact_lock_then("test:xact", done))
        assert not done.wait(0.3), "the second transaction must wait for the first"
    thread.join(5)
    assert outcome == {"value": True} and done.is_set()


def test_transaction_lock_is_released_by_a_rollback(transactional_db):
    done = threading.Event()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        advisory_xact_lock("test:rollback")
        thread, outcome = in_thread(lambda: xact_lock_then("test:rollback", done))
        assert not done.wait(0.3)
        1 / 0  # noqa: B018 (the rollback under test)
    thread.join(5)
    assert outcome == {"value": True} and done.is_set()


def test_transaction_lock_outside_a_transaction_is_refused(transactional_db, vendor):
    with pytest.raises(RuntimeError, match="transaction"):
        advisory_xact_lock("test:autocommit")


# --- SQLite for real: several processes on one database file, as in `make demo` ---------------

_SQLITE_WORKER = """
import sys, time, django
django.setup()
from django.db import connection, transaction
from core.locks import advisory_lock, advisory_xact_lock

mode = sys.argv[1]
if mode == "count":
    # Read, wait, write back: without the lock two processes would both read the same value.
    for _ in range(int(sys.argv[2])):
        with transaction.atomic():
            advisory_xact_lock("counter")
            with connection.cursor() as cursor:
                cursor.execute("SELECT n FROM counter")
                n = cursor.fetchone()[0]
                time.sleep(0.002)
                cursor.execute("UPDATE counter SET n = %s", [n + 1])
elif mode == "hold":
    with advisory_lock("single-flight") as taken:
        print("taken" if taken else "busy", flush=True)
        time.sleep(float(sys.argv[2]))
elif mode == "try":
    with advisory_lock("single-flight", wait=False) as taken:
        print("taken" if taken else "busy", flush=True)
"""


def _sqlite_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", DATABASE_URL=f"sqlite:///{database}")
    return env


def _sqlite_run(database: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _SQLITE_WORKER, *args],
        cwd=ROOT,
        env=_sqlite_env(database),
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sqlite_transaction_locks_exclude_other_processes(tmp_path: Path):
    import sqlite3

    database = tmp_path / "demo.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE counter (n INTEGER)")
        db.execute("INSERT INTO counter VALUES (0)")
    workers = [_sqlite_run(database, "count", "40") for _ in range(3)]
    for worker in workers:
        assert worker.wait(120) == 0
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT n FROM counter").fetchone()[0] == 120  # no update lost


def test_sqlite_session_lock_excludes_another_process_until_its_holder_dies(tmp_path: Path):
    database = tmp_path / "demo.sqlite3"
    holder = _sqlite_run(database, "hold", "30")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "taken"
    other = _sqlite_run(database, "try")
    assert other.communicate(timeout=60)[0].strip() == "busy"
    holder.kill()  # a killed worker: its lock goes with it
    holder.wait(10)
    again = _sqlite_run(database, "try")
    assert again.communicate(timeout=60)[0].strip() == "taken"
    assert (tmp_path / "demo.sqlite3.locks").is_dir()  # beside the database, for every process
