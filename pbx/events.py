"""Beeline's XSI events: intake (which organization a webhook secret names, one cheap insert per
event, deduplicated on eventID, or the process's group commit of concurrent events:
``pbx.event_group_commit``), processing (fold the event's call, or re-subscribe when Beeline
ended the subscription), and pruning old raw events.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connections,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from core.models import Organization
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx import event_publisher
from pbx.calls import call_rebuild
from pbx.credentials import webhook_secret_hash
from pbx.event_group_commit import EVENT_COLUMNS, EventInsertBatcher, EventRow
from pbx.models import BeelineCredentials, PbxEvent
from pbx.subscriptions import subscription_terminated
from pbx.xsi import SUBSCRIPTION_TERMINATED, XsiEventHead

logger = logging.getLogger(__name__)

# secret hash -> (organization id, cached until (monotonic)): saves a query per event on the hot
# path. A replaced or deleted secret keeps working in a process for at most _SECRET_CACHE_SECONDS
# (deleting an organization cascades, and its late events then fail the FK and are dropped).
_SECRET_CACHE: dict[str, tuple[int, float]] = {}
_SECRET_CACHE_SECONDS = 60.0
_SECRET_CACHE_MAX = 10_000


def webhook_organization_id(*, secret: str, now: datetime | None = None) -> int | None:
    """The organization a webhook secret belongs to, looked up by its hash (so response time
    does not depend on how much of a guess matched). The previous secret of a rotation is
    accepted until its grace deadline."""
    if not secret or len(secret) > 128:
        return None
    digest = webhook_secret_hash(secret)
    cached = _SECRET_CACHE.get(digest)
    if cached is not None and time.monotonic() < cached[1]:
        return cached[0]
    now = now or timezone.now()
    cache_for = _SECRET_CACHE_SECONDS
    with scopes_disabled():
        org_id = (
            BeelineCredentials.objects.filter(webhook_secret_hash=digest)
            .values_list("organization_id", flat=True)
            .first()
        )
        if org_id is None:
            previous = (
                BeelineCredentials.objects.filter(
                    previous_webhook_secret_hash=digest,
                    previous_webhook_secret_valid_until__gt=now,
                )
                .values_list("organization_id", "previous_webhook_secret_valid_until")
                .first()
            )
            if previous is not None and previous[1] is not None:
                org_id = previous[0]
                cache_for = min(cache_for, (previous[1] - now).total_seconds())
    if org_id is not None:
        if len(_SECRET_CACHE) >= _SECRET_CACHE_MAX:
            _SECRET_CACHE.clear()
        _SECRET_CACHE[digest] = (org_id, time.monotonic() + cache_for)
    return org_id


# One statement, no savepoint: the webhook's only write (docs/beeline-api.md §9.4: dedupe on
# eventID). It names only what the webhook read of the event (``xsi_event_head``): the call
# columns are left to their database defaults (empty, NULL, ``call_fields_stored`` false) and
# the first rebuild, in the worker, parses the body and fills them. Fewer parameters to bind
# and send on the hottest path; ``_event_columns_defaulted`` keeps the promise checked.
_EVENT_INSERT = (
    f"INSERT INTO {PbxEvent._meta.db_table} ({', '.join(EVENT_COLUMNS)}, error) "
    f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))}, '') "
    "ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING id"
)
_EVENT_INSERT_COLUMNS = {"id", "error", *EVENT_COLUMNS}


def _event_columns_defaulted() -> list[str]:
    """Columns the webhook's insert leaves out that have neither a database default nor NULL
    (empty when the insert is complete; checked by a test)."""
    return [
        str(field.column)
        for field in PbxEvent._meta.concrete_fields
        if field.column not in _EVENT_INSERT_COLUMNS
        and not field.null
        and not field.has_db_default()
    ]


def _event_insert(
    db: BaseDatabaseWrapper, params: list[bool | int | str | datetime | None]
) -> tuple[int] | None:
    row: tuple[int] | None
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(_EVENT_INSERT, params)
            row = cursor.fetchone()
        return row
    # A prepared statement on a server-binding psycopg cursor: PostgreSQL no longer parses and
    # plans the insert for every event (Django's cursor binds on the client and never
    # prepares). Errors are still mapped to django.db's exceptions.
    db.ensure_connection()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.execute(_EVENT_INSERT, params, prepare=True)
        return cursor.fetchone()


def event_store(*, organization_id: int, event: XsiEventHead, body: str) -> int | None:
    """Store an event once per eventID and queue its processing after commit (batched with
    other events by ``pbx.event_publisher``; the sweeper catches any that are not).

    With ``PBX_WEBHOOK_GROUP_COMMIT`` and no transaction open on this thread, the row goes
    through the process's group commit (one statement and commit with the events of other
    request threads, on the batcher's own connection) and is committed when this returns;
    otherwise it is one insert on this thread's connection (in its transaction, if any).

    Returns the new row's id, or None for a duplicate. A duplicate of an event stored but not
    processed yet is queued again: Beeline resends an event we answered 503 (a timeout, or the
    insert committed and the answer was lost), and then must not wait for the sweeper.
    """
    params: list[bool | int | str | datetime | None] = [
        organization_id,
        event.event_id,
        event.event_type,
        event.ext_tracking_id,
        event.target_id,
        event.subscription_id,
        body,
        timezone.now(),
    ]
    db = connections[DEFAULT_DB_ALIAS]
    if settings.PBX_WEBHOOK_GROUP_COMMIT and db.vendor == "postgresql" and not db.in_atomic_block:
        return _event_store_grouped(
            organization_id=organization_id, event_id=event.event_id, params=params
        )
    reused = db.connection is not None
    try:
        row = _event_insert(db, params)
    except (OperationalError, InterfaceError):
        if db.in_atomic_block or not reused:
            raise  # (a fresh connection that failed: PostgreSQL is down, the caller says 503)
        # A connection that died since its last use (PostgreSQL restarted, idle timeout):
        # the webhook skips Django's per-request health check, so reconnect and try once
        # more. The statement is idempotent; a first attempt that did commit makes this a
        # duplicate, queued again below.
        db.close()
        row = _event_insert(db, params)
    if row is None:
        _duplicate_requeue(organization_id=organization_id, event_id=event.event_id)
        return None
    event_pk = int(row[0])
    db.on_commit(lambda: event_publisher.event_stored(event_pk))
    return event_pk


def _event_store_grouped(
    *, organization_id: int, event_id: str, params: list[bool | int | str | datetime | None]
) -> int | None:
    """``event_store`` through the process's group commit (``pbx.event_group_commit``): the
    row is committed, with the others posted meanwhile, when this returns."""
    stored = _insert_batcher().insert(cast(EventRow, tuple(params)))
    if stored.event_pk is None:
        if not stored.twin_in_batch:  # (a twin new in the same commit is published by its own)
            _duplicate_requeue(organization_id=organization_id, event_id=event_id)
        return None
    event_publisher.event_stored(stored.event_pk)  # (committed: no transaction to wait for)
    return stored.event_pk


_batcher: EventInsertBatcher | None = None
_batcher_lock = threading.Lock()


def _batcher_connect() -> psycopg.Connection[Any]:
    """A connection like Django's (same parameters, connect timeout, adapters), in autocommit
    and binding on the server (prepared statements)."""
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    params.pop("cursor_factory", None)
    return psycopg.Connection.connect(autocommit=True, **params)


def _insert_batcher() -> EventInsertBatcher:
    global _batcher
    with _batcher_lock:
        # A forked child (a gunicorn worker) inherits the parent's batcher, its connection and
        # maybe a held lock: it never uses (or closes) them, it makes its own.
        if _batcher is None or _batcher.pid != os.getpid():
            max_age = connections[DEFAULT_DB_ALIAS].settings_dict["CONN_MAX_AGE"]
            _batcher = EventInsertBatcher(_batcher_connect, max_age=max_age)
        return _batcher


def _duplicate_requeue(*, organization_id: int, event_id: str) -> None:
    """Queue the stored twin of a duplicate again if it is still unprocessed (one indexed read,
    only on the rare duplicate: new events keep their single statement). Processing is
    idempotent, so a twin whose first message is merely late is folded once more at worst."""
    with scopes_disabled():
        pk = (
            PbxEvent.objects.filter(
                organization_id=organization_id, event_id=event_id, processed_at__isnull=True
            )
            .values_list("pk", flat=True)
            .first()
        )
    if pk is not None:
        connections[DEFAULT_DB_ALIAS].on_commit(lambda: event_publisher.event_stored(pk))


def events_process(*, event_pks: list[int], now: datetime | None = None) -> int:
    """Apply a batch of stored events: each call they touch is rebuilt once, however many of
    its events are in the batch. Idempotent. A call whose rebuild fails gets the error on its
    events (Диагностика) and stays unprocessed for the sweeper; the other calls of the batch
    are still applied, then the first error is raised. Returns how many calls were rebuilt.
    """
    now = now or timezone.now()
    with scopes_disabled():
        rows = list(
            PbxEvent.objects.filter(pk__in=event_pks, processed_at__isnull=True).values_list(
                "pk", "organization_id", "event_type", "ext_tracking_id"
            )
        )
    calls: dict[tuple[int, str], None] = {}
    orphans: list[int] = []
    for pk, org_id, event_type, ext_tracking_id in rows:
        if event_type == SUBSCRIPTION_TERMINATED:
            event_process(event_pk=pk, now=now)
        elif ext_tracking_id:
            calls[(org_id, ext_tracking_id)] = None
        else:
            orphans.append(pk)
    if orphans:  # nothing to fold them into; kept (and shown) rather than swept for ever
        with scopes_disabled():
            PbxEvent.objects.filter(pk__in=orphans).update(
                processed_at=now, error="no extTrackingId"
            )
    first_error: Exception | None = None
    for org_id, ext_tracking_id in calls:
        try:
            call_rebuild(organization_id=org_id, ext_tracking_id=ext_tracking_id, now=now)
        except Exception as exc:
            logger.exception("call rebuild failed", extra={"organization_id": org_id})
            with organization_scope(org_id):
                PbxEvent.objects.filter(
                    ext_tracking_id=ext_tracking_id, processed_at__isnull=True
                ).update(error=f"{type(exc).__name__}: {exc}"[:500])
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return len(calls)


def events_unprocessed_requeue(
    *, now: datetime | None = None, limit: int = 20_000, batch: int = 500
) -> int:
    """The beat's sweeper: queue again every event stored more than
    ``PBX_EVENT_SWEEP_AFTER_SECONDS`` ago and still unprocessed (its message was never
    published, or was lost with a worker). A partial index keeps this cheap whatever the
    number of processed events. Returns how many were queued."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PBX_EVENT_SWEEP_AFTER_SECONDS)
    with scopes_disabled():
        pks = list(
            PbxEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("pk", flat=True)[:limit]
        )
    for start in range(0, len(pks), batch):
        task_enqueue("pbx.tasks.pbx_events_process", pks[start : start + batch])
    if pks:
        logger.info("unprocessed events queued again", extra={"events": len(pks)})
    return len(pks)


