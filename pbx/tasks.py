"""Celery tasks of the Beeline side (queue ``events``). Each takes ids and calls one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.models import Organization
from core.task_queue import task_fanout_countdown
from core.tenancy import OrganizationTask, scopes_disabled
from pbx import subscriptions
from pbx.calls import call_finalize, call_finalize_due
from pbx.connection import pbx_sync
from pbx.errors import BeelineError, BeelineNotConfigured
from pbx.events import event_process, events_process, events_prune, events_unprocessed_requeue
from pbx.models import BeelineCredentials
from pbx.reconcile import statistics_reconcile, statistics_reconcile_due

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def pbx_event_process(event_pk: int) -> None:
    event_process(event_pk=event_pk)


@shared_task(acks_late=True)
def pbx_events_process(event_pks: list[int]) -> int:
    """A batch of stored events (the web process publishes one message per batch)."""
    return events_process(event_pks=[int(pk) for pk in event_pks][:5000])


@shared_task(acks_late=True)
def pbx_events_sweep() -> int:
    """Beat: events stored but never processed are queued again."""
    return events_unprocessed_requeue()


@shared_task(acks_late=True)
def pbx_call_finalize(call_pk: int) -> bool:
    return call_finalize(call_pk=call_pk)


@shared_task(acks_late=True)
def pbx_calls_finalize_due() -> int:
    """Beat safety net: finalizes settled calls whose countdown task was lost."""
    return call_finalize_due()


@shared_task(base=OrganizationTask, acks_late=True)
def subscription_renew_task(organization_id: int) -> None:
    # Failures are not retried here: subscription_renew stored a backoff time, and the next
    # beat of subscription_renew_due picks the organization up again after it.
    try:
        subscriptions.subscription_renew(organization=organization_id)
    except (BeelineError, BeelineNotConfigured) as exc:
        logger.warning(
            "subscription renewal failed",
            extra={"organization_id": organization_id, "error": str(exc)},
        )


@shared_task(acks_late=True)
def subscription_renew_due() -> int:
    return len(subscriptions.subscription_renew_due(now=timezone.now()))


@shared_task(
    base=OrganizationTask,
    acks_late=True,
    autoretry_for=(BeelineError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def pbx_sync_task(organization_id: int) -> None:
    organization = Organization.objects.get(pk=organization_id)
    try:
        pbx_sync(organization=organization)
    except (BeelineNotConfigured, BeelineError) as exc:
        if isinstance(exc, BeelineError) and exc.transient:
            raise  # Beeline down or asking us to slow down: retried with backoff
        logger.warning("pbx sync failed", extra={"organization_id": organization_id})


@shared_task(acks_late=True)
def pbx_sync_all() -> int:
    """Daily resync of abonents and numbers, fanned out one task per organization."""
    with scopes_disabled():
        org_ids = list(
            BeelineCredentials.objects.exclude(api_token="")
            .exclude(status=BeelineCredentials.Status.REJECTED)
            .exclude(organization__status=Organization.Status.DISCONNECTED)
            .values_list("organization_id", flat=True)
        )
    chunk, spacing = settings.PBX_FANOUT_CHUNK, settings.PBX_FANOUT_SPACING_SECONDS
    for index, org_id in enumerate(org_ids):
        countdown = task_fanout_countdown(
            index=index, total=len(org_ids), chunk=chunk, spacing=spacing
        )
        pbx_sync_task.apply_async((org_id,), countdown=countdown)
    return len(org_ids)


@shared_task(acks_late=True)
def pbx_events_prune() -> int:
    return events_prune(
        older_than=timezone.now() - timedelta(days=settings.PBX_EVENT_RETENTION_DAYS)
    )


@shared_task(base=OrganizationTask, acks_late=True)
def statistics_reconcile_task(organization_id: int) -> int:
    """Recover this organization's calls whose events never arrived (a lost webhook)."""
    try:
        return len(statistics_reconcile(organization=organization_id))
    except (BeelineError, BeelineNotConfigured) as exc:
        # The next beat tries again; a Beeline outage is already visible in Диагностика.
        logger.warning(
            "statistics reconciliation failed",
            extra={"organization_id": organization_id, "error": str(exc)},
        )
        return 0


@shared_task(acks_late=True)
def statistics_reconcile_all() -> int:
    """Beat: every organization with a working Beeline token is reconciled once per period,
    in chunks of ``PBX_RECONCILE_CHUNK`` (one message per chunk, not per organization) spread
    evenly over the period rather than a burst: at 10,000 organizations, 500 messages and 17
    statistics reads per second, each with its own token."""
    organization_ids = statistics_reconcile_due()
    size = settings.PBX_RECONCILE_CHUNK
    chunks = [organization_ids[i : i + size] for i in range(0, len(organization_ids), size)]
    step = settings.PBX_RECONCILE_PERIOD_SECONDS / max(1, len(chunks))
    for position, chunk in enumerate(chunks):
        statistics_reconcile_chunk.apply_async((chunk,), countdown=round(position * step, 1))
    return len(organization_ids)


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def statistics_reconcile_chunk(organization_ids: list[int]) -> int:
    """Reconcile a few organizations one after the other (each in its own scope; one
    failing does not stop the others)."""
    return sum(int(statistics_reconcile_task(int(org_id))) for org_id in organization_ids)


@shared_task
def webhook_secrets_expire() -> int:
    """Beat: old webhook secrets stop working after their grace period."""
    return subscriptions.webhook_secrets_expire()
