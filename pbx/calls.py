"""Calls from their events: rebuild a call and its legs from the stored events of one
extTrackingId (announcing ringing legs), and finalize a finished call — hand it on through
``pbx.signals.call_finished`` exactly once.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»). pbx knows
nothing of amoCRM: calls leave through ``pbx.signals`` only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from core.bulk import rows_update
from core.locks import advisory_xact_lock
from core.phones import phone_national
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx import signals
from pbx.assembly import AssembledCall, call_assemble, ms_to_datetime
from pbx.models import Abonent, PbxCall, PbxCallLeg, PbxEvent, PbxNumber
from pbx.xsi import XsiEvent, XsiParseError, xsi_event_parse, xsi_number_problem

logger = logging.getLogger(__name__)

# Two reports of one call — a statistics row and a call built from events — agree on the
# direction and the client's number, and their starts lie within this window
# (docs/beeline-api.md §8: statistics carry no extTrackingId to join on).
CALL_MATCH_WINDOW = timedelta(seconds=90)
# The synthetic tracking id of a call recovered from a statistics row without one.
RECOVERED_TRACKING_PREFIX = "stat:"


def call_number_lock(*, organization_id: int, direction: str, national: str) -> None:
    """Serialize, until the transaction ends, every decision "is this a call we already
    have?" about one client number: the fold creating a call from events and reconciliation
    recovering one from statistics then never both create the same call."""
    advisory_xact_lock(f"call-number:{organization_id}:{direction}:{national}")


def call_twins(
    *, direction: str, national: str, started_at: datetime, calls: models.QuerySet[PbxCall]
) -> list[PbxCall]:
    """Those of ``calls`` that may be the same call: same direction and client number, start
    within ``CALL_MATCH_WINDOW``; nearest start first."""
    found = calls.filter(
        direction=direction,
        external_phone_national=national,
        started_at__gte=started_at - CALL_MATCH_WINDOW,
        started_at__lte=started_at + CALL_MATCH_WINDOW,
    )
    return sorted(found, key=lambda c: (abs((c.started_at or started_at) - started_at), c.pk))


def _line_number(
    assembled: AssembledCall, numbers: list[PbxNumber]
) -> tuple[PbxNumber | None, str]:
    """The multichannel number the call came through: a leg targeting a number (per-number
    subscription), else the first redirection party that is one of our numbers (§3)."""
    by_id = {n.number_id: n for n in numbers}
    by_phone = {n.phone: n for n in numbers}
    for leg in assembled.legs:
        if leg.target_id in by_id:
            return by_id[leg.target_id], by_id[leg.target_id].phone
    first_line = ""
    for address in assembled.line_addresses:
        national = phone_national(address) or ""
        if national in by_phone:
            return by_phone[national], national
        first_line = first_line or national
    return None, first_line


def _row_problem(row: PbxEvent) -> str:
    """Why a row's stored call fields cannot be folded ("" when they can): rows stored by an
    earlier release were not checked as ``xsi_event_parse`` checks them now."""
    for name, value, time in (
        ("startTime", row.start_time, True),
        ("answerTime", row.answer_time, True),
        ("releaseTime", row.release_time, True),
        ("sequenceNumber", row.sequence_number, False),
    ):
        problem = xsi_number_problem(name, value, time=time)
        if problem:
            return problem
    return ""


def _stored_events(rows: list[PbxEvent], *, now: datetime) -> list[XsiEvent]:
    """The events of a call as the fold reads them. Rows whose call columns are not filled
    yet (the webhook stores only the event's head) are parsed this once — their bodies read
    in one query, their columns written in one — so no later rebuild parses them again.

    A malformed event (an unreadable body, a time or number out of range) is quarantined:
    marked with the reason, processed, and left out of this and every later fold, so one bad
    event never stops its call from being built from the others (docs/architecture.md
    «Faults»)."""
    unparsed = {row.pk: row for row in rows if not row.call_fields_stored}
    quarantined: dict[int, str] = {}
    if unparsed:
        bodies = dict(PbxEvent.objects.filter(pk__in=list(unparsed)).values_list("pk", "body"))
        filled: list[PbxEvent] = []
        for pk, row in unparsed.items():
            try:
                fields = PbxEvent.call_fields(xsi_event_parse(bodies[pk]))
            except XsiParseError as exc:
                quarantined[pk] = str(exc)
                continue
            for name, value in fields.items():
                setattr(row, name, value)
            filled.append(row)
        if filled:
            rows_update(filled, _CALL_FIELD_NAMES, organization_id=filled[0].organization_id)
    for row in rows:
        if row.call_fields_stored and row.pk not in quarantined:
            problem = _row_problem(row)
            if problem:
                quarantined[row.pk] = problem
    for pk, reason in quarantined.items():
        PbxEvent.objects.filter(pk=pk).update(
            error=reason[:500], processed_at=now, quarantined_at=now
        )
        logger.warning("malformed event quarantined", extra={"event_pk": pk, "reason": reason})
    return [row.xsi_event() for row in rows if row.call_fields_stored and row.pk not in quarantined]


_CALL_FIELD_NAMES = tuple(PbxEvent.call_fields(XsiEvent(event_id="", event_type="")))


def _recovered_twin(*, organization_id: int, assembled: AssembledCall) -> PbxCall | None:
    """The call reconciliation recovered from statistics that these events describe, if it
    did (their events were late: a worker's backlog, a redelivered task, Beeline itself):
    the events then join it instead of making the call a second time. Only a recovered call
    with a synthetic tracking id qualifies (a real one names another call), and only one
    that no other events joined. Takes the client number's lock (``call_number_lock``), so
    reconciliation cannot recover this call meanwhile."""
    if assembled.started_at is None:
        return None
    national = assembled.external_phone.national if assembled.external_phone else ""
    call_number_lock(
        organization_id=organization_id, direction=assembled.direction, national=national
    )
    twins = call_twins(
        direction=assembled.direction,
        national=national,
        started_at=assembled.started_at,
        calls=PbxCall.objects.filter(
            recovered=True,
            events_tracking_id="",
            ext_tracking_id__startswith=RECOVERED_TRACKING_PREFIX,
        ),
    )
    return twins[0] if twins else None


def _call_fields_set(
    call: PbxCall,
    assembled: AssembledCall,
    *,
    abonent: Abonent | None,
    number: PbxNumber | None,
    line_phone: str,
    now: datetime,
) -> None:
    """The call's columns from its events."""
    phone = assembled.external_phone
    if call.recovered and assembled.status != PbxCall.Status.FINISHED:
        # Statistics already said how this call ended; events that do not tell the whole
        # story only fill what the row lacked. The call stays finished (and handed on).
        call.abonent = call.abonent or abonent
        if call.number is None:
            call.number, call.line_phone = number, line_phone or call.line_phone
        if phone is not None and not call.external_phone:
            call.external_phone, call.external_phone_national = phone.e164, phone.national
        return
    call.direction = assembled.direction
    call.external_phone = phone.e164 if phone else ""
    call.external_phone_national = phone.national if phone else ""
    call.number = number
    call.line_phone = line_phone
    call.abonent = abonent
    call.started_at = assembled.started_at
    call.answered_at = assembled.answered_at
    call.ended_at = assembled.ended_at
    call.talk_seconds = assembled.talk_seconds
    call.status = assembled.status
    call.outcome = assembled.outcome if assembled.status == PbxCall.Status.FINISHED else ""
    call.recording_user_id = assembled.answered_target_id
    if assembled.status == PbxCall.Status.FINISHED:
        call.finished_at = call.finished_at or now
    elif call.handed_off_at is None:
        call.finished_at = None  # a late leg reopened the call before hand-off


def call_rebuild(
    *, organization_id: int, ext_tracking_id: str, now: datetime | None = None
) -> PbxCall | None:
    """Re-derive a call and its legs from every stored event with this extTrackingId.

    Sends ``call_ringing`` (on commit) for legs first seen ringing, and queues finalization
    when all legs are released. Internal (abonent ↔ abonent) calls are not kept. Events of a
    call already recovered from statistics join that call (``_recovered_twin``), which was
    handed on when it was recovered and is not handed on again. Malformed events are
    quarantined and left out (``_stored_events``).
    """
    now = now or timezone.now()
    ringing_leg_ids: list[int] = []
    with transaction.atomic(), organization_scope(organization_id):
        # Rebuilds of one call are serialized across workers until this transaction ends.
        advisory_xact_lock(f"call:{organization_id}:{ext_tracking_id}")
        # The stored call fields, not the bodies: each event was parsed once, when it came in.
        rows = list(
            PbxEvent.objects.filter(
                ext_tracking_id=ext_tracking_id, quarantined_at__isnull=True
            ).defer("body")
        )
        events = _stored_events(rows, now=now)
        assembled = call_assemble(events)
        call = (
            PbxCall.objects.filter(
                models.Q(ext_tracking_id=ext_tracking_id)
                | models.Q(events_tracking_id=ext_tracking_id)
            )
            .order_by("pk")
            .first()
        )
        # Folded now (a failure of an earlier attempt is no longer the event's state).
        folded = {e.event_id for e in events}
        PbxEvent.objects.filter(
            pk__in=[r.pk for r in rows if r.event_id in folded], processed_at__isnull=True
        ).update(processed_at=now, error="")
        if assembled is None or assembled.internal:
            if call is not None and call.handed_off_at is None:
                call.delete()
            return None
        abonents = {
            a.user_id: a
            for a in Abonent.objects.filter(user_id__in=[leg.target_id for leg in assembled.legs])
        }
        number, line_phone = _line_number(assembled, list(PbxNumber.objects.all()))
        if call is None:
            call = _recovered_twin(organization_id=organization_id, assembled=assembled)
            if call is not None:
                call.events_tracking_id = ext_tracking_id[:128]
                logger.info(
                    "late events joined a call recovered from statistics",
                    extra={"organization_id": organization_id, "call_id": call.pk},
                )
        if call is None:
            call = PbxCall(organization_id=organization_id, ext_tracking_id=ext_tracking_id)
        _call_fields_set(
            call,
            assembled,
            abonent=abonents.get(assembled.responsible_target_id),
            number=number,
            line_phone=line_phone,
            now=now,
        )
        call.save()
        existing = {(leg.target_id, leg.call_id): leg for leg in call.legs.all()}
        for leg in assembled.legs:
            row_leg = existing.get((leg.target_id, leg.call_id))
            is_new = row_leg is None
            if row_leg is None:
                row_leg = PbxCallLeg(
                    organization_id=organization_id,
                    pbx_call=call,
                    target_id=leg.target_id,
                    call_id=leg.call_id,
                )
            row_leg.abonent = abonents.get(leg.target_id)
            row_leg.personality = leg.personality
            row_leg.state = leg.state
            row_leg.started_at = ms_to_datetime(leg.start_time)
            row_leg.answered_at = ms_to_datetime(leg.answer_time)
            row_leg.released_at = ms_to_datetime(leg.release_time)
            row_leg.release_cause = leg.release_cause[:64]
            row_leg.releasing_party = leg.releasing_party[:32]
            row_leg.save()
            if is_new and leg.ringing:
                ringing_leg_ids.append(row_leg.pk)
        call_pk, finished = call.pk, call.status == PbxCall.Status.FINISHED
        handed_off = call.handed_off_at is not None
        if ringing_leg_ids and not handed_off:
            leg_ids = list(ringing_leg_ids)
            transaction.on_commit(
                lambda: signals.call_ringing.send(
                    sender=PbxCall,
                    organization_id=organization_id,
                    call_id=call_pk,
                    leg_ids=leg_ids,
                )
            )
        if finished and not handed_off:
            transaction.on_commit(
                lambda: task_enqueue(
                    "pbx.tasks.pbx_call_finalize",
                    call_pk,
                    countdown=settings.PBX_CALL_SETTLE_SECONDS,
                )
            )
    return call


def call_finalize(*, call_pk: int, now: datetime | None = None) -> bool:
    """Hand a finished call to the pipeline (``call_finished``) exactly once.

    Claims the call with a conditional UPDATE (finished, settled, not yet handed off): of any
    number of concurrent or repeated finalizers only one sends the signal. Returns whether
    this call sent it.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS)
    with scopes_disabled():
        org_id = (
            PbxCall.objects.filter(pk=call_pk).values_list("organization_id", flat=True).first()
        )
    if org_id is None:
        return False
    with transaction.atomic(), organization_scope(org_id):
        claimed = PbxCall.objects.filter(
            pk=call_pk,
            status=PbxCall.Status.FINISHED,
            handed_off_at__isnull=True,
            finished_at__lte=cutoff,
        ).update(handed_off_at=now)
        if claimed:
            transaction.on_commit(
                lambda: signals.call_finished.send(
                    sender=PbxCall, organization_id=org_id, call_id=call_pk
                )
            )
    return bool(claimed)


def call_finalize_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Finalize every settled call not yet handed off (the beat's safety net behind the
    countdown task, and the deterministic entry point for tests). Returns how many were sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS)
    with scopes_disabled():
        due = list(
            PbxCall.objects.filter(
                status=PbxCall.Status.FINISHED, handed_off_at__isnull=True, finished_at__lte=cutoff
            )
            .order_by("finished_at")
            .values_list("pk", flat=True)[:limit]
        )
    return sum(call_finalize(call_pk=pk, now=now) for pk in due)
