"""Celery entry points of the amoCRM half: ids in, one service call each (queue ``crm``)."""

from __future__ import annotations

from celery import shared_task

from core.models import Organization
from core.tenancy import OrganizationTask
from crm import services, webhooks
from crm.errors import AmoAuthError, AmoPaused, AmoTransientError

# Work for one organization, inside its scope. Transient amoCRM failures (timeouts, 5xx, 429
# after our backoff) retry with backoff + jitter.
_crm_task = shared_task(
    base=OrganizationTask,
    autoretry_for=(AmoTransientError,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)


def _organization(organization_id: int) -> Organization | None:
    return (
        Organization.objects.filter(pk=organization_id)
        .exclude(status=Organization.Status.DISCONNECTED)
        .first()
    )


@shared_task
def amo_tokens_refresh_due() -> int:
    return len(services.amo_tokens_refresh_due())


@_crm_task
def amo_tokens_refresh(organization_id: int) -> None:
    organization = _organization(organization_id)
    if organization is None:
        return
    try:
        services.amo_tokens_refresh(organization=organization, margin=services.DUE_MARGIN)
    except AmoAuthError:
        pass  # recorded as "needs re-authorization"; retrying cannot help


@_crm_task
def amo_users_refresh(organization_id: int) -> None:
    organization = _organization(organization_id)
    if organization is None:
        return
    try:
        services.amo_users_refresh(organization=organization)
    except (AmoAuthError, AmoPaused):
        pass  # visible in Диагностика through the organization status / pause state


@_crm_task
def amo_account_sync(organization_id: int) -> None:
    organization = _organization(organization_id)
    if organization is None:
        return
    try:
        services.amo_account_sync(organization=organization)
    except (AmoAuthError, AmoPaused):
        pass


@shared_task
def amo_disconnects_confirm_due() -> int:
    """Beat: uninstall hooks waiting for amoCRM to confirm that our access is revoked."""
    return len(services.amo_disconnects_confirm_due())


@_crm_task
def amo_webhooks_subscribe(organization_id: int) -> None:
    """At install and re-install: subscribe to the contact webhooks routing follows."""
    organization = _organization(organization_id)
    if organization is None:
        return
    try:
        webhooks.amo_webhooks_subscribe(organization=organization)
    except (AmoAuthError, AmoPaused):
        pass  # stored on the webhook row; Диагностика shows it
