"""What becomes of the deliveries of a batch once amoCRM has answered (or not).

A whole-request failure (``batch_failed``): 402/403/revoked tokens pause the organization's
deliveries without counting an attempt; transient trouble (timeouts, 5xx, 429 after the client's
own backoff) sends them back to the queue with backoff, until a day has passed; anything else
fails them with amoCRM's reason. Otherwise each delivery ends by itself (``batch_finish``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import AuditEntry, Organization
from core.services import audit_record
from crm.errors import AmoAuthError, AmoError, AmoPaused
from integration.delivery import rules
from integration.delivery.queue import deliveries_pause, delivery_expired, retry_delay
from integration.delivery.work import Work, settle, store
from integration.models import CallDelivery

logger = logging.getLogger(__name__)

Status = CallDelivery.Status


def retry_later(w: Work, *, delay: timedelta, error: str) -> None:
    store(
        w.delivery,
        status=Status.PENDING,
        next_attempt_at=timezone.now() + delay,
        lease_until=None,
        last_error=error,
    )


def batch_failed(organization: Organization, items: list[Work], exc: AmoError) -> timedelta | None:
    """A request concerning ``items`` failed as a whole: pause, retry later or fail them.
    Returns the backoff when they will be retried."""
    for w in items:
        w.handled = True
    if isinstance(exc, AmoPaused | AmoAuthError):
        deliveries_pause(
            organization_id=organization.pk,
            delivery_ids=[w.delivery.pk for w in items],
            reason=exc.message,
        )
        logger.warning(
            "pipeline paused", extra={"organization_id": organization.pk, "error": exc.message}
        )
        return None
    if exc.transient:  # honouring amoCRM's Retry-After when it asked us to slow down
        delay = retry_delay(max(w.delivery.attempts for w in items), floor=exc.retry_after or 0.0)
        for w in items:
            if delivery_expired(w.delivery):
                reason = _("amoCRM не принимал звонок более суток: %(e)s") % {"e": exc.message}
                settle(w.delivery, Status.FAILED, reason)
            else:
                retry_later(w, delay=delay, error=exc.message)
        logger.info(
            "pipeline retry",
            extra={"organization_id": organization.pk, "error": exc.message, "n": len(items)},
        )
        return delay
    for w in items:
        settle(w.delivery, Status.FAILED, exc.message)
    audit_record(
        organization=organization,
        kind="pipeline.failed",
        level=AuditEntry.Level.ERROR,
        message=_("Звонки не переданы в amoCRM: %(e)s") % {"e": exc.message},
        data={"count": len(items)},
    )
    return None


def batch_finish(work: list[Work]) -> timedelta | None:
    """Settle every item the steps did not: retried (its own transient problem), failed (its
    own permanent one), done or skipped. Returns the shortest backoff of the retried ones."""
    retry: timedelta | None = None
    for w in work:
        if w.handled:
            continue
        if w.transient:
            delay = retry_delay(w.delivery.attempts)
            retry = delay if retry is None else min(retry, delay)
            retry_later(w, delay=delay, error=w.transient)
        elif w.error:
            settle(w.delivery, Status.FAILED, w.error)
        else:
            status, reason = rules.outcome(
                w.plan,
                contact_created=w.delivery.contact_created,
                call_state=w.delivery.call_state,
                task_state=w.delivery.task_state,
                unsorted_done=w.delivery.unsorted_state == CallDelivery.Step.DONE,
            )
            settle(w.delivery, status, reason)
    return retry
