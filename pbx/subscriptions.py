"""The Beeline event subscription of each organization: create, renew before it expires,
re-subscribe when Beeline terminates it, retry with backoff while Beeline is down, and the
beat's fan-out over many organizations.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.backoff import backoff_seconds
from core.models import AuditEntry, Organization
from core.services import audit_record
from core.task_queue import task_enqueue, task_fanout_countdown
from core.tenancy import organization_scope, scopes_disabled
from pbx.client import BeelineClient
from pbx.credentials import (
    beeline_client_for,
    credentials_flag,
    credentials_mark_healthy,
    webhook_secret_hash,
    webhook_url,
)
from pbx.errors import BeelineError, BeelineNotConfigured, BeelineNotFound
from pbx.models import BeelineCredentials, Subscription

logger = logging.getLogger(__name__)


def subscription_renew(
    *,
    organization: Organization | int,
    now: datetime | None = None,
    previous_client: BeelineClient | None = None,
) -> Subscription:
    """Create a new group subscription, then retire (and delete at Beeline) the old one.

    Keeps the *granted* expiry and schedules the next renewal before it. On failure the
    organization is flagged, a retry time with exponential backoff is stored (the beat picks it
    up), and the error is raised. ``previous_client`` deletes old subscriptions made with a
    replaced token.
    """
    now = now or timezone.now()
    credentials, client = beeline_client_for(organization)
    org_id = credentials.organization_id
    requested = settings.PBX_SUBSCRIPTION_SECONDS
    try:
        granted = client.subscription_create(
            url=webhook_url(credentials=credentials), expires=requested
        )
    except BeelineError as exc:
        with organization_scope(org_id):
            credentials.subscription_failures += 1
            credentials.subscription_retry_at = now + timedelta(
                seconds=backoff_seconds(
                    credentials.subscription_failures,
                    base=settings.PBX_SUBSCRIPTION_RETRY_BASE_SECONDS,
                    cap=settings.PBX_SUBSCRIPTION_RETRY_MAX_SECONDS,
                )
            )
            credentials.subscription_renew_queued_at = None
            credentials.save(
                update_fields=[
                    "subscription_failures",
                    "subscription_retry_at",
                    "subscription_renew_queued_at",
                ]
            )
            credentials_flag(credentials=credentials, error=exc, kind="beeline.subscription_failed")
        logger.warning(
            "beeline subscription failed",
            extra={"organization_id": org_id, "error": exc.message, "status": exc.status},
        )
        raise
    seconds = granted.expires if granted.expires > 0 else requested
    expires_at = now + timedelta(seconds=seconds)
    margin = min(settings.PBX_SUBSCRIPTION_RENEW_MARGIN_SECONDS, seconds // 2)
    with transaction.atomic(), organization_scope(org_id):
        old = list(
            Subscription.objects.select_for_update().filter(status=Subscription.Status.ACTIVE)
        )
        Subscription.objects.filter(pk__in=[s.pk for s in old]).update(
            status=Subscription.Status.REPLACED, ended_at=now
        )
        subscription = Subscription.objects.create(
            organization_id=org_id,
            subscription_id=granted.subscription_id,
            requested_seconds=requested,
            granted_seconds=seconds,
            expires_at=expires_at,
            renew_at=expires_at - timedelta(seconds=margin),
            created_at=now,
        )
        credentials_mark_healthy(credentials=credentials)
    if seconds < requested:
        logger.info(
            "beeline granted a shorter subscription",
            extra={"organization_id": org_id, "requested": requested, "granted": seconds},
        )
    for previous in old:
        _subscription_delete_remote(
            clients=[c for c in (previous_client, client) if c is not None],
            subscription_id=previous.subscription_id,
            organization_id=org_id,
        )
    return subscription


def _subscription_delete_remote(
    *, clients: list[BeelineClient], subscription_id: str, organization_id: int
) -> None:
    # Best effort: an old subscription we cannot delete expires on its own, and duplicate
    # deliveries meanwhile are deduplicated on eventID.
    for client in clients:
        try:
            client.subscription_delete(subscription_id=subscription_id)
            return
        except BeelineNotFound:
            return
        except BeelineError as exc:
            logger.info(
                "old beeline subscription not deleted",
                extra={"organization_id": organization_id, "error": exc.message},
            )


def subscription_ensure(
    *, organization: Organization | int, now: datetime | None = None
) -> Subscription:
    """The active subscription, renewed first if it is due (or missing)."""
    now = now or timezone.now()
    with organization_scope(organization):
        current = Subscription.objects.filter(
            status=Subscription.Status.ACTIVE, renew_at__gt=now
        ).first()
    return current or subscription_renew(organization=organization, now=now)


def subscription_terminated(
    *, organization: Organization | int, subscription_id: str, now: datetime | None = None
) -> Subscription | None:
    """Beeline ended a subscription (SubscriptionTerminatedEvent): re-subscribe at once if it
    was our active one; a stale one (already replaced) needs nothing."""
    now = now or timezone.now()
    with transaction.atomic(), organization_scope(organization):
        ended = Subscription.objects.filter(
            subscription_id=subscription_id, status=Subscription.Status.ACTIVE
        ).update(status=Subscription.Status.TERMINATED, ended_at=now)
        if ended:  # due at once for the beat too, should the renewal below not happen
            BeelineCredentials.objects.filter(subscription_retry_at__isnull=True).update(
                subscription_retry_at=now
            )
    if not ended:
        return None
    audit_record(
        organization=organization,
        kind="beeline.subscription_terminated",
        level=AuditEntry.Level.WARNING,
        message=_("Beeline прекратил подписку на события; оформляем новую."),
    )
    return subscription_renew(organization=organization, now=now)


def subscription_renew_due(*, now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Queue one renewal task per organization whose subscription is due (or missing, or
    failed and past its backoff). Claims rows first, so overlapping beats never double-queue;
    tasks are spread in chunks so 10,000 organizations do not hit Beeline (or the workers) at
    once. Returns the organization ids queued."""
    now = now or timezone.now()
    limit = limit or settings.PBX_SUBSCRIPTION_RENEW_BATCH
    stale_claim = now - timedelta(seconds=settings.PBX_SUBSCRIPTION_CLAIM_SECONDS)
    with transaction.atomic(), scopes_disabled():
        # Two indexed questions, so the work follows what is due, not the number of
        # organizations: active subscriptions past their renew_at, and credentials whose
        # (re)subscription is due (new, failed and past its backoff, terminated).
        candidates = set(
            Subscription.objects.filter(status=Subscription.Status.ACTIVE, renew_at__lte=now)
            .order_by("renew_at")
            .values_list("organization_id", flat=True)[: limit * 2]
        ) | set(
            BeelineCredentials.objects.filter(subscription_retry_at__lte=now)
            .order_by("subscription_retry_at")
            .values_list("organization_id", flat=True)[: limit * 2]
        )
        fresh = Subscription.objects.filter(
            organization_id=OuterRef("organization_id"),
            status=Subscription.Status.ACTIVE,
            renew_at__gt=now,
        )
        due = (
            BeelineCredentials.objects.filter(organization_id__in=candidates)
            .exclude(api_token="")
            .exclude(status=BeelineCredentials.Status.REJECTED)
            .exclude(organization__status=Organization.Status.DISCONNECTED)
            .filter(~Exists(fresh))
            .filter(Q(subscription_retry_at__isnull=True) | Q(subscription_retry_at__lte=now))
            .filter(
                Q(subscription_renew_queued_at__isnull=True)
                | Q(subscription_renew_queued_at__lt=stale_claim)
            )
            .order_by("subscription_retry_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
        )
        rows = list(due.values_list("pk", "organization_id")[:limit])
        BeelineCredentials.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            subscription_renew_queued_at=now
        )
        org_ids = [org_id for _, org_id in rows]
        chunk, spacing = settings.PBX_FANOUT_CHUNK, settings.PBX_FANOUT_SPACING_SECONDS

        def enqueue() -> None:
            for index, org_id in enumerate(org_ids):
                task_enqueue(
                    "pbx.tasks.subscription_renew_task",
                    org_id,
                    countdown=task_fanout_countdown(
                        index=index, total=len(org_ids), chunk=chunk, spacing=spacing
                    ),
                )

        transaction.on_commit(enqueue)
    return org_ids


