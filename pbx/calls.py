"""Calls from their events: rebuild a call and its legs from the stored events of one
extTrackingId (announcing ringing legs), and finalize a finished call — hand it on through
``pbx.signals.call_finished`` exactly once.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»). pbx knows
nothing of amoCRM: calls leave through ``pbx.signals`` only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.locks import advisory_xact_lock
from core.phones import phone_national
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx import signals
from pbx.assembly import AssembledCall, call_assemble, ms_to_datetime
from pbx.models import Abonent, PbxCall, PbxCallLeg, PbxEvent, PbxNumber
from pbx.xsi import XsiEvent, XsiParseError, xsi_event_parse


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


def _stored_events(rows: list[PbxEvent], *, now: datetime) -> list[XsiEvent]:
    """The events of a call as the fold reads them. A row stored before the call columns
    existed is parsed this once and its columns filled, so no later rebuild parses it again."""
    events: list[XsiEvent] = []
    for row in rows:
        if not row.call_fields_stored:
            try:
                fields = PbxEvent.call_fields(xsi_event_parse(row.body))
            except XsiParseError as exc:  # stored bodies were parsed once; be safe anyway
                PbxEvent.objects.filter(pk=row.pk).update(error=str(exc), processed_at=now)
                continue
            PbxEvent.objects.filter(pk=row.pk).update(**fields)
            for name, value in fields.items():
                setattr(row, name, value)
        events.append(row.xsi_event())
    return events


def call_rebuild(
    *, organization_id: int, ext_tracking_id: str, now: datetime | None = None
) -> PbxCall | None:
    """Re-derive a call and its legs from every stored event with this extTrackingId.

    Sends ``call_ringing`` (on commit) for legs first seen ringing, and queues finalization
    when all legs are released. Internal (abonent ↔ abonent) calls are not kept.
    """
    now = now or timezone.now()
    ringing_leg_ids: list[int] = []
    with transaction.atomic(), organization_scope(organization_id):
        # Rebuilds of one call are serialized across workers until this transaction ends.
        advisory_xact_lock(f"call:{organization_id}:{ext_tracking_id}")
        # The stored call fields, not the bodies: each event was parsed once, when it came in.
        rows = list(PbxEvent.objects.filter(ext_tracking_id=ext_tracking_id).defer("body"))
        assembled = call_assemble(_stored_events(rows, now=now))
        call = PbxCall.objects.filter(ext_tracking_id=ext_tracking_id).first()
        PbxEvent.objects.filter(pk__in=[r.pk for r in rows], processed_at__isnull=True).update(
            processed_at=now
        )
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
            call = PbxCall(organization_id=organization_id, ext_tracking_id=ext_tracking_id)
        call.direction = assembled.direction
        call.external_phone = assembled.external_phone.e164 if assembled.external_phone else ""
        call.external_phone_national = (
            assembled.external_phone.national if assembled.external_phone else ""
        )
        call.number = number
        call.line_phone = line_phone
        call.abonent = abonents.get(assembled.responsible_target_id)
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
