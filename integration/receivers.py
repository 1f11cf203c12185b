"""Where the layers below meet the join: core's new organizations, pbx's call signals and crm's
install and contact signals → call settings, ring notices, call delivery and routing.

Call receivers run in the sending worker after its commit; they only write a row and enqueue.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.models import Organization
from integration import tasks
from integration.delivery.queue import deliveries_resume, delivery_enqueue
from integration.routing import routing_contacts_changed
from integration.services import call_settings_create_default


def on_organization_created(sender: Any, *, organization: Organization, **_: Any) -> None:
    call_settings_create_default(organization=organization)


def on_call_ringing(
    sender: Any, *, organization_id: int, call_id: int, leg_ids: list[int], **_: Any
) -> None:
    transaction.on_commit(
        lambda: tasks.pipeline_ring_notify.delay(organization_id, call_id, list(leg_ids))
    )


def on_call_finished(sender: Any, *, organization_id: int, call_id: int, **_: Any) -> None:
    delivery_enqueue(organization_id=organization_id, call_id=call_id)


def on_amo_installed(sender: Any, *, organization_id: int, **_: Any) -> None:
    """A (re-)install or re-authorization: deliveries paused for this account may flow again."""
    deliveries_resume(organization_id=organization_id)


def on_amo_contacts_changed(
    sender: Any, *, organization_id: int, contact_ids: list[int], **_: Any
) -> None:
    """amoCRM reported contacts added, changed or deleted: their routing rules follow."""
    routing_contacts_changed(organization_id=organization_id, contact_ids=contact_ids)
