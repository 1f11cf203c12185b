from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from integration import services
from integration.models import Organization


@shared_task
def audit_prune() -> int:
    return services.audit_prune(older_than=timezone.now() - settings.AUDIT_RETENTION)


# --- the call pipeline (queue "crm", see CELERY_TASK_ROUTES) --------------------------------


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def pipeline_drain(organization_id: int) -> int:
    """Deliver the organization's due calls; schedules itself again for transient retries."""
    from integration import pipeline

    result = pipeline.deliveries_drain(organization_id=organization_id)
    if result.more:
        pipeline_drain.delay(organization_id)
    elif result.retry_in is not None:
        pipeline_drain.apply_async(
            (organization_id,), countdown=max(1.0, result.retry_in.total_seconds())
        )
    return result.processed


@shared_task(acks_late=True)
def pipeline_drain_due() -> int:
    """Beat: drains for organizations with due or abandoned deliveries (and orphaned calls)."""
    from integration import pipeline

    return len(pipeline.deliveries_due_dispatch())


@shared_task(acks_late=True)
def pipeline_resume_paused() -> int:
    """Beat: resume paused deliveries of organizations whose amoCRM access is healthy again."""
    from integration import pipeline

    return len(pipeline.deliveries_resume_healthy())


@shared_task(acks_late=True)
def pipeline_ring_notify(organization_id: int, call_id: int, leg_ids: list[int]) -> int:
    """The ringing pop-up (no Celery retries: it is worthless once the call is over)."""
    from integration import pipeline

    return len(
        pipeline.ring_notify(organization_id=organization_id, call_id=call_id, leg_ids=leg_ids)
    )


# --- «Звонок ответственному» (queue "default": it talks to both amoCRM and Beeline) ----------

_routing_task = shared_task(
    bind=True, acks_late=True, max_retries=8, soft_time_limit=900, time_limit=960
)


def _routing_retry(task: Any, exc: Exception) -> None:
    """Busy (another sync of the organization runs) and transient failures come back later;
    permanent ones stay recorded for Диагностика and end the task."""
    from crm.errors import AmoError, AmoTransientError
    from integration.routing import RoutingBusy
    from pbx.errors import BeelineError

    if isinstance(exc, RoutingBusy):
        raise task.retry(exc=exc, countdown=5 + 5 * task.request.retries)
    transient = isinstance(exc, AmoTransientError) or (
        isinstance(exc, BeelineError) and not exc.permanent
    )
    if transient:
        raise task.retry(exc=exc, countdown=min(900, 30 * 2**task.request.retries))
    if not isinstance(exc, AmoError | BeelineError):
        raise exc


@_routing_task
def routing_sync_full(self: Any, organization_id: int) -> int:
    from integration import routing
    from pbx.errors import BeelineNotConfigured

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    try:
        result = routing.routing_sync_full(organization=organization)
    except BeelineNotConfigured:
        return 0
    except Exception as exc:
        _routing_retry(self, exc)
        return 0
    return result.added + result.updated + result.removed


@_routing_task
def routing_contacts_sync(self: Any, organization_id: int, contact_ids: list[int]) -> int:
    from integration import routing
    from pbx.errors import BeelineNotConfigured

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    try:
        result = routing.routing_contacts_sync(organization=organization, contact_ids=contact_ids)
    except BeelineNotConfigured:
        return 0
    except Exception as exc:
        _routing_retry(self, exc)
        return 0
    return result.added + result.updated + result.removed


@shared_task(acks_late=True)
def routing_sync_due() -> int:
    """Beat: the periodic full reconciliation of every organization with routing on."""
    from integration import routing

    return len(routing.routing_due_dispatch())
