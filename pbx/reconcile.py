"""Reconciliation with Beeline statistics: a lost webhook must not be a lost call.

Every few minutes (beat) we read ``GET /v2/statistics`` for the last hours and compare it with
our calls. A row with no call of ours (same direction and client number, start within
``MATCH_WINDOW``) becomes a ``PbxCall`` marked ``recovered`` and is handed on through
``call_finished`` like any other finished call. Beeline-only: pbx knows nothing of amoCRM.

Statistics carry no extTrackingId (docs/beeline-api.md §8: only a synthetic fixture has
``externalTrackingId``; used when present), so a recovered call gets a synthetic tracking id
and no recording link. Rows still within ``PBX_RECONCILE_GRACE_SECONDS`` of their end are left
alone: their events may simply not have arrived yet. Events that come after all join the
recovered call (``pbx.calls.call_rebuild``), which is not handed on a second time; both sides
decide "do we have this call?" under the client number's lock (``call_number_lock``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.locks import advisory_xact_lock
from core.models import AuditEntry, Organization
from core.phones import phone_national
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx import signals
from pbx.assembly import ms_to_datetime
from pbx.calls import (
    CALL_MATCH_WINDOW,
    RECOVERED_TRACKING_PREFIX,
    call_number_lock,
    call_twins,
)
from pbx.client import StatRecord
from pbx.credentials import beeline_client_for
from pbx.models import Abonent, BeelineCredentials, PbxCall, PbxNumber
from pbx.xsi import xsi_number_problem

logger = logging.getLogger(__name__)

MATCH_WINDOW = CALL_MATCH_WINDOW
# A statistics row longer than a day is not a call we can place in time.
_MAX_DURATION_MS = 24 * 3600 * 1000
_OUTCOMES = {"RECIEVED": PbxCall.Outcome.ANSWERED, "RECEIVED": PbxCall.Outcome.ANSWERED}


@dataclass(frozen=True, slots=True)
class _Known:
    pk: int
    direction: str
    national: str
    started_at: datetime | None
    unfinished: bool  # not finished and not handed on: its last events may be lost


def _outcome(row: StatRecord, inbound: bool) -> str:
    if inbound:
        return _OUTCOMES.get(row.status.upper(), PbxCall.Outcome.MISSED)
    # GUESS (§8): an outbound PLACED row with duration 0 was not answered.
    return PbxCall.Outcome.ANSWERED if row.duration > 0 else PbxCall.Outcome.MISSED


def statistics_reconcile(
    *, organization: Organization | int, now: datetime | None = None, hours: int | None = None
) -> list[int]:
    """Create (and hand on) the calls Beeline's statistics know and we do not.

    Returns the new PbxCall ids. Idempotent: a second run matches the calls the first one
    created. Raises ``pbx.errors.BeelineError`` subclasses when Beeline cannot be read.
    """
    now = now or timezone.now()
    hours = hours or settings.PBX_RECONCILE_HOURS
    credentials, client = beeline_client_for(organization)
    org_id = credentials.organization_id
    date_from = now - timedelta(hours=hours)
    rows = client.statistics(date_from=date_from, date_to=now)
    grace = timedelta(seconds=settings.PBX_RECONCILE_GRACE_SECONDS)
    with organization_scope(org_id):
        abonents = {a.user_id: a for a in Abonent.objects.all()}
        numbers = {n.phone: n for n in PbxNumber.objects.all()}
        known = [
            _Known(
                pk,
                direction,
                national,
                started_at,
                status != PbxCall.Status.FINISHED and handed_off_at is None,
            )
            for pk, direction, national, started_at, status, handed_off_at in (
                PbxCall.objects.filter(started_at__gte=date_from - MATCH_WINDOW).values_list(
                    "pk",
                    "direction",
                    "external_phone_national",
                    "started_at",
                    "status",
                    "handed_off_at",
                )
            )
        ]
    matched: set[int] = set()
    created: list[int] = []
    for row in sorted(rows, key=lambda r: r.start_date):
        if xsi_number_problem("startDate", row.start_date) or not (
            0 <= row.duration <= _MAX_DURATION_MS
        ):
            logger.warning(
                "statistics row with an impossible time skipped",
                extra={"organization_id": org_id, "start": row.start_date},
            )
            continue
        start = ms_to_datetime(row.start_date)
        if start is None:
            continue
        ended = start + timedelta(milliseconds=row.duration)
        if ended > now - grace:
            continue
        inbound = row.direction.upper() == "INBOUND"
        direction = PbxCall.Direction.IN if inbound else PbxCall.Direction.OUT
        client_phone = row.phone_from if inbound else row.phone_to
        national = phone_national(client_phone) or ""
        twin = min(
            (
                k
                for k in known
                if k.pk not in matched
                and k.direction == direction
                and k.national == national
                and k.started_at is not None
                and abs(k.started_at - start) <= MATCH_WINDOW
            ),
            key=lambda k: (abs(k.started_at - start) if k.started_at else MATCH_WINDOW, k.pk),
            default=None,
        )
        if twin is not None:
            matched.add(twin.pk)
            if twin.unfinished:
                _call_complete(
                    organization_id=org_id, call_pk=twin.pk, row=row, inbound=inbound, ended=ended
                )
            continue
        call_pk = _call_recover(
            organization_id=org_id,
            row=row,
            direction=direction,
            inbound=inbound,
            start=start,
            ended=ended,
            national=national,
            abonent=abonents.get(row.abonent.user_id if row.abonent else ""),
            number=numbers.get(phone_national(row.phone_to) or "") if inbound else None,
            now=now,
            seen={k.pk for k in known},
        )
        if call_pk is not None:
            created.append(call_pk)
            matched.add(call_pk)
            known.append(_Known(call_pk, direction, national, start, False))
    if created:
        audit_record(
            organization=org_id,
            kind="beeline.calls_recovered",
            level=AuditEntry.Level.WARNING,
            message=_(
                "Восстановлено по статистике Beeline звонков: %(n)s (события о них не пришли)."
            )
            % {"n": len(created)},
        )
    return created


def _call_recover(
    *,
    organization_id: int,
    row: StatRecord,
    direction: str,
    inbound: bool,
    start: datetime,
    ended: datetime,
    national: str,
    abonent: Abonent | None,
    number: PbxNumber | None,
    now: datetime,
    seen: set[int],
) -> int | None:
    """Create the recovered call and hand it on, unless a call of the same number appeared
    since ``known`` was read (``seen``): its late events were folded meanwhile. The number's
    lock (``call_number_lock``, also taken by the fold before it creates a call) makes the
    check and the creation one step."""
    user_id = row.abonent.user_id if row.abonent else ""
    ext_id = row.external_tracking_id or f"{RECOVERED_TRACKING_PREFIX}{user_id}:{row.start_date}"
    outcome = _outcome(row, inbound)
    answered = outcome == PbxCall.Outcome.ANSWERED
    try:
        with transaction.atomic(), organization_scope(organization_id):
            call_number_lock(
                organization_id=organization_id, direction=direction, national=national
            )
            twins = call_twins(
                direction=direction,
                national=national,
                started_at=start,
                calls=PbxCall.objects.all(),
            )
            if any(twin.pk not in seen for twin in twins):
                return None
            call = PbxCall.objects.create(
                organization_id=organization_id,
                ext_tracking_id=ext_id[:128],
                direction=direction,
                external_phone=f"+7{national}" if len(national) == 10 else "",
                external_phone_national=national,
                number=number,
                line_phone=number.phone if number else "",
                abonent=abonent,
                started_at=start,
                answered_at=start if answered else None,
                ended_at=ended,
                talk_seconds=max(0, row.duration) // 1000,
                outcome=outcome,
                status=PbxCall.Status.FINISHED,
                finished_at=now,
                handed_off_at=now,
                recovered=True,
                # Only a real tracking id finds the recording (§7).
                recording_user_id=user_id if answered and row.external_tracking_id else "",
            )
            call_pk = call.pk
            transaction.on_commit(
                lambda: signals.call_finished.send(
                    sender=PbxCall, organization_id=organization_id, call_id=call_pk
                )
            )
    except IntegrityError:  # a concurrent run (or late events) created it
        return None
    logger.info(
        "call recovered from statistics",
        extra={"organization_id": organization_id, "call_id": call_pk},
    )
    return call_pk


def _call_complete(
    *, organization_id: int, call_pk: int, row: StatRecord, inbound: bool, ended: datetime
) -> None:
    """A call built from events that never finished although Beeline's statistics say it
    ended minutes ago: its last events were lost, or quarantined as malformed. It is finished
    from the statistics row and marked recovered (later events may still enrich it, but not
    reopen it: ``pbx.calls.call_rebuild``), then finalized like any other call — so it is not
    lost in «ringing» for ever."""
    with transaction.atomic(), organization_scope(organization_id):
        call = PbxCall.objects.filter(pk=call_pk).first()
        if call is None:
            return
        # Serialized with the fold of its events (the same lock as ``call_rebuild``).
        advisory_xact_lock(f"call:{organization_id}:{call.ext_tracking_id}")
        call.refresh_from_db()
        if call.status == PbxCall.Status.FINISHED or call.handed_off_at is not None:
            return  # its events came meanwhile
        if call.answered_at is not None and row.duration <= 0:
            # A row without talk time for a call our events saw answered: not this
            # conversation's end (rows are history, written when a call ends — §8 GUESS).
            return
        now = timezone.now()
        answered = call.answered_at is not None
        call.outcome = PbxCall.Outcome.ANSWERED if answered else _outcome(row, inbound)
        if call.outcome == PbxCall.Outcome.ANSWERED and not call.talk_seconds:
            call.talk_seconds = max(0, row.duration) // 1000
        call.ended_at = call.ended_at or max(ended, call.started_at or ended)
        call.status = PbxCall.Status.FINISHED
        # It ended when statistics say: nothing is left to settle, the finalizer may take it.
        settle = timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS)
        call.finished_at = min(call.ended_at, now - settle)
        call.recovered = True
        call.save()
        transaction.on_commit(lambda: task_enqueue("pbx.tasks.pbx_call_finalize", call_pk))
    logger.info(
        "unfinished call completed from statistics",
        extra={"organization_id": organization_id, "call_id": call_pk},
    )


def statistics_reconcile_due() -> list[int]:
    """Organizations to reconcile: a working Beeline token and not disconnected."""
    with scopes_disabled():
        return list(
            BeelineCredentials.objects.exclude(api_token="")
            .exclude(status=BeelineCredentials.Status.REJECTED)
            .exclude(organization__status=Organization.Status.DISCONNECTED)
            .values_list("organization_id", flat=True)
        )
