"""The delivery queue: ``CallDelivery`` rows and their states, with no amoCRM in sight.

pending ─claim→ in_progress (a lease covers killed workers) ─→ done / skipped / failed, or back
to pending with backoff (transient trouble, for up to a day), or paused (402/403/revoked tokens:
no attempt counted) until ``deliveries_resume``. Work is claimed with conditional UPDATEs and
``SKIP LOCKED``, so two drains never take the same delivery.

Also here: the hand-off (``delivery_enqueue``), the beat's sweeps (due work, orphaned calls,
paused organizations healthy again) and the timing policy (lease, backoff, giving up).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from core import metrics
from core.backoff import backoff_seconds
from core.models import Organization
from core.redis import redis_client
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from crm.selectors import amo_access_healthy
from integration.callbacks import callback_call_finalized
from integration.models import CallDelivery, RingNotice
from pbx.models import PbxCall

Status = CallDelivery.Status
# integration.tasks.pipeline_drain, queued by name (the tasks module imports this one).
DRAIN_TASK = "integration.tasks.pipeline_drain"


def drain_after_commit(organization_id: int) -> None:
    """Queue a drain of the organization once the current transaction commits."""
    transaction.on_commit(lambda: drain_request(organization_id=organization_id))


def _drain_queued_key(organization_id: int) -> str:
    return f"beetel:pipeline:queued:{organization_id}"


def drain_request(*, organization_id: int) -> None:
    """Queue a drain of the organization unless one is queued and has not started yet.

    A backlog of a thousand finished calls then costs one queued drain, not a thousand tasks
    that each find the drain busy while other organizations' calls wait behind them. The
    drain clears the mark before it claims deliveries (``drain_started``), so a delivery
    committed after that queues a new drain; a mark whose task was lost expires, and the
    beat's sweep (``deliveries_due_dispatch``) drains anything due meanwhile.
    """
    try:
        first = redis_client().set(_drain_queued_key(organization_id), 1, nx=True, ex=60)
    except RedisError:
        first = True  # let the publish itself decide (the sweep covers a failure)
    if first:
        task_enqueue(DRAIN_TASK, organization_id)


def drain_started(*, organization_id: int) -> None:
    """The drain task began: deliveries committed from now on need a new drain."""
    try:
        redis_client().delete(_drain_queued_key(organization_id))
    except RedisError:
        pass


# --- timing -------------------------------------------------------------------------------------


def retry_delay(attempts: int, *, floor: float = 0.0) -> timedelta:
    """How long a delivery waits after its ``attempts``-th transient failure (10 s · 2ⁿ⁻¹,
    capped, with jitter; a 429's ``Retry-After`` as the floor)."""
    seconds = backoff_seconds(
        attempts,
        base=settings.PIPELINE_RETRY_BASE_SECONDS,
        cap=settings.PIPELINE_RETRY_MAX_SECONDS,
        floor=floor,
    )
    return timedelta(seconds=seconds)


def delivery_expired(delivery: CallDelivery) -> bool:
    """Has it been retried for longer than we keep trying (24 h after the first attempt)?"""
    started = delivery.first_attempt_at or delivery.created_at
    give_up_after = timedelta(seconds=settings.PIPELINE_GIVE_UP_SECONDS)
    return bool(started and timezone.now() - started > give_up_after)


def _due(now: datetime) -> Q:
    """Pending past its retry time, or claimed by a worker whose lease ran out."""
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.IN_PROGRESS, lease_until__lt=now
    )


# --- hand-off -----------------------------------------------------------------------------------


def delivery_enqueue(
    *, organization_id: int, call_id: int, now: datetime | None = None
) -> CallDelivery:
    """Create the call's delivery (once, whatever the number of hand-offs) and queue a drain
    of its organization after commit."""
    now = now or timezone.now()
    # Call-back tracking first: a call with a delivery row has always been seen by it.
    callback_call_finalized(organization_id=organization_id, call_id=call_id)
    with organization_scope(organization_id):
        sent_at = (
            RingNotice.objects.filter(pbx_call_id=call_id, sent_at__isnull=False)
            .order_by("sent_at")
            .values_list("sent_at", flat=True)
            .first()
        )
        try:
            with transaction.atomic():
                delivery, _created = CallDelivery.objects.get_or_create(
                    organization_id=organization_id,
                    pbx_call_id=call_id,
                    defaults={"next_attempt_at": now, "notification_sent_at": sent_at},
                )
        except IntegrityError:  # a concurrent hand-off of the same call created it
            delivery = CallDelivery.objects.get(pbx_call_id=call_id)
    drain_after_commit(organization_id)
    return delivery


