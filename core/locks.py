"""The one advisory-lock helper: mutual exclusion across processes, keyed by a name.

On PostgreSQL these are advisory locks (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS):

- ``advisory_lock(name)`` is session-level: held for the ``with`` block, across the commits of
  the services inside it; a crashed process drops its connection and with it the lock.
  ``wait=False`` tries once and yields whether the lock was taken (single-flight work).
- ``advisory_xact_lock(name)`` is transaction-level: taken inside ``transaction.atomic()`` and
  held until that transaction commits or rolls back.

SQLite (``make demo``'s default database) has no advisory locks, but it has one writer at a
time, and every SQLite transaction here begins ``IMMEDIATE`` (``config.settings.base``): the
transaction that asks for ``advisory_xact_lock`` already holds the database's write lock until
it ends, across every process — nothing more is needed. ``advisory_lock``, which spans several
transactions, is a ``flock(2)`` lock on one small file per name beside the database: per open
file, so two threads exclude each other as two PostgreSQL sessions would; dropped by the kernel
when its process dies, as PostgreSQL drops a dead connection's locks; re-entrant for the thread
that holds it, as a PostgreSQL session's are. So the web server, the worker's processes and beat
exclude each other as they do on PostgreSQL.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections


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
        with _file_lock(_sqlite_lock_dir(connection), key, wait=wait) as acquired:
            yield acquired
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
        _sqlite_require_immediate(connection)
        return  # an IMMEDIATE transaction is already the only writer until it ends
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_require_immediate(connection: Any) -> None:
    if connection.vendor != "sqlite":
        raise ImproperlyConfigured(f"no advisory locks for {connection.vendor}")
    options = connection.settings_dict.get("OPTIONS") or {}
    if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        raise ImproperlyConfigured(
            "SQLite needs OPTIONS transaction_mode=IMMEDIATE (config.settings.base sets it): "
            "without it two transactions can read the same rows before either writes."
        )


def _sqlite_lock_dir(connection: Any) -> Path:
    """``<database file>.locks/`` beside the database, so every process using it agrees."""
    if connection.vendor != "sqlite":
        raise ImproperlyConfigured(f"no advisory locks for {connection.vendor}")
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        # One process only can see such a database: a directory of its own will do.
        folder = Path(tempfile.gettempdir()) / f"beetel-locks-{os.getpid()}"
    else:
        folder = Path(f"{Path(name).resolve()}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_held = threading.local()


@contextmanager
def _file_lock(folder: Path, key: int, *, wait: bool) -> Iterator[bool]:
    """``flock`` on ``folder/<key>.lock``; re-entrant within one thread."""
    held: dict[tuple[str, int], list[int]] = _held.__dict__.setdefault("locks", {})
    slot = (str(folder), key)
    if slot in held:  # this thread holds it already
        held[slot][1] += 1
        try:
            yield True
        finally:
            held[slot][1] -= 1
        return
    fd = os.open(folder / f"{key & 0xFFFFFFFFFFFFFFFF:016x}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        held[slot] = [fd, 1]
        try:
            yield True
        finally:
            del held[slot]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