def event_process(*, event_pk: int, now: datetime | None = None) -> None:
    """Apply one stored event. Idempotent: re-running folds the same set of events again."""
    with scopes_disabled():
        row = PbxEvent.objects.filter(pk=event_pk).values_list(
            "organization_id", "event_type", "ext_tracking_id", "subscription_id"
        )
        found = row.first()
    if found is None:
        return
    org_id, event_type, ext_tracking_id, subscription_id = found
    now = now or timezone.now()
    if event_type == "SubscriptionTerminatedEvent":
        with organization_scope(org_id):
            PbxEvent.objects.filter(pk=event_pk).update(processed_at=now)
        subscription_terminated(organization=org_id, subscription_id=subscription_id, now=now)
    elif ext_tracking_id:
        try:
            call_rebuild(organization_id=org_id, ext_tracking_id=ext_tracking_id, now=now)
        except Exception as exc:
            # Visible in Диагностика (events with errors); the raw event stays for a re-run.
            with organization_scope(org_id):
                PbxEvent.objects.filter(pk=event_pk).update(
                    error=f"{type(exc).__name__}: {exc}"[:500]
                )
            raise


def events_prune(*, older_than: datetime, batch: int = 5000) -> int:
    """Delete processed raw events received before ``older_than`` (calls keep their data).

    Walks the (organization, received_at) index for chunks of organizations (the raw events
    table keeps no index of its own on the time: one less on every webhook insert), deleting
    in batches so no statement holds locks for long. Unprocessed events are never pruned.
    """
    with scopes_disabled():
        org_ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
        deleted = 0
        for start in range(0, len(org_ids), 1000):
            old = PbxEvent.objects.filter(
                organization_id__in=org_ids[start : start + 1000],
                received_at__lt=older_than,
                processed_at__isnull=False,
            )
            while pks := list(old.values_list("pk", flat=True)[:batch]):
                deleted += PbxEvent.objects.filter(pk__in=pks)._raw_delete(PbxEvent.objects.db)
    return deleted