def deliveries_orphans_adopt(*, now: datetime | None = None, limit: int = 500) -> int:
    """Calls handed off by pbx whose delivery row never appeared (the worker died between
    pbx's commit and our receiver): give them one. Returns how many were adopted."""
    now = now or timezone.now()
    with scopes_disabled():
        orphans = list(
            PbxCall.objects.filter(
                started_at__gte=now - timedelta(days=3),  # indexed: keeps the sweep cheap
                handed_off_at__lt=now - timedelta(minutes=1),
            )
            .filter(~Exists(CallDelivery.objects.filter(pbx_call_id=OuterRef("pk"))))
            .values_list("organization_id", "pk")[:limit]
        )
    for org_id, call_id in orphans:
        delivery_enqueue(organization_id=org_id, call_id=call_id, now=now)
    return len(orphans)


def deliveries_due_dispatch(*, now: datetime | None = None) -> list[int]:
    """The beat's sweep: queue a drain for each organization with due work, and adopt
    orphaned calls. Returns the organizations' ids."""
    now = now or timezone.now()
    deliveries_orphans_adopt(now=now)
    with scopes_disabled():
        org_ids = sorted(
            set(
                CallDelivery.objects.filter(_due(now))
                .values_list("organization_id", flat=True)
                .distinct()
            )
        )
    for org_id in org_ids:
        task_enqueue(DRAIN_TASK, org_id)
    return org_ids


# --- claim, pause, resume -----------------------------------------------------------------------


def deliveries_claim(*, organization_id: int, now: datetime | None = None) -> list[int]:
    """Take up to ``PIPELINE_CLAIM_SIZE`` due deliveries (in_progress, leased, one attempt
    more); returns their ids."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.PIPELINE_LEASE_SECONDS)
    with transaction.atomic(), organization_scope(organization_id):
        ids = list(
            CallDelivery.objects.filter(_due(now))
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[: int(settings.PIPELINE_CLAIM_SIZE)]
        )
        if ids:
            CallDelivery.objects.filter(pk__in=ids).update(
                status=Status.IN_PROGRESS,
                lease_until=now + lease,
                attempts=F("attempts") + 1,
                first_attempt_at=Coalesce(F("first_attempt_at"), now),
                updated_at=now,
            )
    return ids


def deliveries_pause(*, organization_id: int, delivery_ids: list[int], reason: str) -> None:
    """amoCRM access is stopped (402/403/revoked): not the calls' fault, so the claim's attempt
    is given back; ``deliveries_resume`` picks them up."""
    with organization_scope(organization_id):
        CallDelivery.objects.filter(pk__in=delivery_ids).update(
            status=Status.PAUSED,
            last_error=reason,
            lease_until=None,
            next_attempt_at=None,
            attempts=F("attempts") - 1,
            updated_at=timezone.now(),
        )
    metrics.DELIVERIES_FINISHED.labels(status=Status.PAUSED.value).inc(len(delivery_ids))


def deliveries_resume(*, organization_id: int) -> int:
    """Paused deliveries of the organization back to the queue (its amoCRM access is fixed)."""
    now = timezone.now()
    with organization_scope(organization_id):
        resumed = CallDelivery.objects.filter(status=Status.PAUSED).update(
            status=Status.PENDING, next_attempt_at=now, lease_until=None, updated_at=now
        )
    if resumed:
        audit_record(
            organization=organization_id,
            kind="pipeline.resumed",
            message=_("Передача звонков в amoCRM возобновлена: %(n)s в очереди.") % {"n": resumed},
        )
        drain_after_commit(organization_id)
    return resumed


def deliveries_resume_healthy() -> list[int]:
    """Resume paused deliveries of every organization whose amoCRM access is healthy again
    (active, tokens valid, traffic not paused by crm). Returns those organizations' ids."""
    with scopes_disabled():
        org_ids = set(
            CallDelivery.objects.filter(status=Status.PAUSED)
            .values_list("organization_id", flat=True)
            .distinct()
        )
    if not org_ids:
        return []
    active = set(
        Organization.objects.filter(pk__in=org_ids, status=Organization.Status.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    ready = sorted(amo_access_healthy(organization_ids=active))
    for org_id in ready:
        deliveries_resume(organization_id=org_id)
    return ready
