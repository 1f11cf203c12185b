"""Group commit of the webhook's inserts: the events posted at the same moment to one web
process are stored by one statement and one commit instead of one each.

A request thread hands its row to the process's ``EventInsertBatcher`` and waits. Whichever
waiting thread finds no flush running becomes the flusher (leader/follower, no timer): it takes
every pending row (at most ``MAX_ROWS``), inserts them with one multi-row
``INSERT … ON CONFLICT (organization_id, event_id) DO NOTHING`` in autocommit, and hands each
waiter its answer. A lone request therefore flushes itself at once (no added latency at low
rates); under load the rows that arrived during a flush go out together in the next one.
Every answer comes after the commit, so the webhook's 200 still means "stored".

The batcher owns one psycopg connection (not Django's per-thread ones), opened with Django's
connection parameters (connect timeout included) when first needed, closed after
``CONN_MAX_AGE`` and reopened once when it died since its last use (PostgreSQL restarted). A
failed connection attempt fails every row waiting at that moment (503 to each, within the
connect timeout) rather than making each of them try again in turn. A batch refused for one
row's content (a deleted organization's foreign key, an over-long value) is retried row by row,
so only that row's request fails.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pbx.models import PbxEvent

# (organization_id, event_id, event_type, ext_tracking_id, target_id, subscription_id, body,
# received_at): the columns the webhook stores, as in ``pbx.events._EVENT_INSERT``.
EventRow = tuple[int, str, str, str, str, str, str, datetime]

MAX_ROWS = 200  # rows per statement; more pending go out in the next flush

_table = PbxEvent._meta.db_table

# A multi-row VALUES list, one statement text per number of rows (prepared once per connection
# each; batches are mostly small): psycopg dumps scalar parameters in C, whereas array
# parameters (an ``unnest`` form) cost several times more client CPU per row. The call columns
# are left to their database defaults, as in the single insert.
# The columns the webhook stores (the order of ``EventRow``), then ``error`` (always empty);
# ``pbx.events`` builds its single-row insert from the same list.
EVENT_COLUMNS = (
    "organization_id",
    "event_id",
    "event_type",
    "ext_tracking_id",
    "target_id",
    "subscription_id",
    "body",
    "received_at",
)
_COLUMNS = ", ".join((*EVENT_COLUMNS, "error"))


@functools.lru_cache(maxsize=MAX_ROWS)
def _batch_insert(rows: int) -> str:
    width = len(EVENT_COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f"${width * row + column}" for column in range(1, width + 1)) + ", '')"
        for row in range(rows)
    )
    return (
        f"INSERT INTO {_table} ({_COLUMNS}) VALUES {values} "
        "ON CONFLICT (organization_id, event_id) DO NOTHING "
        "RETURNING id, organization_id, event_id"
    )


_SINGLE_INSERT = (
    f"INSERT INTO {_table} ({_COLUMNS}) VALUES "
    f"({', '.join(f'${column}' for column in range(1, len(EVENT_COLUMNS) + 1))}, '') "
    "ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of one row: ``event_pk`` of the new row, or None for a duplicate;
    ``twin_in_batch`` when the duplicate's twin was stored by the same flush (then it is new,
    and published by its own request)."""

    event_pk: int | None
    twin_in_batch: bool = False


class _Slot:
    """One waiting row. ``wake`` is held until the slot is done or its thread is to lead the
    next flush: each waiting thread is woken exactly once."""

    __slots__ = ("done", "error", "key", "outcome", "row", "wake")

    def __init__(self, row: EventRow) -> None:
        self.row = row
        self.key = (row[0], row[1])
        self.done = False
        self.outcome: Stored | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


