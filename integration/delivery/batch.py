"""One batch of claimed deliveries, from the database through the steps to their outcomes.

Loads the calls (with their legs, numbers and abonents), the settings and «Менеджеры» in a
constant number of queries, plans each call (``rules``), settles those that need nothing, then
runs the steps in order on the rest and settles what they leave.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.utils.translation import gettext as _

from core.models import Organization
from core.phones import phone_parse
from core.tenancy import organization_scope
from crm.errors import AmoError
from crm.services import amo_client
from integration.delivery import rules
from integration.delivery.outcomes import batch_failed, batch_finish
from integration.delivery.queue import delivery_expired
from integration.delivery.steps import STEPS
from integration.delivery.work import Work, flush, settle, store
from integration.models import CallDelivery, ManagerMapping
from integration.selectors import call_settings_for
from pbx.models import PbxCall, PbxCallLeg
from pbx.selectors import call_recording_url

Status = CallDelivery.Status


def deliver_batch(*, organization_id: int, delivery_ids: list[int]) -> timedelta | None:
    """Take claimed deliveries through the steps; returns the backoff if some must retry."""
    organization = Organization.objects.get(pk=organization_id)
    deliveries, work = _load(organization, delivery_ids)
    flush(deliveries)
    if not work:
        return None
    try:
        client = amo_client(organization=organization)
    except AmoError as exc:
        retry = batch_failed(organization, work, exc)
        flush(deliveries)
        return retry
    retry = None
    for step in STEPS:
        active = [w for w in work if w.active]
        if not active:
            break
        try:
            step(organization, client, active)
        except AmoError as exc:
            retry = batch_failed(organization, active, exc)
            break
        finally:
            flush(deliveries)
    rest = batch_finish(work)
    flush(deliveries)
    return min((r for r in (retry, rest) if r is not None), default=None)


def _load(
    organization: Organization, delivery_ids: list[int]
) -> tuple[list[CallDelivery], list[Work]]:
    """The deliveries, and the work of those that need amoCRM (the others are settled)."""
    settings = call_settings_for(organization=organization)
    with organization_scope(organization):
        deliveries = list(
            CallDelivery.objects.filter(pk__in=delivery_ids).select_related(
                "pbx_call", "pbx_call__number", "pbx_call__abonent"
            )
        )
        legs: dict[int, list[int]] = defaultdict(list)
        for call_id, abonent_id in (
            PbxCallLeg.objects.filter(pbx_call_id__in=[d.pbx_call_id for d in deliveries])
            .filter(abonent_id__isnull=False)
            .order_by("started_at", "id")
            .values_list("pbx_call_id", "abonent_id")
        ):
            if abonent_id not in legs[call_id]:
                legs[call_id].append(abonent_id)
        managers = {
            m.abonent_id: rules.Manager(amo_user_id=m.amo_user_id, enabled=m.enabled)
            for m in ManagerMapping.objects.all()
        }
    work = []
    for delivery in deliveries:
        call = _finished_call(delivery.pbx_call, legs.get(delivery.pbx_call_id, []))
        plan = rules.plan(call, settings, managers)
        store(delivery, flags=list(plan.flags), responsible_user_id=plan.responsible)
        if plan.skip_reason:
            settle(delivery, Status.SKIPPED_BY_SETTING, plan.skip_reason)
        elif delivery_expired(delivery):
            settle(delivery, Status.FAILED, delivery.last_error or _("Истекло время доставки."))
        else:
            unsorted = delivery.unsorted_state in (
                CallDelivery.Step.POSTING,
                CallDelivery.Step.DONE,
            )
            work.append(
                Work(
                    delivery=delivery,
                    call=call,
                    plan=plan,
                    task_user=plan.task_user,
                    to_unsorted=unsorted,
                )
            )
    return deliveries, work


def _finished_call(call: PbxCall, leg_abonent_ids: list[int]) -> rules.FinishedCall:
    number = call.number
    # A company number is a line ringing a group unless Beeline said it is not multichannel.
    through_line = number is not None and number.is_multichannel is not False
    return rules.FinishedCall(
        ext_tracking_id=call.ext_tracking_id,
        inbound=call.direction == PbxCall.Direction.IN,
        outcome=str(call.outcome or ""),
        phone=phone_parse(call.external_phone or call.external_phone_national),
        abonent_id=call.abonent_id,
        leg_abonent_ids=tuple(leg_abonent_ids),
        multichannel_name=number.name if number is not None and through_line else None,
        recovered=call.recovered,
        talk_seconds=int(call.talk_seconds or 0),
        started_at=call.started_at,
        ended_at=call.ended_at,
        recording_url=call_recording_url(call=call),
        called_phone=phone_parse(call.line_phone or (call.abonent.phone if call.abonent else "")),
    )
