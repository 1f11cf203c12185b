"""Celery entry points of call delivery, call-back tracking and the ringing pop-up (queue "crm",
see CELERY_TASK_ROUTES; the pop-up goes to "events"). Each takes ids and calls one service.

The names keep their ``pipeline_`` prefix: the beat schedule and the routes refer to them.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from core.models import Organization
from core.task_queue import task_countdown_cap
from core.tenancy import OrganizationTask
from core.transport import TransportError
from integration import routing
from integration.callbacks import callback_sla_notify as callback_sla_notify_service
from integration.callbacks import callbacks_due_dispatch
from integration.delivery.drain import deliveries_drain
from integration.delivery.queue import (
    deliveries_due_dispatch,
    deliveries_resume_healthy,
    drain_started,
)
from integration.ring_notices import ring_notify
from pbx.errors import BeelineNotConfigured


@shared_task(base=OrganizationTask, acks_late=True, soft_time_limit=600, time_limit=660)
def pipeline_drain(organization_id: int) -> int:
    """Deliver the organization's due calls; schedules itself again for transient retries."""
    drain_started(organization_id=organization_id)
    result = deliveries_drain(organization_id=organization_id)
    if result.more:
        pipeline_drain.delay(organization_id)
    elif result.retry_in is not None:
        # A retry due later than the cap is still found by the beat's pipeline_drain_due.
        countdown = task_countdown_cap(max(1.0, result.retry_in.total_seconds()))
        pipeline_drain.apply_async((organization_id,), countdown=countdown)
    return result.processed


@shared_task(acks_late=True)
def pipeline_drain_due() -> int:
    """Beat: drains for organizations with due or abandoned deliveries (and orphaned calls)."""
    return len(deliveries_due_dispatch())


@shared_task(acks_late=True)
def pipeline_resume_paused() -> int:
    """Beat: resume paused deliveries of organizations whose amoCRM access is healthy again."""
    return len(deliveries_resume_healthy())


@shared_task(base=OrganizationTask, acks_late=True)
def pipeline_ring_notify(organization_id: int, call_id: int, leg_ids: list[int]) -> int:
    """The ringing pop-up (no Celery retries: it is worthless once the call is over)."""
    return len(ring_notify(organization_id=organization_id, call_id=call_id, leg_ids=leg_ids))


# --- «Звонок ответственному» (queue "default": it talks to both amoCRM and Beeline) ----------

_routing_task = shared_task(
    base=OrganizationTask,
    bind=True,
    acks_late=True,
    max_retries=8,
    soft_time_limit=900,
    time_limit=960,
)


def _routing_run(task: Any, organization_id: int, sync: Any) -> int:
    """Run one sync; busy (another sync of the organization runs) and transient failures come
    back later, permanent ones stay recorded for Диагностика (by the sync) and end the task."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    try:
        result = sync(organization)
    except BeelineNotConfigured:
        return 0
    except routing.RoutingBusy as exc:
        raise task.retry(exc=exc, countdown=5 + 5 * task.request.retries) from exc
    except TransportError as exc:
        if exc.permanent:
            return 0
        countdown = task_countdown_cap(30 * 2**task.request.retries)
        raise task.retry(exc=exc, countdown=countdown) from exc
    return int(result.added + result.updated + result.removed)


@_routing_task
def routing_sync_full(self: Any, organization_id: int) -> int:
    """The full comparison of the organization's routing rules with amoCRM (or their removal
    when routing is off)."""
    return _routing_run(
        self, organization_id, lambda org: routing.routing_sync_full(organization=org)
    )


@_routing_task
def routing_contacts_sync(self: Any, organization_id: int, contact_ids: list[int]) -> int:
    """The rules of these contacts' phones (amoCRM webhook, or contacts Beetel created)."""
    return _routing_run(
        self,
        organization_id,
        lambda org: routing.routing_contacts_sync(organization=org, contact_ids=contact_ids),
    )


@shared_task(acks_late=True)
def routing_sync_due() -> int:
    """Beat: the periodic full reconciliation of every organization with routing on."""
    return len(routing.routing_due_dispatch())


# --- call-back tracking (docs/callbacks.md) -----------------------------------------------------


@shared_task(acks_late=True)
def callbacks_due() -> int:
    """Beat: SLA checks for organizations with overdue missed calls, drains for those with
    tasks of returned calls still open."""
    overdue, completing = callbacks_due_dispatch()
    return len(overdue) + len(completing)


@shared_task(base=OrganizationTask, acks_late=True, soft_time_limit=120, time_limit=150)
def callback_sla_notify(organization_id: int) -> int:
    """One amoCRM notification per missed call past its SLA (during working hours only)."""
    return callback_sla_notify_service(organization_id=organization_id)
