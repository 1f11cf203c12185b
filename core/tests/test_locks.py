"""The advisory-lock helper: on PostgreSQL (the real locks, across connections) and on the
in-process fallback used where the database has no advisory locks (the SQLite demo)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction

from core.locks import advisory_lock, advisory_xact_lock, lock_key


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


@pytest.fixture(params=["postgresql", "fallback"])
def vendor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        # Every thread's connection reports another database: the in-process locks are used.
        monkeypatch.setattr(type(connections["default"]), "vendor", "sqlite")
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


def test_transaction_lock_is_held_until_commit(transactional_db, vendor):
    done = threading.Event()
    with transaction.atomic():
        advisory_xact_lock("test:xact")
        thread, outcome = in_thread(lambda: xact_lock_then("test:xact", done))
        assert not done.wait(0.3), "the second transaction must wait for the first"
    thread.join(5)
    assert outcome == {"value": True} and done.is_set()


def test_transaction_lock_is_released_by_a_rollback(transactional_db, vendor):
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
