"""Writes of the Beeline side: token, sync, subscriptions, event storage, call assembly.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
pbx knows nothing of amoCRM: finished
calls leave through ``pbx.signals`` only.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.backoff import backoff_seconds
from core.locks import advisory_xact_lock
from core.models import AuditEntry, Organization
from core.phones import phone_national, phone_parse
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from pbx import signals
from pbx.assembly import AssembledCall, call_assemble, ms_to_datetime
from pbx.client import BeelineAbonent, BeelineClient, BeelineNumber
from pbx.errors import (
    BeelineError,
    BeelineNotConfigured,
    BeelineNotFound,
    BeelineTokenRejected,
    BeelineUnavailable,
    ClickToCallError,
    ClickToCallRefused,
    InvalidPhoneNumber,
)
from pbx.models import (
    Abonent,
    BeelineCredentials,
    PbxCall,
    PbxCallLeg,
    PbxEvent,
    PbxNumber,
    Subscription,
)
from pbx.selectors import credentials_for
from pbx.xsi import XsiEvent, XsiParseError, xsi_event_parse

logger = logging.getLogger(__name__)


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


# --- Token --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSaveResult:
    abonent_count: int
    number_count: int
    subscription_id: str
    subscription_expires_at: datetime | None
    # Set when the token is saved but the subscription could not be created yet (retried).
    subscription_error: str = ""


def beeline_token_save(*, organization: Organization, token: str) -> TokenSaveResult:
    """Verify a Beeline API token, store it, sync abonents and numbers, (re)subscribe.

    Raises ``BeelineTokenRejected`` (Beeline's description, or a Russian explanation) and
    ``BeelineUnavailable``; in both cases nothing is saved. A subscription failure after the
    token was saved does not raise: it is reported in the result and retried by the beat.
    """
    token = token.strip()
    if not token:
        raise BeelineTokenRejected(_("Вставьте токен Beeline API."), permanent=True)
    client = BeelineClient(token)
    try:
        abonents = client.abonents_list()
        numbers = client.numbers_list()
    except BeelineUnavailable:
        raise
    except BeelineError as exc:
        if isinstance(exc, BeelineTokenRejected) or exc.permanent:
            raise BeelineTokenRejected(
                exc.message, status=exc.status, code=exc.code, permanent=True
            ) from None
        raise
    now = timezone.now()
    with transaction.atomic(), organization_scope(organization):
        credentials = BeelineCredentials.objects.select_for_update().filter().first()
        old_token = credentials.api_token if credentials else ""
        if credentials is None:
            secret = secrets.token_urlsafe(32)
            credentials = BeelineCredentials(
                organization=organization,
                webhook_secret=secret,
                webhook_secret_hash=webhook_secret_hash(secret),
            )
        credentials.api_token = token
        credentials.status = BeelineCredentials.Status.ACTIVE
        credentials.verified_at = now
        credentials.last_error = ""
        credentials.save()
        abonent_count = _abonents_apply(organization=organization, abonents=abonents, now=now)
        number_count = _numbers_apply(organization=organization, numbers=numbers, now=now)
    audit_record(
        organization=organization,
        kind="beeline.token_saved",
        message=_("Токен Beeline сохранён: абонентов %(a)s, номеров %(n)s.")
        % {"a": abonent_count, "n": number_count},
    )
    old_client = BeelineClient(old_token) if old_token and old_token != token else None
    try:
        subscription = subscription_renew(
            organization=organization, now=now, previous_client=old_client
        )
    except BeelineError as exc:
        return TokenSaveResult(abonent_count, number_count, "", None, exc.message)
    return TokenSaveResult(
        abonent_count, number_count, subscription.subscription_id, subscription.expires_at
    )


# --- Abonents and numbers -----------------------------------------------------------------


def _abonents_apply(
    *, organization: Organization, abonents: list[BeelineAbonent], now: datetime
) -> int:
    """Upsert by userId; abonents gone from Beeline become inactive (their mappings are kept
    for when they come back, and old calls keep their abonent)."""
    seen: set[str] = set()
    with organization_scope(organization):
        existing = {a.user_id: a for a in Abonent.objects.all()}
        for item in abonents:
            if item.user_id in seen:
                continue
            seen.add(item.user_id)
            abonent = existing.get(item.user_id) or Abonent(
                organization=organization, user_id=item.user_id
            )
            abonent.phone = phone_national(item.phone) or item.phone[:20]
            abonent.first_name = item.first_name[:255]
            abonent.last_name = item.last_name[:255]
            abonent.email = item.email[:255]
            abonent.department = item.department[:255]
            abonent.extension = item.extension[:32]
            abonent.active = True
            abonent.synced_at = now
            abonent.save()
        Abonent.objects.exclude(user_id__in=seen).filter(active=True).update(active=False)
    return len(seen)


def _numbers_apply(
    *, organization: Organization, numbers: list[BeelineNumber], now: datetime
) -> int:
    """Upsert by numberId, delete the ones gone; a name typed in admin survives a sync when
    Beeline sends none."""
    seen: set[str] = set()
    with organization_scope(organization):
        existing = {n.number_id: n for n in PbxNumber.objects.all()}
        for item in numbers:
            if item.number_id in seen:
                continue
            seen.add(item.number_id)
            number = existing.get(item.number_id) or PbxNumber(
                organization=organization, number_id=item.number_id
            )
            number.phone = phone_national(item.phone) or item.phone[:20]
            number.name = item.name[:255] or number.name
            # GUESS (docs/beeline-api.md §3): /numbers lists the company's incoming numbers, which
            # are the multichannel ones; abonents' own numbers come from /abonents.
            number.is_multichannel = True
            number.synced_at = now
            number.save()
        PbxNumber.objects.exclude(number_id__in=seen).delete()
    return len(seen)


def pbx_sync(*, organization: Organization) -> tuple[int, int]:
    """Refresh abonents and numbers from Beeline. Returns ``(abonents, numbers)``.

    A rejected token flags the credentials (Диагностика shows it) and raises; an unreachable
    Beeline raises ``BeelineUnavailable`` for the caller to retry.
    """
    credentials, client = beeline_client_for(organization)
    try:
        abonents = client.abonents_list()
        numbers = client.numbers_list()
    except BeelineTokenRejected as exc:
        _credentials_flag(credentials=credentials, error=exc, kind="beeline.sync_failed")
        raise
    now = timezone.now()
    with transaction.atomic():
        counts = (
            _abonents_apply(organization=organization, abonents=abonents, now=now),
            _numbers_apply(organization=organization, numbers=numbers, now=now),
        )
    return counts


# --- Subscriptions ------------------------------------------------------------------------


def _credentials_flag(*, credentials: BeelineCredentials, error: BeelineError, kind: str) -> None:
    """Mark the connection as failing; the first failure of a streak goes to the audit log."""
    status = (
        BeelineCredentials.Status.REJECTED
        if isinstance(error, BeelineTokenRejected)
        else BeelineCredentials.Status.FAILING
    )
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


def _credentials_healthy(*, credentials: BeelineCredentials) -> None:
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
            _credentials_flag(
                credentials=credentials, error=exc, kind="beeline.subscription_failed"
            )
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
        _credentials_healthy(credentials=credentials)
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
    with organization_scope(organization):
        ended = Subscription.objects.filter(
            subscription_id=subscription_id, status=Subscription.Status.ACTIVE
        ).update(status=Subscription.Status.TERMINATED, ended_at=now)
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
        fresh = Subscription.objects.filter(
            organization_id=OuterRef("organization_id"),
            status=Subscription.Status.ACTIVE,
            renew_at__gt=now,
        )
        due = (
            BeelineCredentials.objects.exclude(api_token="")
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
                    countdown=(index // chunk) * spacing,
                )

        transaction.on_commit(enqueue)
    return org_ids


# --- Events -------------------------------------------------------------------------------


# secret hash -> (organization id, looked up at): saves a query per event on the hot path. A
# revoked secret keeps working in a process for at most this long (secrets are never rotated
# today; deleting an organization cascades, and its events then fail the FK and are dropped).
_SECRET_CACHE: dict[str, tuple[int, float]] = {}
_SECRET_CACHE_SECONDS = 60.0
_SECRET_CACHE_MAX = 10_000


def webhook_organization_id(*, secret: str) -> int | None:
    """The organization a webhook secret belongs to, looked up by its hash (so response time
    does not depend on how much of a guess matched)."""
    if not secret or len(secret) > 128:
        return None
    digest = webhook_secret_hash(secret)
    cached = _SECRET_CACHE.get(digest)
    if cached is not None and time.monotonic() - cached[1] < _SECRET_CACHE_SECONDS:
        return cached[0]
    with scopes_disabled():
        org_id = (
            BeelineCredentials.objects.filter(webhook_secret_hash=digest)
            .values_list("organization_id", flat=True)
            .first()
        )
    if org_id is not None:
        if len(_SECRET_CACHE) >= _SECRET_CACHE_MAX:
            _SECRET_CACHE.clear()
        _SECRET_CACHE[digest] = (org_id, time.monotonic())
    return org_id


# One statement, no savepoint: the webhook's only write
# (docs/beeline-api.md §9.4: dedupe on eventID).
_EVENT_INSERT = f"""
    INSERT INTO {PbxEvent._meta.db_table}
        (organization_id, event_id, event_type, ext_tracking_id, target_id, subscription_id,
         body, received_at, error)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '')
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING id
"""


def event_store(*, organization_id: int, event: XsiEvent, body: str) -> int | None:
    """Store a parsed event once per eventID and queue its processing after commit.

    Returns the new row's id, or None for a duplicate (already stored: nothing more to do).
    """
    call = event.call
    params: list[int | str | datetime] = [
        organization_id,
        event.event_id,
        event.event_type,
        call.ext_tracking_id[:128] if call else "",
        event.target_id,
        event.subscription_id,
        body,
        timezone.now(),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_INSERT, params)
        row = cursor.fetchone()
    if row is None:
        return None
    event_pk = int(row[0])
    transaction.on_commit(lambda: task_enqueue("pbx.tasks.pbx_event_process", event_pk))
    return event_pk


def event_process(*, event_pk: int, now: datetime | None = None) -> None:
    """Apply one stored event. Idempotent: re-running folds the same set of events again."""
    with scopes_disabled():
        row = PbxEvent.objects.filter(pk=event_pk).values_list(
            "organization_id", "event_type", "ext_tracking_id", "subscription_id"
        )
        found = row.first()
    if found is None:
        return
    org_id, event_type, ext_tracking_id, subscription_id = found
    now = now or timezone.now()
    if event_type == "SubscriptionTerminatedEvent":
        with organization_scope(org_id):
            PbxEvent.objects.filter(pk=event_pk).update(processed_at=now)
        subscription_terminated(organization=org_id, subscription_id=subscription_id, now=now)
    elif ext_tracking_id:
        try:
            call_rebuild(organization_id=org_id, ext_tracking_id=ext_tracking_id, now=now)
        except Exception as exc:
            # Visible in Диагностика (events with errors); the raw event stays for a re-run.
            with organization_scope(org_id):
                PbxEvent.objects.filter(pk=event_pk).update(
                    error=f"{type(exc).__name__}: {exc}"[:500]
                )
            raise


def events_prune(*, older_than: datetime) -> int:
    """Delete processed raw events received before ``older_than`` (calls keep their data)."""
    with scopes_disabled():
        deleted, _ = PbxEvent.objects.filter(
            received_at__lt=older_than, processed_at__isnull=False
        ).delete()
    return deleted


# --- Calls --------------------------------------------------------------------------------


def _line_number(
    assembled: AssembledCall, numbers: list[PbxNumber]
) -> tuple[PbxNumber | None, str]:
    """The multichannel number the call came through: a leg targeting a number (per-number
    subscription), else the first redirection party that is one of our numbers (§3)."""
    by_id = {n.number_id: n for n in numbers}
    by_phone = {n.phone: n for n in numbers}
    for leg in assembled.legs:
        if leg.target_id in by_id:
            return by_id[leg.target_id], by_id[leg.target_id].phone
    first_line = ""
    for address in assembled.line_addresses:
        national = phone_national(address) or ""
        if national in by_phone:
            return by_phone[national], national
        first_line = first_line or national
    return None, first_line


def call_rebuild(
    *, organization_id: int, ext_tracking_id: str, now: datetime | None = None
) -> PbxCall | None:
    """Re-derive a call and its legs from every stored event with this extTrackingId.

    Sends ``call_ringing`` (on commit) for legs first seen ringing, and queues finalization
    when all legs are released. Internal (abonent ↔ abonent) calls are not kept.
    """
    now = now or timezone.now()
    ringing_leg_ids: list[int] = []
    with transaction.atomic(), organization_scope(organization_id):
        # Rebuilds of one call are serialized across workers until this transaction ends.
        advisory_xact_lock(f"call:{organization_id}:{ext_tracking_id}")
        rows = list(PbxEvent.objects.filter(ext_tracking_id=ext_tracking_id))
        parsed: list[XsiEvent] = []
        for row in rows:
            try:
                parsed.append(xsi_event_parse(row.body))
            except XsiParseError as exc:  # stored bodies were parsed once; be safe anyway
                PbxEvent.objects.filter(pk=row.pk).update(error=str(exc), processed_at=now)
        assembled = call_assemble(parsed)
        call = PbxCall.objects.filter(ext_tracking_id=ext_tracking_id).first()
        PbxEvent.objects.filter(pk__in=[r.pk for r in rows], processed_at__isnull=True).update(
            processed_at=now
        )
        if assembled is None or assembled.internal:
            if call is not None and call.handed_off_at is None:
                call.delete()
            return None
        abonents = {
            a.user_id: a
            for a in Abonent.objects.filter(user_id__in=[leg.target_id for leg in assembled.legs])
        }
        number, line_phone = _line_number(assembled, list(PbxNumber.objects.all()))
        if call is None:
            call = PbxCall(organization_id=organization_id, ext_tracking_id=ext_tracking_id)
        call.direction = assembled.direction
        call.external_phone = assembled.external_phone.e164 if assembled.external_phone else ""
        call.external_phone_national = (
            assembled.external_phone.national if assembled.external_phone else ""
        )
        call.number = number
        call.line_phone = line_phone
        call.abonent = abonents.get(assembled.responsible_target_id)
        call.started_at = assembled.started_at
        call.answered_at = assembled.answered_at
        call.ended_at = assembled.ended_at
        call.talk_seconds = assembled.talk_seconds
        call.status = assembled.status
        call.outcome = assembled.outcome if assembled.status == PbxCall.Status.FINISHED else ""
        call.recording_user_id = assembled.answered_target_id
        if assembled.status == PbxCall.Status.FINISHED:
            call.finished_at = call.finished_at or now
        elif call.handed_off_at is None:
            call.finished_at = None  # a late leg reopened the call before hand-off
        call.save()
        existing = {(leg.target_id, leg.call_id): leg for leg in call.legs.all()}
        for leg in assembled.legs:
            row_leg = existing.get((leg.target_id, leg.call_id))
            is_new = row_leg is None
            if row_leg is None:
                row_leg = PbxCallLeg(
                    organization_id=organization_id,
                    pbx_call=call,
                    target_id=leg.target_id,
                    call_id=leg.call_id,
                )
            row_leg.abonent = abonents.get(leg.target_id)
            row_leg.personality = leg.personality
            row_leg.state = leg.state
            row_leg.started_at = ms_to_datetime(leg.start_time)
            row_leg.answered_at = ms_to_datetime(leg.answer_time)
            row_leg.released_at = ms_to_datetime(leg.release_time)
            row_leg.release_cause = leg.release_cause[:64]
            row_leg.releasing_party = leg.releasing_party[:32]
            row_leg.save()
            if is_new and leg.ringing:
                ringing_leg_ids.append(row_leg.pk)
        call_pk, finished = call.pk, call.status == PbxCall.Status.FINISHED
        handed_off = call.handed_off_at is not None
        if ringing_leg_ids and not handed_off:
            leg_ids = list(ringing_leg_ids)
            transaction.on_commit(
                lambda: signals.call_ringing.send(
                    sender=PbxCall,
                    organization_id=organization_id,
                    call_id=call_pk,
                    leg_ids=leg_ids,
                )
            )
        if finished and not handed_off:
            transaction.on_commit(
                lambda: task_enqueue(
                    "pbx.tasks.pbx_call_finalize",
                    call_pk,
                    countdown=settings.PBX_CALL_SETTLE_SECONDS,
                )
            )
    return call


def call_finalize(*, call_pk: int, now: datetime | None = None) -> bool:
    """Hand a finished call to the pipeline (``call_finished``) exactly once.

    Claims the call with a conditional UPDATE (finished, settled, not yet handed off): of any
    number of concurrent or repeated finalizers only one sends the signal. Returns whether
    this call sent it.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS)
    with scopes_disabled():
        org_id = (
            PbxCall.objects.filter(pk=call_pk).values_list("organization_id", flat=True).first()
        )
    if org_id is None:
        return False
    with transaction.atomic(), organization_scope(org_id):
        claimed = PbxCall.objects.filter(
            pk=call_pk,
            status=PbxCall.Status.FINISHED,
            handed_off_at__isnull=True,
            finished_at__lte=cutoff,
        ).update(handed_off_at=now)
        if claimed:
            transaction.on_commit(
                lambda: signals.call_finished.send(
                    sender=PbxCall, organization_id=org_id, call_id=call_pk
                )
            )
    return bool(claimed)


