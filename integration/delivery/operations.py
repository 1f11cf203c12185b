"""What people do to deliveries: «Повторить» in the cabinet's journal and the admin's action."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import Organization
from core.services import audit_record
from core.tenancy import organization_scope
from integration.delivery.queue import drain_after_commit
from integration.models import CallDelivery

Status = CallDelivery.Status


def delivery_retry(*, organization: Organization, call_id: int) -> bool:
    """Put a failed (or paused) call back in the queue, with a fresh day of attempts.

    ``call_id`` is the PbxCall id. Returns False when the call is not the organization's or
    not failed/paused. Remote ids already stored are kept, so nothing is posted twice.
    """
    now = timezone.now()
    with organization_scope(organization):
        updated = CallDelivery.objects.filter(
            organization=organization,
            pbx_call_id=call_id,
            status__in=[Status.FAILED, Status.PAUSED],
        ).update(
            status=Status.PENDING,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=now,
            lease_until=None,
            updated_at=now,
        )
    if updated:
        audit_record(
            organization=organization,
            kind="pipeline.retry",
            message=_("Повторная передача звонка в amoCRM"),
            data={"call_id": call_id},
        )
        drain_after_commit(organization.pk)
    return bool(updated)
