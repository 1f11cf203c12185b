"""The call pipeline: every finished PBX call into amoCRM, per the seven settings, exactly once.

Flow (docs/architecture.md flow 4): ``call_finished`` → ``delivery_enqueue`` (one ``CallDelivery``
per call) → ``deliveries_drain`` for the organization, which claims up to 150 due deliveries and
takes them through three steps, batched (50 per request) where amoCRM accepts arrays:

1. contact — ContactIndex, then a search per distinct new number, then one batched create (when
   the direction's create setting allows) with the tags ``BeelineConnector`` and the
   multichannel number's name;
2. call log — one ``POST /api/v4/calls`` for the batch;
3. missed-call task — per client number: the number's open task updated, or one
   ``POST /api/v4/tasks`` for the batch (the decisions are call-back tracking's,
   integration/callbacks.py).

Once the queue is empty, the drain completes the «Перезвонить» tasks of returned missed calls.

Exactly once: work is claimed with conditional UPDATEs (a lease covers killed workers); one
drain per organization runs at a time (a PostgreSQL session advisory lock, released by the
server if the worker dies); every remote id is stored before the next step. Calls and tasks are
not idempotent in amoCRM, so their state is set to ``posting`` (and committed) before the POST;
a delivery met in ``posting`` again had an ambiguous outcome (timeout, 5xx, killed worker) and
is looked up in amoCRM (the contact's call notes by ``uniq``, the contact's tasks by text and
due time) before anything is posted again. Contacts need no marker: a lost create is found by
the search that precedes any create.

Failures: transient ones back off with jitter for up to 24 h; 402/403/revoked pause the
organization's deliveries without burning attempts (resumed by ``deliveries_resume``); anything
else marks the delivery failed with the reason (``delivery_retry`` puts it back).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.backoff import backoff_seconds
from core.locks import advisory_lock
from core.models import AuditEntry, Organization
from core.phones import phone_parse
from core.redis import redis_client
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from crm.client import (
    AmoClient,
    AmoContact,
    CallDraft,
    ContactDraft,
    ItemResult,
    PhoneCallEvent,
    TaskDraft,
)
from crm.errors import (
    AmoAuthError,
    AmoError,
    AmoPaused,
    AmoPermanentError,
    AmoRateLimited,
    AmoTransientError,
)
from crm.models import AmoAccountState, AmoCredentials, ContactIndex
from crm.services import amo_client, contact_index_forget
from integration.callbacks import (
    callback_call_finalized,
    callback_completions_run,
    callback_tasks_attach,
    callback_tasks_prepare,
    task_base_text,
)
from integration.models import CallDelivery, CallSettings, ManagerMapping, RingNotice
from pbx.models import PbxCall, PbxCallLeg
from pbx.selectors import call_recording_url

logger = logging.getLogger(__name__)

TAG = "BeelineConnector"
Status = CallDelivery.Status
Step = CallDelivery.Step

# amoCRM call_status (docs/amocrm-api.md §5, CONFIRMED enum; mapping as iqtek-ng, CONFIRMED-3P).
CALL_STATUS: dict[str, int] = {
    PbxCall.Outcome.ANSWERED.value: 4,
    PbxCall.Outcome.MISSED.value: 6,
    PbxCall.Outcome.BUSY.value: 7,
    PbxCall.Outcome.FAILED.value: 5,
}
CALL_RESULT: dict[str, str] = {
    PbxCall.Outcome.ANSWERED.value: "Разговор состоялся",
    PbxCall.Outcome.MISSED.value: "Пропущенный звонок",
    PbxCall.Outcome.BUSY.value: "Номер занят",
    PbxCall.Outcome.FAILED.value: "Звонок не удался",
}
OUTBOUND_NO_ANSWER = "Не дозвонился"

# Flags stored on a delivery for Диагностика (the call is still logged, without responsible).
FLAG_NO_ABONENT = "no_abonent"
FLAG_UNMAPPED = "unmapped_abonent"
FLAG_DISABLED = "abonent_disabled"
FLAG_RECOVERED = "recovered"
RING_RETRY_SECONDS = 0.3
# integration.tasks.pipeline_drain, queued by name (tasks import this module, not the reverse).
DRAIN_TASK = "integration.tasks.pipeline_drain"


def _claim_size() -> int:
    return int(settings.PIPELINE_CLAIM_SIZE)


def _lease() -> timedelta:
    return timedelta(seconds=settings.PIPELINE_LEASE_SECONDS)


def _give_up_after() -> timedelta:
    return timedelta(seconds=settings.PIPELINE_GIVE_UP_SECONDS)


def _backoff(attempts: int, *, floor: float = 0.0) -> timedelta:
    seconds = backoff_seconds(
        attempts,
        base=settings.PIPELINE_RETRY_BASE_SECONDS,
        cap=settings.PIPELINE_RETRY_MAX_SECONDS,
        floor=floor,
    )
    return timedelta(seconds=seconds)


# --- hand-off -------------------------------------------------------------------------------


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
    transaction.on_commit(lambda: task_enqueue(DRAIN_TASK, organization_id))
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


# --- the drain --------------------------------------------------------------------------------


def _redis_dirty_key(organization_id: int) -> str:
    return f"beetel:pipeline:dirty:{organization_id}"


@dataclass
class DrainResult:
    processed: int = 0
    rounds: int = 0
    retry_in: timedelta | None = None  # earliest transient retry scheduled, if any
    busy: bool = False  # another process holds the organization's drain
    more: bool = False  # stopped at its time budget with work left (the caller re-queues)


def deliveries_drain(
    *, organization_id: int, now: datetime | None = None, max_seconds: float = 240.0
) -> DrainResult:
    """Deliver every due delivery of one organization, round after round, until none is left or
    ``max_seconds`` passed (then ``more`` is set: the task queues itself again, so a busy
    account never holds a worker past the task time limit).

    Single-flight: when another process is draining this organization, mark it dirty (that
    process drains again before it stops) and return ``busy``.
    """
    result = DrainResult()
    started = time.monotonic()
    dirty = _redis_dirty_key(organization_id)
    redis_client().set(dirty, 1, ex=3600)
    while True:
        # Single-flight per organization across processes (a session lock: a killed worker's
        # connection closes and the lock goes with it).
        with advisory_lock(f"pipeline:{organization_id}", wait=False) as acquired:
            if not acquired:
                result.busy = True
                return result
            while True:
                if time.monotonic() - started > max_seconds:
                    result.more = True
                    return result
                redis_client().delete(dirty)
                ids = _deliveries_claim(organization_id=organization_id, now=now)
                if not ids:
                    break
                result.rounds += 1
                result.processed += len(ids)
                retry = _deliver_round(organization_id=organization_id, delivery_ids=ids)
                if retry is not None and (result.retry_in is None or retry < result.retry_in):
                    result.retry_in = retry
            # Last step, once the queue is empty: complete the tasks of returned missed calls.
            retry = callback_completions_run(organization_id=organization_id)
            if retry is not None and (result.retry_in is None or retry < result.retry_in):
                result.retry_in = retry
        # Released first, then checked: a drain that found the lock taken set the flag before
        # trying, so either we see it here or it got the lock after our release.
        if not redis_client().get(dirty):
            return result


def _deliveries_claim(*, organization_id: int, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    with transaction.atomic(), organization_scope(organization_id):
        ids = list(
            CallDelivery.objects.filter(
                Q(status=Status.PENDING, next_attempt_at__lte=now)
                | Q(status=Status.IN_PROGRESS, lease_until__lt=now)
            )
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[: _claim_size()]
        )
        if ids:
            CallDelivery.objects.filter(pk__in=ids).update(
                status=Status.IN_PROGRESS,
                lease_until=now + _lease(),
                attempts=F("attempts") + 1,
                first_attempt_at=Coalesce(F("first_attempt_at"), now),
                updated_at=now,
            )
    return ids


@dataclass
class _Work:
    """One claimed delivery with what the steps need."""

    delivery: CallDelivery
    call: PbxCall
    phone_e164: str
    phone_national: str
    inbound: bool
    create_allowed: bool
    log_wanted: bool
    task_wanted: bool
    responsible: int | None
    task_user: int | None
    group: bool
    tags: list[str] = field(default_factory=list)
    error: str = ""  # a permanent problem of this item (ends failed)
    transient: str = ""  # a transient problem of this item (retried)
    handled: bool = False  # already settled or rescheduled by this round


def _deliver_round(*, organization_id: int, delivery_ids: list[int]) -> timedelta | None:
    """Take claimed deliveries through the steps; returns the backoff if some must retry."""
    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization_id):
        deliveries = list(
            CallDelivery.objects.filter(pk__in=delivery_ids).select_related(
                "pbx_call", "pbx_call__abonent", "pbx_call__number"
            )
        )
        call_settings = CallSettings.objects.filter(organization_id=organization_id).first()
        call_settings = call_settings or CallSettings(organization_id=organization_id)
        legs: dict[int, list[int]] = defaultdict(list)
        for call_id, abonent_id in (
            PbxCallLeg.objects.filter(pbx_call_id__in=[d.pbx_call_id for d in deliveries])
            .exclude(abonent_id=None)
            .order_by("started_at", "id")
            .values_list("pbx_call_id", "abonent_id")
        ):
            if abonent_id not in legs[call_id]:
                legs[call_id].append(abonent_id)
        abonent_ids = {a for ids in legs.values() for a in ids} | {
            d.pbx_call.abonent_id for d in deliveries if d.pbx_call.abonent_id
        }
        mappings = {
            m.abonent_id: m for m in ManagerMapping.objects.filter(abonent_id__in=abonent_ids)
        }
    work: list[_Work] = []
    for delivery in deliveries:
        item = _work_plan(delivery, call_settings, mappings, legs.get(delivery.pbx_call_id, []))
        if item is not None:
            work.append(item)
    _flush(deliveries)
    if not work:
        return None
    try:
        client = amo_client(organization=organization)
    except AmoError as exc:
        retry = _round_failed(organization, work, exc)
        _flush(deliveries)
        return retry
    retry = None
    for step in (_step_contacts, _step_calls, _step_tasks):
        active = [w for w in work if not (w.error or w.transient or w.handled)]
        if not active:
            break
        try:
            step(organization, client, active)
        except AmoError as exc:
            retry = _round_failed(organization, active, exc)
            break
        finally:
            _flush(deliveries)
    rest = _finish(work)
    _flush(deliveries)
    return min((r for r in (retry, rest) if r is not None), default=None)


def _work_plan(
    delivery: CallDelivery,
    call_settings: CallSettings,
    mappings: dict[int, ManagerMapping],
    leg_abonents: list[int],
) -> _Work | None:
    """Decide what this call needs; settles (and returns None for) calls that need nothing."""
    call = delivery.pbx_call
    inbound = call.direction == PbxCall.Direction.IN
    phone = phone_parse(call.external_phone or call.external_phone_national)
    flags: list[str] = []
    if call.recovered:
        flags.append(FLAG_RECOVERED)
    mapping = mappings.get(call.abonent_id) if call.abonent_id else None
    responsible = None
    if call.abonent_id is None:
        flags.append(FLAG_NO_ABONENT)
    elif mapping is None or mapping.amo_user_id is None:
        flags.append(FLAG_UNMAPPED)
    elif not mapping.enabled:
        flags.append(FLAG_DISABLED)
    else:
        responsible = mapping.amo_user_id
    mapped_in_order = [
        m.amo_user_id
        for a in leg_abonents
        if (m := mappings.get(a)) is not None and m.enabled and m.amo_user_id
    ]
    group = len(leg_abonents) > 1 or bool(
        call.number_id and call.number and call.number.is_multichannel
    )
    tags = [TAG]
    if inbound and call.number is not None and call.number.is_multichannel:
        tags.append(call.number.display_name)
    item = _Work(
        delivery=delivery,
        call=call,
        phone_e164=phone.e164 if phone else "",
        phone_national=phone.national if phone else "",
        inbound=inbound,
        create_allowed=(
            call_settings.create_contact_incoming
            if inbound
            else call_settings.create_contact_outgoing
        ),
        log_wanted=call_settings.log_call_incoming if inbound else call_settings.log_call_outgoing,
        task_wanted=(
            inbound and call.outcome == PbxCall.Outcome.MISSED and call_settings.create_task_missed
        ),
        responsible=responsible,
        task_user=responsible if not group else None,
        group=group,
        tags=tags,
    )
    if group and item.task_wanted:
        item.task_user = responsible or (mapped_in_order[0] if mapped_in_order else None)
    _store(delivery, flags=flags, responsible_user_id=responsible)
    if phone is None:
        _settle(delivery, Status.SKIPPED_BY_SETTING, _("Номер клиента скрыт или не распознан."))
        return None
    if not (item.create_allowed or item.log_wanted or item.task_wanted):
        _settle(
            delivery,
            Status.SKIPPED_BY_SETTING,
            _("Добавление звонка и создание задач выключены в «Настройки звонков»."),
        )
        return None
    if _expired(delivery):
        _settle(delivery, Status.FAILED, delivery.last_error or _("Истекло время доставки."))
        return None
    return item


def _expired(delivery: CallDelivery) -> bool:
    started = delivery.first_attempt_at or delivery.created_at
    return bool(started and timezone.now() - started > _give_up_after())


def _store(delivery: CallDelivery, **values: Any) -> None:
    """Set fields of one delivery; ``_flush`` writes them (one UPDATE per set of fields) before
    the next request to amoCRM, so what amoCRM told us survives a crash of what follows."""
    dirty: set[str] = delivery.__dict__.setdefault("_dirty", set())
    for name, value in values.items():
        setattr(delivery, name, value)
        dirty.add(name)


def _flush(deliveries: Sequence[CallDelivery]) -> None:
    groups: dict[frozenset[str], list[CallDelivery]] = defaultdict(list)
    now = timezone.now()
    for delivery in deliveries:
        dirty = delivery.__dict__.get("_dirty")
        if dirty:
            delivery.updated_at = now
            groups[frozenset(dirty)].append(delivery)
            dirty.clear()
    for fields, rows in groups.items():
        with organization_scope(rows[0].organization_id):
            CallDelivery.objects.bulk_update(rows, [*sorted(fields), "updated_at"])


def _settle(delivery: CallDelivery, status: str, reason: str = "") -> None:
    values: dict[str, Any] = {"status": status, "lease_until": None, "next_attempt_at": None}
    if status == Status.SKIPPED_BY_SETTING:
        values["skip_reason"] = reason
    elif status == Status.FAILED:
        values["last_error"] = reason
    elif status == Status.DONE:
        values["delivered_at"] = timezone.now()
        values["last_error"] = ""
    _store(delivery, **values)


# --- step 1: contacts -------------------------------------------------------------------------


def _mapped_users(organization: Organization) -> set[int]:
    with organization_scope(organization):
        return set(
            ManagerMapping.objects.filter(enabled=True, amo_user_id__isnull=False).values_list(
                "amo_user_id", flat=True
            )
        )


def _index_store(
    organization: Organization, national: str, contact_id: int, *, created: bool
) -> None:
    # ContactIndex is crm's table; the pipeline writes it the way crm.contact_find_or_create
    # does (upsert per phone), for contacts it found or created in a batch.
    with organization_scope(organization):
        ContactIndex.objects.bulk_create(
            [
                ContactIndex(
                    organization=organization,
                    phone_national=national,
                    contact_id=contact_id,
                    created_by_us=created,
                )
            ],
            update_conflicts=True,
            unique_fields=["organization", "phone_national"],
            update_fields=["contact_id", "created_by_us"],
        )


def _step_contacts(organization: Organization, client: AmoClient, work: list[_Work]) -> None:
    need = [w for w in work if w.delivery.contact_id is None]
    if need:
        with organization_scope(organization):
            indexed = dict(
                ContactIndex.objects.filter(
                    phone_national__in={w.phone_national for w in need}
                ).values_list("phone_national", "contact_id")
            )
        for w in need:
            if w.phone_national in indexed:
                _store(w.delivery, contact_id=indexed[w.phone_national])
    # A group missed call's task goes to the contact's responsible user when that user is one
    # of the mapped managers; a contact known from the index needs one search to learn it.
    mapped_users = _mapped_users(organization) if any(w.group for w in work) else set()

    def wants_owner(w: _Work) -> bool:
        return w.group and w.task_wanted and w.delivery.task_state != Step.DONE

    to_search = sorted(
        {w.phone_national for w in work if w.delivery.contact_id is None or wants_owner(w)}
    )
    searched: dict[str, tuple[int, int | None] | None] = {}
    for national, found in _contacts_search(client, to_search).items():
        if found:
            best = min(found, key=lambda c: c.id)
            searched[national] = (best.id, best.responsible_user_id)
            _index_store(organization, national, best.id, created=False)
        else:
            searched[national] = None
    for w in work:
        hit = searched.get(w.phone_national)
        if hit is None:
            continue
        if w.delivery.contact_id is None:
            _store(w.delivery, contact_id=hit[0])
        if wants_owner(w) and hit[1] and hit[1] in mapped_users:
            w.task_user = hit[1]
    # New numbers: one batched create, one contact per number, for the directions allowing it.
    creators: dict[str, _Work] = {}
    for w in work:
        if w.delivery.contact_id is None and w.create_allowed:
            creators.setdefault(w.phone_national, w)
    if creators:
        _flush([w.delivery for w in work])
        drafts = [
            ContactDraft(
                name=w.phone_e164,
                phone_e164=w.phone_e164,
                tags=tuple(w.tags),
                responsible_user_id=w.responsible,
            )
            for w in creators.values()
        ]
        ids = _contacts_create(client, drafts)
        for (national, w), contact_id in zip(creators.items(), ids, strict=True):
            if isinstance(contact_id, str):
                w.error = _("amoCRM не создал контакт: %(e)s") % {"e": contact_id}
                continue
            _index_store(organization, national, contact_id, created=True)
            _store(w.delivery, contact_id=contact_id, contact_created=True)
        for w in work:
            if w.delivery.contact_id is None and w.phone_national in creators:
                _store(w.delivery, contact_id=creators[w.phone_national].delivery.contact_id)
    for w in work:
        if w.delivery.contact_id is None and not w.error:
            setting = (
                _("«Создание контакта при входящих звонках»")
                if w.inbound
                else _("«Создание контакта при исходящих звонках»")
            )
            _settle(
                w.delivery,
                Status.SKIPPED_BY_SETTING,
                _("Номера нет в amoCRM, а настройка %(setting)s выключена: звонок не записан.")
                % {"setting": setting},
            )
            w.handled = True


def _contacts_search(client: AmoClient, nationals: list[str]) -> dict[str, list[AmoContact]]:
    # One by one: measured, searches in parallel threads gained nothing at 6 requests/s (the
    # limiter, not the round trip, sets the pace) and risked 429s from bunched arrivals.
    return {national: client.contacts_find_by_phone(national) for national in nationals}


def _contacts_create(client: AmoClient, drafts: list[ContactDraft]) -> list[int | str]:
    """Contact ids in the order of ``drafts``; an error text for a draft amoCRM refused."""
    try:
        return list(client.contacts_create(drafts))
    except AmoPermanentError as exc:
        if len(drafts) == 1:
            return [exc.message]
    # A validation error in one draft rejects the whole batch (nothing is created): one by
    # one, so a single bad contact does not fail its neighbours.
    return [_contacts_create(client, [draft])[0] for draft in drafts]


# --- step 2: the call log ---------------------------------------------------------------------


def _ambiguous(exc: AmoError) -> bool:
    """Might amoCRM have done the work although we got no answer? (429 is refused up front.)"""
    return isinstance(exc, AmoTransientError) and not isinstance(exc, AmoRateLimited)


def _call_draft(w: _Work) -> CallDraft:
    call = w.call
    outcome = str(call.outcome or PbxCall.Outcome.MISSED)
    result = CALL_RESULT.get(outcome, "")
    if not w.inbound and outcome == PbxCall.Outcome.MISSED:
        result = OUTBOUND_NO_ANSWER
    link = call_recording_url(call=call) if outcome == PbxCall.Outcome.ANSWERED else None
    return CallDraft(
        direction="inbound" if w.inbound else "outbound",
        duration=int(call.talk_seconds or 0),
        phone=w.phone_e164,
        uniq=call.ext_tracking_id,
        link=link,
        call_status=CALL_STATUS.get(outcome),
        call_result=result or None,
        call_responsible=w.responsible,
        responsible_user_id=w.responsible,
        created_by=w.responsible,
        created_at=int(call.started_at.timestamp()) if call.started_at else None,
    )


def _entity_not_found(error: str | None) -> bool:
    return bool(error) and "entity not found" in (error or "").lower()


def _calls_post(client: AmoClient, items: list[_Work]) -> list[ItemResult]:
    results = client.calls_add([_call_draft(w) for w in items])
    if (
        len(items) > 1
        and all(not r.ok for r in results)
        and not all(_entity_not_found(r.error) for r in results)
    ):
        # A validation error in one item rejects the whole batch (nothing is added): one by
        # one, so a single bad call does not fail its 49 neighbours.
        return [client.calls_add([_call_draft(w)])[0] for w in items]
    return results


def _step_calls(organization: Organization, client: AmoClient, work: list[_Work]) -> None:
    for w in work:
        if not w.log_wanted and w.delivery.call_state == Step.NONE:
            _store(w.delivery, call_state=Step.NOT_NEEDED)
    todo = [w for w in work if w.log_wanted and w.delivery.call_state in (Step.NONE, Step.POSTING)]
    for w in todo:
        if w.delivery.call_state == Step.POSTING and w.delivery.contact_id is not None:
            # An earlier POST got no clear answer: look before posting again.
            uniq = w.call.ext_tracking_id
            note = next(
                (n for n in client.contact_call_notes(w.delivery.contact_id) if n.uniq == uniq),
                None,
            )
            if note is not None:
                _store(w.delivery, call_state=Step.DONE, amo_call_id=note.id)
    post = [w for w in todo if w.delivery.call_state != Step.DONE]
    _flush([w.delivery for w in work])
    if not post:
        return
    _mark(post, call_state=Step.POSTING)
    try:
        results = _calls_post(client, post)
    except AmoError as exc:
        if not _ambiguous(exc):
            _mark(post, call_state=Step.NONE)
        raise
    for w, result in zip(post, results, strict=True):
        if result.ok:
            _store(w.delivery, call_state=Step.DONE, amo_call_id=result.id)
        elif _entity_not_found(result.error):
            # The contact is gone from amoCRM: forget it and find or create it again.
            if w.delivery.contact_id is not None:
                contact_index_forget(organization=organization, contact_id=w.delivery.contact_id)
            _store(w.delivery, call_state=Step.NONE, contact_id=None, contact_created=False)
            w.transient = _("amoCRM не нашёл контакт звонка: %(e)s") % {"e": result.error}
        else:
            _store(w.delivery, call_state=Step.NONE)
            w.error = _("amoCRM не принял звонок: %(e)s") % {"e": result.error}


def _mark(items: Sequence[_Work], **values: Any) -> None:
    """One committed UPDATE for several deliveries (the ``posting`` marker goes in before the
    POST it guards)."""
    if not items:
        return
    for w in items:
        for name, value in values.items():
            setattr(w.delivery, name, value)
    with organization_scope(items[0].delivery.organization_id):
        CallDelivery.objects.filter(pk__in=[w.delivery.pk for w in items]).update(
            **values, updated_at=timezone.now()
        )


# --- step 3: the missed-call task -------------------------------------------------------------


def _step_tasks(organization: Organization, client: AmoClient, work: list[_Work]) -> None:
    """The «Перезвонить» task: what it should be comes from call-back tracking (the number's
    open task, updated, or one new task per number)."""
    for w in work:
        if not w.task_wanted and w.delivery.task_state == Step.NONE:
            _store(w.delivery, task_state=Step.NOT_NEEDED)
    todo = [w for w in work if w.task_wanted and w.delivery.task_state in (Step.NONE, Step.POSTING)]
    for w in todo:
        if w.delivery.task_state == Step.POSTING and w.delivery.contact_id is not None:
            # An earlier POST got no clear answer: look before posting again.
            base, till = task_base_text(w.phone_e164), w.delivery.task_complete_till
            task = next(
                (
                    t
                    for t in client.tasks_for_contact(w.delivery.contact_id)
                    if t.text.startswith(base) and t.complete_till == till
                ),
                None,
            )
            if task is not None:
                _store(w.delivery, task_state=Step.DONE, task_id=task.id)
                callback_tasks_attach(
                    organization=organization,
                    call_ids=[w.call.pk],
                    task_id=task.id,
                    responsible_user_id=w.task_user,
                )
    todo = [w for w in todo if w.delivery.task_state != Step.DONE]
    _flush([w.delivery for w in work])
    if not todo:
        return
    plans = callback_tasks_prepare(
        organization=organization, client=client, calls=[(w.call.pk, w.phone_e164) for w in todo]
    )
    by_number: dict[str, list[_Work]] = defaultdict(list)
    for w in todo:
        plan = plans[w.call.pk]
        if plan.task_id is not None:
            _store(
                w.delivery,
                task_state=Step.DONE,
                task_id=plan.task_id,
                task_complete_till=plan.complete_till,
            )
            callback_tasks_attach(
                organization=organization,
                call_ids=[w.call.pk],
                task_id=plan.task_id,
                responsible_user_id=None,
            )
        else:
            _store(w.delivery, task_complete_till=plan.complete_till)
            by_number[w.phone_national].append(w)
    _flush([w.delivery for w in work])
    if not by_number:
        return
    groups = list(by_number.values())
    drafts = [
        TaskDraft(
            text=plans[group[0].call.pk].text,
            complete_till=plans[group[0].call.pk].complete_till,
            entity_id=group[0].delivery.contact_id,
            entity_type="contacts",
            task_type_id=1,
            responsible_user_id=group[0].task_user,
        )
        for group in groups
    ]
    post = [w for group in groups for w in group]
    _mark(post, task_state=Step.POSTING)
    try:
        ids = client.tasks_add(drafts)
    except AmoError as exc:
        if not _ambiguous(exc):
            _mark(post, task_state=Step.NONE)
        raise
    for group, task_id in zip(groups, ids, strict=True):
        for w in group:
            _store(w.delivery, task_state=Step.DONE, task_id=task_id)
        callback_tasks_attach(
            organization=organization,
            call_ids=[w.call.pk for w in group],
            task_id=task_id,
            responsible_user_id=group[0].task_user,
        )


# --- outcomes ---------------------------------------------------------------------------------


def _round_failed(
    organization: Organization, items: list[_Work], exc: AmoError
) -> timedelta | None:
    """A whole-request failure: pause, retry later or fail the items it concerned."""
    now = timezone.now()
    for w in items:
        w.handled = True
    if isinstance(exc, AmoPaused | AmoAuthError):
        # Not the calls' fault: no attempt is burnt, and deliveries_resume picks them up.
        with organization_scope(organization):
            CallDelivery.objects.filter(pk__in=[w.delivery.pk for w in items]).update(
                status=Status.PAUSED,
                last_error=exc.message,
                lease_until=None,
                next_attempt_at=None,
                attempts=F("attempts") - 1,
                updated_at=now,
            )
        logger.warning(
            "pipeline paused",
            extra={"organization_id": organization.pk, "error": exc.message},
        )
        return None
    if isinstance(exc, AmoTransientError):
        floor = exc.retry_after if isinstance(exc, AmoRateLimited) else 0.0
        backoff = _backoff(max(w.delivery.attempts for w in items), floor=floor)
        for w in items:
            if _expired(w.delivery):
                _settle(
                    w.delivery,
                    Status.FAILED,
                    _("amoCRM не принимал звонок более суток: %(e)s") % {"e": exc.message},
                )
            else:
                _store(
                    w.delivery,
                    status=Status.PENDING,
                    next_attempt_at=now + backoff,
                    lease_until=None,
                    last_error=exc.message,
                )
        logger.info(
            "pipeline retry",
            extra={"organization_id": organization.pk, "error": exc.message, "n": len(items)},
        )
        return backoff
    for w in items:
        _settle(w.delivery, Status.FAILED, exc.message)
    audit_record(
        organization=organization,
        kind="pipeline.failed",
        level=AuditEntry.Level.ERROR,
        message=_("Звонки не переданы в amoCRM: %(e)s") % {"e": exc.message},
        data={"count": len(items)},
    )
    return None


def _finish(work: list[_Work]) -> timedelta | None:
    retry: timedelta | None = None
    now = timezone.now()
    for w in work:
        if w.handled:
            continue
        d = w.delivery
        if w.transient:
            backoff = _backoff(d.attempts)
            retry = backoff if retry is None else min(retry, backoff)
            _store(
                d,
                status=Status.PENDING,
                next_attempt_at=now + backoff,
                lease_until=None,
                last_error=w.transient,
            )
        elif w.error:
            _settle(d, Status.FAILED, w.error)
        elif (
            d.call_state == Step.NOT_NEEDED
            and d.task_state == Step.NOT_NEEDED
            and not d.contact_created
        ):
            setting = (
                _("«Добавление звонка при входящих звонках»")
                if w.inbound
                else _("«Добавление звонка при исходящих звонках»")
            )
            _settle(
                d,
                Status.SKIPPED_BY_SETTING,
                _("Настройка %(setting)s выключена: звонок не записан.") % {"setting": setting},
            )
        else:
            _settle(d, Status.DONE)
    return retry


# --- pause / resume / retry -------------------------------------------------------------------


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
        transaction.on_commit(lambda: task_enqueue(DRAIN_TASK, organization_id))
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
        paused = set(
            AmoAccountState.objects.filter(organization_id__in=org_ids)
            .exclude(paused_reason="")
            .values_list("organization_id", flat=True)
        )
        healthy_creds = set(
            AmoCredentials.objects.filter(
                organization_id__in=org_ids, status=AmoCredentials.Status.OK
            )
            .exclude(refresh_token="")
            .values_list("organization_id", flat=True)
        )
    active = set(
        Organization.objects.filter(pk__in=org_ids, status=Organization.Status.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    ready = sorted((org_ids & active & healthy_creds) - paused)
    for org_id in ready:
        deliveries_resume(organization_id=org_id)
    return ready


def delivery_retry(*, organization: Organization, call_id: int) -> bool:
    """Put a failed (or paused) call back in the queue (cabinet «Повторить», admin action).

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
        org_id = organization.pk
        transaction.on_commit(lambda: task_enqueue(DRAIN_TASK, org_id))
    return bool(updated)


