"""The one advisory-lock helper: mutual exclusion across processes, keyed by a name.

On PostgreSQL these are advisory locks (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS):

- ``advisory_lock(name)`` is session-level: held for the ``with`` block, across the commits of
  the services inside it; a crashed process drops its connection and with it the lock.
  ``wait=False`` tries once and yields whether the lock was taken (single-flight work).
- ``advisory_xact_lock(name)`` is transaction-level: taken inside ``transaction.atomic()`` and
  held until that transaction commits or rolls back.

Other databases (the zero-setup demo's SQLite) have no advisory locks. There the same calls fall
back to locks held in this process, keyed by the name (and, for the transaction-level one, by
the transaction: released on commit, or found dead once a rollback discarded it). SQLite runs
one writer at a time anyway, so this is enough for a demo served by one process; it does not
exclude other processes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

# How often a waiter of the in-process fallback looks again for holders that rolled back.
_POLL_SECONDS = 0.05


def lock_key(name: str) -> int:
    """The signed 64-bit key PostgreSQL's advisory locks take, derived from ``name``."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def advisory_lock(name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock ``name`` for the block (session-level). Yields True when it was taken;
    with ``wait=False`` yields False at once when another session holds it."""
    key = lock_key(name)
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        acquired = _process_locks.acquire(key, wait=wait)
        try:
            yield acquired
        finally:
            if acquired:
                _process_locks.release(key)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_lock(%s)" if wait else "SELECT pg_try_advisory_lock(%s)", [key]
        )
        row = cursor.fetchone()
    acquired = wait or bool(row and row[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def advisory_xact_lock(name: str) -> None:
    """Wait for the lock ``name`` and hold it until the current transaction ends.

    Raises RuntimeError outside ``transaction.atomic()`` (the lock would end with the
    statement and protect nothing).
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        raise RuntimeError("advisory_xact_lock needs a transaction (transaction.atomic())")
    key = lock_key(name)
    if connection.vendor != "postgresql":
        _process_locks.acquire_for_transaction(key, connection)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# --- the in-process fallback ------------------------------------------------------------------


@dataclass
class _Holder:
    thread: int
    sessions: int = 0  # nested advisory_lock blocks of the holding thread
    # (connection, release callback) per transaction holding the lock: the callback waits in the
    # connection's on-commit list until the commit runs it; a rollback discards it.
    transactions: list[tuple[Any, Callable[[], None]]] = field(default_factory=list)

    def forget_rolled_back(self) -> None:
        self.transactions = [
            (conn, release)
            for conn, release in self.transactions
            if any(hook[1] is release for hook in conn.run_on_commit)
        ]

    @property
    def idle(self) -> bool:
        return self.sessions == 0 and not self.transactions


class _ProcessLocks:
    """Re-entrant per thread (as PostgreSQL's locks are per session: one connection per
    thread in Django)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holders: dict[int, _Holder] = {}

    def _take(self, key: int, *, wait: bool) -> _Holder | None:
        me = threading.get_ident()
        while True:
            holder = self._holders.get(key)
            if holder is not None:
                holder.forget_rolled_back()
                if holder.idle:
                    holder = None
            if holder is None:
                holder = self._holders[key] = _Holder(thread=me)
            if holder.thread == me:
                return holder
            if not wait:
                return None
            self._changed.wait(_POLL_SECONDS)

    def acquire(self, key: int, *, wait: bool) -> bool:
        with self._changed:
            holder = self._take(key, wait=wait)
            if holder is None:
                return False
            holder.sessions += 1
            return True

    def release(self, key: int) -> None:
        with self._changed:
            holder = self._holders[key]
            holder.sessions -= 1
            self._drop_if_idle(key, holder)

    def acquire_for_transaction(self, key: int, connection: Any) -> None:
        def release() -> None:
            with self._changed:
                holder = self._holders.get(key)
                if holder is not None:
                    holder.transactions = [t for t in holder.transactions if t[1] is not release]
                    self._drop_if_idle(key, holder)

        with self._changed:
            holder = self._take(key, wait=True)
            assert holder is not None  # waited for it
            transaction.on_commit(release, using=connection.alias)
            holder.transactions.append((connection, release))

    def _drop_if_idle(self, key: int, holder: _Holder) -> None:
        if holder.idle and self._holders.get(key) is holder:
            del self._holders[key]
        self._changed.notify_all()


_process_locks = _ProcessLocks()
