"""Cross-process locks held through the database: the one lock helper of the project.

PostgreSQL (production): advisory locks. ``transaction_lock`` is released at the end of the
transaction; ``session_lock`` is released by ``session_lock``'s exit or, if the process dies,
by the server when its connection closes.

SQLite (``make demo``'s default database) has no advisory locks, but it has one writer at a
time: every SQLite transaction begins ``IMMEDIATE`` (``config.settings.base``), so the
transaction that wants a transaction-scoped lock already holds the database's write lock until
it ends — nothing more is needed. Session locks, which span several transactions, are
``flock(2)`` locks on one small file per key beside the database: per open file (so two
threads of one process exclude each other, as two PostgreSQL connections would) and dropped by
the kernel when the process dies (as PostgreSQL drops a dead connection's locks). Like
PostgreSQL's, a session lock is re-entrant for its holder (here: the thread).
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

from django.core.exceptions import ImproperlyConfigured
from django.db import connection


def lock_key(*parts: object) -> int:
    """A signed 64-bit key (PostgreSQL's ``bigint``) naming what is locked."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def transaction_lock(key: int) -> None:
    """Hold ``key`` until the current transaction ends (call inside ``transaction.atomic``)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        return
    if connection.vendor == "sqlite":
        _sqlite_require_immediate()
        if not connection.in_atomic_block:
            raise RuntimeError("transaction_lock() needs an open transaction")
        return  # an IMMEDIATE transaction is already the only writer
    raise ImproperlyConfigured(f"no lock implementation for {connection.vendor}")


@contextmanager
def session_lock(key: int, *, wait: bool = True) -> Iterator[bool]:
    """Hold ``key`` across transactions; yields whether it was acquired (always True with
    ``wait``; with ``wait=False`` False means another holder has it right now)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_lock(%s)", [key])
                acquired = True
            else:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
                acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    if connection.vendor == "sqlite":
        with _file_lock(_sqlite_lock_dir(), key, wait=wait) as acquired:
            yield acquired
        return
    raise ImproperlyConfigured(f"no lock implementation for {connection.vendor}")


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_require_immediate() -> None:
    mode = str(connection.settings_dict.get("OPTIONS", {}).get("transaction_mode", "")).upper()
    if mode != "IMMEDIATE":
        raise ImproperlyConfigured(
            "SQLite must run with OPTIONS transaction_mode=IMMEDIATE (config.settings.base sets "
            "it): without it two transactions can read the same rows before either writes."
        )


def _sqlite_lock_dir() -> Path:
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        base = Path(tempfile.gettempdir()) / f"beetel-locks-{os.getpid()}"
    else:
        base = Path(f"{name}.locks")
    base.mkdir(parents=True, exist_ok=True)
    return base


_held = threading.local()


@contextmanager
def _file_lock(directory: Path, key: int, *, wait: bool) -> Iterator[bool]:
    """``flock`` on ``directory/<key>.lock``; re-entrant within one thread."""
    held: dict[tuple[str, int], list[int]] = _held.__dict__.setdefault("locks", {})
    slot = (str(directory), key)
    if slot in held:  # this thread holds it already: PostgreSQL session locks nest the same way
        held[slot][1] += 1
        try:
            yield True
        finally:
            held[slot][1] -= 1
        return
    fd = os.open(directory / f"{key & 0xFFFFFFFFFFFFFFFF:016x}.lock", os.O_RDWR | os.O_CREAT)
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
