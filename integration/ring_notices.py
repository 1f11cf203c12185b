"""The pop-up in amoCRM while a phone rings (settings 1/4): once per (call, manager).

A ``RingNotice`` row per (call, amoCRM user) is the dedupe key; it is claimed (``sent_at``)
before the request and released when amoCRM did not take it, so a later ringing leg of the same
call may try again. Delivery reads ``sent_at`` for the journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from core import metrics
from core.models import Organization
from core.tenancy import organization_scope
from crm.client import PhoneCallEvent
from crm.errors import AmoError
from crm.services import amo_client
from integration.delivery.rules import pop_up_wanted
from integration.models import ManagerMapping, RingNotice
from integration.selectors import call_settings_for
from pbx.models import PbxCall, PbxCallLeg, PbxEvent

logger = logging.getLogger(__name__)

RING_RETRY_SECONDS = 0.3


def ring_notify(
    *, organization_id: int, call_id: int, leg_ids: Sequence[int], now: datetime | None = None
) -> list[int]:
    """The incoming/outgoing-call pop-up for the mapped, enabled managers of the ringing legs,
    once per (call, user). Returns the amoCRM user ids notified.

    Never raises for amoCRM trouble: after one quick second try the pop-up is given up (the
    claims are released, so a later ringing leg of the same call may try again).
    """
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization_id):
        call = PbxCall.objects.filter(pk=call_id).first()
        if call is None or not call.external_phone:
            return []
        settings = call_settings_for(organization=organization)
        if not pop_up_wanted(settings, inbound=call.direction == PbxCall.Direction.IN):
            return []
        legs = list(
            PbxCallLeg.objects.filter(pk__in=list(leg_ids), pbx_call_id=call_id)
            .filter(abonent_id__isnull=False)
            .values_list("abonent_id", "target_id")
        )
        abonent_ids = {abonent_id for abonent_id, _target in legs}
        mapped = ManagerMapping.objects.filter(
            abonent_id__in=abonent_ids, enabled=True, amo_user_id__isnull=False
        ).values_list("amo_user_id", flat=True)
        users = sorted({user for user in mapped if user is not None})
        if not users:
            return []
        # One statement for all managers: this runs while the phone rings.
        RingNotice.objects.bulk_create(
            [
                RingNotice(organization_id=organization_id, pbx_call_id=call_id, amo_user_id=u)
                for u in users
            ],
            ignore_conflicts=True,
        )
        with transaction.atomic():
            claimed = list(
                RingNotice.objects.select_for_update(skip_locked=True)
                .filter(pbx_call_id=call_id, amo_user_id__in=users, sent_at__isnull=True)
                .values_list("pk", "amo_user_id")
            )
            RingNotice.objects.filter(pk__in=[pk for pk, _u in claimed]).update(sent_at=now)
    if not claimed:
        return []
    to_notify = [user for _pk, user in claimed]
    event = PhoneCallEvent(phone_number=call.external_phone, users=to_notify)
    # A pop-up is worth something only while the phone rings: one quick second try, no more.
    for attempt in (1, 2):
        try:
            amo_client(organization=organization).events_phone_call([event])
            _popup_latency_observe(organization_id, call, [target for _a, target in legs])
            return to_notify
        except AmoError as exc:
            if exc.transient and attempt == 1:
                time.sleep(RING_RETRY_SECONDS)
                continue
            error = exc.message  # still failing, or paused, revoked, refused
        break
    with organization_scope(organization_id):
        RingNotice.objects.filter(pk__in=[pk for pk, _u in claimed]).update(sent_at=None)
    logger.info(
        "ring notification not sent",
        extra={"organization_id": organization_id, "error": error},
    )
    return []


def _popup_latency_observe(organization_id: int, call: PbxCall, target_ids: list[str]) -> None:
    """Ringing → pop-up for the metrics: from the receipt of the first event of these legs
    (one indexed read, after the pop-up has gone out)."""
    with organization_scope(organization_id):
        received_at = PbxEvent.objects.filter(
            organization_id=organization_id,
            ext_tracking_id=call.ext_tracking_id,
            target_id__in=target_ids,
        ).aggregate(first=Min("received_at"))["first"]
    metrics.ring_popup_observe(ringing_received_at=received_at)