def webhook_secret_rotate(
    *, organization: Organization, now: datetime | None = None
) -> Subscription:
    """A new secret for the organization's event URL, and a Beeline subscription to the new URL.

    The old URL keeps being accepted for PBX_WEBHOOK_SECRET_GRACE_SECONDS (events in flight,
    Beeline's retries to the old subscription), and for as long as no subscription to the new
    URL could be made (``webhook_secrets_expire``). Raises BeelineNotConfigured without a token;
    a Beeline failure of the re-subscription is raised too (the beat keeps retrying it).
    """
    now = now or timezone.now()
    secret = secrets.token_urlsafe(32)
    with transaction.atomic(), organization_scope(organization):
        credentials = BeelineCredentials.objects.select_for_update().filter().first()
        if credentials is None or not credentials.api_token:
            raise BeelineNotConfigured()
        credentials.previous_webhook_secret_hash = credentials.webhook_secret_hash
        credentials.previous_webhook_secret_valid_until = now + timedelta(
            seconds=settings.PBX_WEBHOOK_SECRET_GRACE_SECONDS
        )
        credentials.webhook_secret = secret
        credentials.webhook_secret_hash = webhook_secret_hash(secret)
        credentials.webhook_secret_rotated_at = now
        credentials.save()
    audit_record(
        organization=organization,
        kind="beeline.webhook_secret_rotated",
        message=_("Адрес для событий Beeline заменён; прежний действует до %(until)s.")
        % {"until": timezone.localtime(credentials.previous_webhook_secret_valid_until)},
    )
    return subscription_renew(organization=organization, now=now)


def webhook_secrets_expire(*, now: datetime | None = None) -> int:
    """Beat: forget previous webhook secrets past their grace deadline — but only once Beeline
    posts to the new URL (an active subscription made after the rotation); until then the old
    URL stays valid for another grace period. Returns the secrets forgotten."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.PBX_WEBHOOK_SECRET_GRACE_SECONDS)
    with scopes_disabled():
        due = BeelineCredentials.objects.filter(
            previous_webhook_secret_valid_until__lte=now
        ).exclude(previous_webhook_secret_hash="")
        switched = Subscription.objects.filter(
            organization_id=OuterRef("organization_id"),
            status=Subscription.Status.ACTIVE,
            created_at__gte=OuterRef("webhook_secret_rotated_at"),
        )
        forgotten = due.filter(Exists(switched)).update(
            previous_webhook_secret_hash="", previous_webhook_secret_valid_until=None
        )
        due.filter(~Exists(switched)).update(previous_webhook_secret_valid_until=now + grace)
    return forgotten
