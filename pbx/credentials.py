"""The organization's Beeline connection row: a client on its token, the webhook address it
gives Beeline, and its health as Диагностика shows it (active / rejected / failing).

Shared by the connection, subscription and reconciliation services and the recording proxy;
keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import AuditEntry, Organization
from core.services import audit_record
from pbx.client import BeelineClient
from pbx.errors import BeelineError, BeelineNotConfigured
from pbx.models import BeelineCredentials
from pbx.selectors import credentials_for


def webhook_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def webhook_url(*, credentials: BeelineCredentials) -> str:
    """The callback URL Beeline posts events to [contract: docs/architecture.md Public URLs]."""
    path = reverse("pbx:beeline_events", kwargs={"secret": credentials.webhook_secret})
    return f"{settings.PUBLIC_URL}{path}"


def beeline_client_for(
    organization: Organization | int,
) -> tuple[BeelineCredentials, BeelineClient]:
    """The organization's credentials and a client on its token; BeelineNotConfigured if none."""
    credentials = credentials_for(organization=organization)
    if credentials is None or not credentials.api_token:
        raise BeelineNotConfigured()
    return credentials, BeelineClient(credentials.api_token)


def credentials_flag(*, credentials: BeelineCredentials, error: BeelineError, kind: str) -> None:
    """Mark the connection as failing; the first failure of a streak goes to the audit log."""
    status = BeelineCredentials.Status.REJECTED if error.auth else BeelineCredentials.Status.FAILING
    changed = credentials.status != status or credentials.last_error != error.message
    credentials.status = status
    credentials.last_error = error.message
    credentials.save(update_fields=["status", "last_error", "updated_at"])
    if changed:
        audit_record(
            organization=credentials.organization_id,
            kind=kind,
            level=AuditEntry.Level.ERROR,
            message=error.message,
            data={"status": error.status, "code": error.code},
        )


def credentials_mark_healthy(*, credentials: BeelineCredentials) -> None:
    """Beeline accepted a subscription: clear the failure streak (audited if there was one)."""
    was_failing = credentials.status != BeelineCredentials.Status.ACTIVE
    BeelineCredentials.objects.filter(pk=credentials.pk).update(
        status=BeelineCredentials.Status.ACTIVE,
        last_error="",
        subscription_failures=0,
        subscription_retry_at=None,
        subscription_renew_queued_at=None,
        updated_at=timezone.now(),
    )
    if was_failing:
        audit_record(
            organization=credentials.organization_id,
            kind="beeline.recovered",
            message=_("Связь с Beeline восстановлена, подписка на события активна."),
        )
