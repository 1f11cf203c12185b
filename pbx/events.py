"""Beeline's XSI events: intake (which organization a webhook secret names, one cheap insert per
event, deduplicated on eventID), processing (fold the event's call, or re-subscribe when Beeline
ended the subscription), and pruning old raw events.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx.calls import call_rebuild
from pbx.credentials import webhook_secret_hash
from pbx.models import BeelineCredentials, CallFieldValue, PbxEvent
from pbx.subscriptions import subscription_terminated
from pbx.xsi import XsiEvent

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


# The call columns by name, in the order call_fields() gives them (asked of an empty event).
_CALL_COLUMNS = tuple(PbxEvent.call_fields(XsiEvent(event_id="", event_type="")))
# One statement, no savepoint: the webhook's only write (docs/beeline-api.md §9.4: dedupe on
# eventID). It carries the call fields the webhook has just parsed, so no one parses it again.
_EVENT_INSERT = f"""
    INSERT INTO {PbxEvent._meta.db_table}
        (organization_id, event_id, event_type, ext_tracking_id, target_id, subscription_id,
         body, received_at, error, {", ".join(_CALL_COLUMNS)})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', {", ".join(["%s"] * len(_CALL_COLUMNS))})
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING id
"""


def _sql_value(value: CallFieldValue) -> bool | int | str | None:
    return json.dumps(value) if isinstance(value, list) else value  # a JSON column


def event_store(*, organization_id: int, event: XsiEvent, body: str) -> int | None:
    """Store a parsed event once per eventID and queue its processing after commit.

    Returns the new row's id, or None for a duplicate (already stored: nothing more to do).
    """
    call = event.call
    call_fields = PbxEvent.call_fields(event)
    params: list[bool | int | str | datetime | None] = [
        organization_id,
        event.event_id,
        event.event_type,
        call.ext_tracking_id[:128] if call else "",
        event.target_id,
        event.subscription_id,
        body,
        timezone.now(),
        *(_sql_value(call_fields[column]) for column in _CALL_COLUMNS),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_INSERT, params)
        row = cursor.fetchone()
    if row is None:
        return None
    event_pk = int(row[0])
    transaction.on_commit(lambda: task_enqueue("pbx.tasks.pbx_event_process", event_pk))
    return event_pk


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


def events_prune(*, older_than: datetime) -> int:
    """Delete processed raw events received before ``older_than`` (calls keep their data)."""
    with scopes_disabled():
        deleted, _ = PbxEvent.objects.filter(
            received_at__lt=older_than, processed_at__isnull=False
        ).delete()
    return deleted