def call_finalize_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Finalize every settled call not yet handed off (the beat's safety net behind the
    countdown task, and the deterministic entry point for tests). Returns how many were sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS)
    with scopes_disabled():
        due = list(
            PbxCall.objects.filter(
                status=PbxCall.Status.FINISHED, handed_off_at__isnull=True, finished_at__lte=cutoff
            )
            .order_by("finished_at")
            .values_list("pk", flat=True)[:limit]
        )
    return sum(call_finalize(call_pk=pk, now=now) for pk in due)


# --- Click-to-call ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClickToCallResult:
    phone: str  # E.164 of the number dialled
    beeline_response: str


def click_to_call(*, organization: Organization, abonent: Abonent, phone: str) -> ClickToCallResult:
    """Ask Beeline to ring the abonent, then connect them to ``phone``.

    Raises ``InvalidPhoneNumber`` (status 400) for a number we cannot read,
    ``ClickToCallRefused`` with Beeline's description when Beeline says no, and
    ``ClickToCallError`` (502) when Beeline is unreachable or the token is missing.
    """
    if abonent.organization_id != organization.pk:
        raise ClickToCallError(_("Абонент не принадлежит этой организации."))
    parsed = phone_parse(phone)
    if parsed is None:
        raise InvalidPhoneNumber(_("Не удалось распознать номер телефона «%s».") % phone[:40])
    # Beeline expects 10 national digits for Russian numbers (docs/beeline-api.md §4).
    dial = parsed.national if parsed.e164.startswith("+7") else parsed.e164.lstrip("+")
    try:
        client = beeline_client_for(organization)[1]
    except BeelineNotConfigured as exc:
        raise ClickToCallError(str(exc)) from None
    try:
        answer = client.abonent_call(pattern=abonent.user_id, phone_number=dial)
    except BeelineUnavailable as exc:
        raise ClickToCallError(exc.message) from None
    except BeelineError as exc:
        raise ClickToCallRefused(exc.message) from None
    audit_record(
        organization=organization,
        kind="beeline.click_to_call",
        message=_("Звонок из amoCRM: %(abonent)s → %(phone)s")
        % {"abonent": abonent.phone or abonent.user_id, "phone": parsed.e164},
    )
    return ClickToCallResult(phone=parsed.e164, beeline_response=answer)


# --- Number names -------------------------------------------------------------------------


def pbx_number_rename(*, organization: Organization, number_id: str, name: str) -> PbxNumber:
    """Name a company number the way the PBX portal shows it («Организация» in the cabinet).

    ``number_id`` is Beeline's numberId. GET /numbers carries no name (docs/beeline-api.md §3), so
    the admin types it; the pipeline tags contacts with it (an empty name falls back to the
    phone). Raises ``PbxNumber.DoesNotExist`` for a number that is not the organization's.
    """
    name = " ".join(name.split())[:255]
    with organization_scope(organization):
        number = PbxNumber.objects.get(organization=organization, number_id=number_id)
        if number.name != name:
            number.name = name
            number.save(update_fields=["name"])
            audit_record(
                organization=organization,
                kind="beeline.number_renamed",
                message=_("Номер %(phone)s назван «%(name)s».")
                % {"phone": number.phone, "name": name or number.phone},
            )
    return number