class EventInsertBatcher:
    """Stores rows handed in by any thread, many per statement (see the module doc)."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        *,
        max_age: float | None,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self._connect = connect
        self._max_age = max_age
        self._max_rows = max_rows
        self._mutex = threading.Lock()
        self._pending: list[_Slot] = []
        self._flushing = False
        self._conn: psycopg.Connection[Any] | None = None
        self._cursor: psycopg.RawCursor[Any] | None = None
        self._opened_at = 0.0
        self.pid = os.getpid()  # (a forked child makes its own: ``pbx.events``)

    def insert(self, row: EventRow) -> Stored:
        """Store ``row`` (committed when this returns) or raise the database's error."""
        slot = _Slot(row)
        with self._mutex:
            self._pending.append(slot)
            lead = not self._flushing
            self._flushing = True
        if not lead:
            slot.wake.acquire()  # done, or this thread leads the next flush
        if not slot.done:
            self._lead()
        if slot.error is not None:
            raise slot.error
        assert slot.outcome is not None
        return slot.outcome

    def _lead(self) -> None:
        """Flush what is pending (this thread's row first among them), wake its waiters, and
        hand the lead to the first row that arrived meanwhile, if any."""
        with self._mutex:
            batch = self._pending[: self._max_rows]
            del self._pending[: self._max_rows]
        connect_error: BaseException | None = None
        try:
            connect_error = self._flush(batch)
        finally:
            with self._mutex:
                if connect_error is not None:
                    # Those that queued meanwhile would only wait for the same timeout.
                    self._fail(self._pending, connect_error)
                    batch += self._pending
                    self._pending = []
                follower = self._pending[0] if self._pending else None
                self._flushing = follower is not None
            for done in batch:
                if done.wake.locked():
                    done.wake.release()
            if follower is not None:
                follower.wake.release()

    def close(self) -> None:
        """Close the connection (tests, shutdown: not while a flush is running)."""
        with self._mutex:
            self._close()

    def _close(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 (a dead connection: nothing to release)
                pass

    def _ready_cursor(self) -> psycopg.RawCursor[Any]:
        """The cursor of the batcher's connection (one for its life: it binds on the server,
        with PostgreSQL's own placeholders, and keeps its prepared statements)."""
        conn = self._conn
        if conn is not None and (
            conn.closed
            or conn.broken
            or (self._max_age is not None and time.monotonic() - self._opened_at > self._max_age)
        ):
            self._close()
            conn = None
        if conn is None or self._cursor is None:
            conn = self._connect()
            self._conn, self._opened_at = conn, time.monotonic()
            self._cursor = psycopg.RawCursor(conn)
        return self._cursor

    def _flush(self, batch: list[_Slot]) -> BaseException | None:
        """Store ``batch`` and mark every slot done. Returns the error when no connection
        could be made (the caller fails the rows queued meanwhile with it)."""
        try:
            before = self._cursor
            try:
                cursor = self._ready_cursor()
            except psycopg.Error as exc:
                self._fail(batch, exc)
                return exc
            reused = cursor is before
            unique: dict[tuple[int, str], _Slot] = {}
            for slot in batch:
                unique.setdefault(slot.key, slot)
            try:
                stored = self._execute(cursor, list(unique.values()))
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._close()
                if not reused:
                    raise
                # A connection that died since its last use: reconnect and try once more.
                # The statement is idempotent; a first attempt that did commit makes its
                # rows duplicates, queued again by their requests.
                try:
                    cursor = self._ready_cursor()
                except psycopg.Error as exc:
                    self._fail(batch, exc)
                    return exc
                stored = self._execute(cursor, list(unique.values()))
            except psycopg.Error:
                if cursor.connection.broken:
                    raise
                # One row's content refused the whole statement: row by row, so that only
                # its own request fails.
                stored = {}
                for slot in unique.values():
                    try:
                        stored.update(self._execute(cursor, [slot]))
                    except psycopg.Error as exc:
                        if cursor.connection.broken:
                            raise
                        slot.error, slot.done = exc, True
            for slot in batch:
                if slot.done:
                    continue
                first = unique[slot.key]
                if first is slot:
                    slot.outcome = Stored(stored.get(slot.key))
                elif first.error is not None:  # (its twin was refused: so is it)
                    slot.error = first.error
                else:
                    new = stored.get(slot.key) is not None
                    slot.outcome = Stored(None, twin_in_batch=new)
                slot.done = True
        except BaseException as exc:
            self._close()
            self._fail(batch, exc)
        finally:
            if self._max_age == 0:
                self._close()
        return None

    @staticmethod
    def _fail(batch: Sequence[_Slot], exc: BaseException) -> None:
        for slot in batch:
            if not slot.done:
                slot.error, slot.done = exc, True

    @staticmethod
    def _execute(
        cursor: psycopg.RawCursor[Any], slots: Sequence[_Slot]
    ) -> dict[tuple[int, str], int]:
        if len(slots) == 1:
            cursor.execute(_SINGLE_INSERT, slots[0].row, prepare=True)
            found = cursor.fetchone()
            return {slots[0].key: int(found[0])} if found is not None else {}
        params = [value for slot in slots for value in slot.row]
        cursor.execute(_batch_insert(len(slots)), params, prepare=True)
        return {(int(org), str(event_id)): int(pk) for pk, org, event_id in cursor.fetchall()}
