"""Where the layers below meet the join: core's new organizations, pbx's call signals and crm's
install signal → call settings, ring notices and call delivery.

Call receivers run in the sending worker after its commit; they only write a row and enqueue —
except the ringing pop-up, sent right there: it is worth something only while the phone rings,
and a trip through the queue behind other events' folding can take longer than that.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from core.models import Organization
from integration import tasks
from integration.delivery.queue import deliveries_resume, delivery_enqueue
from integration.ring_notices import ring_notify
from integration.services import call_settings_create_default

logger = logging.getLogger(__name__)


def on_organization_created(sender: Any, *, organization: Organization, **_: Any) -> None:
    call_settings_create_default(organization=organization)


def on_call_ringing(
    sender: Any, *, organization_id: int, call_id: int, leg_ids: list[int], **_: Any
) -> None:
    def notify() -> None:
        try:
            ring_notify(organization_id=organization_id, call_id=call_id, leg_ids=list(leg_ids))
        except Exception:  # never lose the pop-up to a hiccup here: the queue tries once more
            logger.exception("ring notification failed", extra={"organization_id": organization_id})
            tasks.pipeline_ring_notify.delay(organization_id, call_id, list(leg_ids))

    transaction.on_commit(notify)


def on_call_finished(sender: Any, *, organization_id: int, call_id: int, **_: Any) -> None:
    delivery_enqueue(organization_id=organization_id, call_id=call_id)


def on_amo_installed(sender: Any, *, organization_id: int, **_: Any) -> None:
    """A (re-)install or re-authorization: deliveries paused for this account may flow again."""
    deliveries_resume(organization_id=organization_id)
