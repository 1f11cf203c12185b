"""Where the two halves meet: pbx's call signals and crm's install signal → the pipeline.

Receivers run in the sending worker after its commit; they only write a row and enqueue.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def on_call_ringing(
    sender: Any, *, organization_id: int, call_id: int, leg_ids: list[int], **_: Any
) -> None:
    from integration import tasks

    transaction.on_commit(
        lambda: tasks.pipeline_ring_notify.delay(organization_id, call_id, list(leg_ids))
    )


def on_call_finished(sender: Any, *, organization_id: int, call_id: int, **_: Any) -> None:
    from integration.pipeline import delivery_enqueue

    delivery_enqueue(organization_id=organization_id, call_id=call_id)


def on_amo_installed(sender: Any, *, organization_id: int, **_: Any) -> None:
    """A (re-)install or re-authorization: deliveries paused for this account may flow again."""
    from integration.pipeline import deliveries_resume

    deliveries_resume(organization_id=organization_id)


def on_amo_contacts_changed(
    sender: Any, *, organization_id: int, contact_ids: list[int], **_: Any
) -> None:
    """amoCRM reported contacts added, changed or deleted: their routing rules follow."""
    from integration.routing import routing_contacts_changed

    routing_contacts_changed(organization_id=organization_id, contact_ids=contact_ids)