def deliveries_due_dispatch(*, now: datetime | None = None) -> list[int]:
    """The beat's sweep: queue a drain for each organization with due work (pending past its
    retry time, or claimed by a worker whose lease ran out), and adopt orphaned calls."""
    now = now or timezone.now()
    deliveries_orphans_adopt(now=now)
    with scopes_disabled():
        org_ids = sorted(
            set(
                CallDelivery.objects.filter(
                    Q(status=Status.PENDING, next_attempt_at__lte=now)
                    | Q(status=Status.IN_PROGRESS, lease_until__lt=now)
                )
                .values_list("organization_id", flat=True)
                .distinct()
            )
        )
    for org_id in org_ids:
        task_enqueue(DRAIN_TASK, org_id)
    return org_ids


# --- ringing notifications --------------------------------------------------------------------


def ring_notify(
    *, organization_id: int, call_id: int, leg_ids: Sequence[int], now: datetime | None = None
) -> list[int]:
    """The incoming/outgoing-call pop-up (settings 1/4) for the mapped, enabled managers of
    the ringing legs, once per (call, user). Returns the amoCRM user ids notified.

    Never raises for amoCRM trouble: after one quick second try the pop-up is given up (the
    claims are released, so a later ringing leg of the same call may try again).
    """
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization_id):
        call = PbxCall.objects.filter(pk=call_id).first()
        if call is None or not call.external_phone:
            return []
        call_settings = CallSettings.objects.filter(organization_id=organization_id).first()
        call_settings = call_settings or CallSettings(organization_id=organization_id)
        wanted = (
            call_settings.notify_incoming
            if call.direction == PbxCall.Direction.IN
            else call_settings.notify_outgoing
        )
        if not wanted:
            return []
        abonent_ids = set(
            PbxCallLeg.objects.filter(pk__in=list(leg_ids), pbx_call_id=call_id)
            .exclude(abonent_id=None)
            .values_list("abonent_id", flat=True)
        )
        users = sorted(
            set(
                ManagerMapping.objects.filter(
                    abonent_id__in=abonent_ids, enabled=True, amo_user_id__isnull=False
                ).values_list("amo_user_id", flat=True)
            )
        )
        if not users:
            return []
        # One statement for all managers: this runs while the phone rings.
        RingNotice.objects.bulk_create(
            [
                RingNotice(organization_id=organization_id, pbx_call_id=call_id, amo_user_id=u)
                for u in users
            ],
            ignore_conflicts=True,
        )
        with transaction.atomic():
            claimed = list(
                RingNotice.objects.select_for_update(skip_locked=True)
                .filter(pbx_call_id=call_id, amo_user_id__in=users, sent_at__isnull=True)
                .values_list("pk", "amo_user_id")
            )
            RingNotice.objects.filter(pk__in=[pk for pk, _u in claimed]).update(sent_at=now)
    if not claimed:
        return []
    to_notify = [user for _pk, user in claimed]
    event = PhoneCallEvent(phone_number=call.external_phone, users=to_notify)
    # A pop-up is worth something only while the phone rings: one quick second try, no more.
    for attempt in (1, 2):
        try:
            amo_client(organization=organization).events_phone_call([event])
            return to_notify
        except AmoTransientError as exc:
            if attempt == 1:
                time.sleep(RING_RETRY_SECONDS)
                continue
            error = exc.message
        except AmoError as exc:  # paused, revoked, refused
            error = exc.message
        break
    with organization_scope(organization_id):
        RingNotice.objects.filter(pk__in=[pk for pk, _u in claimed]).update(sent_at=None)
    logger.info(
        "ring notification not sent",
        extra={"organization_id": organization_id, "error": error},
    )
    return []
