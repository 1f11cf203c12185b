"""«Звонок ответственному»: Beeline's ICR rules kept in step with amoCRM.

Beeline has no CRM lookup at call time, so a known client reaches their own manager only
through ICR rules (docs/beeline-api.md §3): ``/icr/route`` maps a client's number to an extension,
``/icr/numbers`` lists the incoming numbers the rules apply to. For every amoCRM contact whose
responsible user is a mapped, enabled manager («Менеджеры»), each of the contact's phones gets a
rule to that manager's abonent extension; on the numbers the customer chose.

Kept in step three ways, all through ``_rules_reconcile``:
- ``routing_contacts_sync``: contacts amoCRM reported changed (entity webhooks) or that the
  pipeline just created — each re-read through the API, its phones searched again (a phone's rule
  follows the oldest contact with a mapped responsible user, as the pipeline picks contacts);
- ``routing_sync_full``: the periodic full reconciliation (adds missing, fixes wrong, removes
  stale rules) and the one run when the option is switched on;
- ``routing_remove_all``: switching the option off removes Beetel's rules and only those.

Only rules Beetel made are ever changed or deleted: a ``RoutingRule`` row is written (pending)
before the rule is sent, and ``remote_extension`` records what we put there; a rule someone
else made for the same number is reported, not overwritten. Writes to Beeline go in batches of
``ROUTING_BATCH_SIZE`` with a pause between them (Beeline's limits are unknown, docs/beeline-api.md
§1); amoCRM requests go through the account's shared rate limiter. One sync per organization
runs at a time (a PostgreSQL advisory lock); a second one is told ``RoutingBusy`` and retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.locks import advisory_lock
from core.models import AuditEntry, Organization
from core.phones import Phone, phone_parse
from core.services import audit_record
from core.task_queue import task_enqueue, task_fanout_countdown
from core.tenancy import organization_scope, scopes_disabled
from crm.client import AmoClient, AmoContact
from crm.services import amo_client
from integration.models import (
    CallSettings,
    ManagerMapping,
    RoutingNumber,
    RoutingRule,
    RoutingStatus,
)
from pbx.client import BeelineClient, IcrItemResult, IcrRule
from pbx.credentials import beeline_client_for
from pbx.models import Abonent

logger = logging.getLogger(__name__)

State = RoutingRule.State


class RoutingBusy(Exception):
    """Another process is syncing this organization's rules right now."""


# --- switches -------------------------------------------------------------------------------


def routing_enabled(*, organization: Organization | int) -> bool:
    with organization_scope(organization):
        return bool(
            CallSettings.objects.filter(organization=organization, routing_enabled=True).exists()
        )


def routing_contacts_changed(*, organization_id: int, contact_ids: Sequence[int]) -> bool:
    """Queue a sync of these contacts' rules after commit (amoCRM webhook, or contacts the
    delivery created). Nothing is queued while routing is off. Returns whether it queued."""
    if not contact_ids or not routing_enabled(organization=organization_id):
        return False
    ids = sorted({int(c) for c in contact_ids})
    transaction.on_commit(
        lambda: task_enqueue("integration.tasks.routing_contacts_sync", organization_id, ids)
    )
    return True


def routing_mapping_changed(*, organization: Organization) -> bool:
    """«Менеджеры» was saved: with routing on, a full sync brings the rules to the new mapping.
    Returns whether one was queued."""
    if not routing_enabled(organization=organization):
        return False
    routing_sync_request(organization=organization)
    return True


def routing_sync_request(*, organization: Organization) -> None:
    """Queue a full sync after commit (the option or the numbers or the managers changed)."""
    org_id = organization.pk
    transaction.on_commit(lambda: task_enqueue("integration.tasks.routing_sync_full", org_id))


# --- locking and pacing ---------------------------------------------------------------------


@contextmanager
def _organization_lock(organization_id: int) -> Iterator[None]:
    """Single-flight per organization across processes; RoutingBusy when another has it."""
    with advisory_lock(f"routing:{organization_id}", wait=False) as acquired:
        if not acquired:
            raise RoutingBusy(organization_id)
        yield


def _pause() -> None:
    """Between two writes to Beeline (its limits are unknown, docs/beeline-api.md §1)."""
    time.sleep(float(settings.ROUTING_BATCH_PAUSE_SECONDS))


def _batches(items: Sequence[RoutingRule]) -> Iterator[Sequence[RoutingRule]]:
    size = int(settings.ROUTING_BATCH_SIZE)
    for start in range(0, len(items), size):
        if start:
            _pause()
        yield items[start : start + size]


# --- what the rules should be ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The rule a phone should have: the contact it comes from and the manager's abonent."""

    phone: Phone
    contact_id: int
    amo_user_id: int
    abonent: Abonent


def _managers(organization: Organization) -> dict[int, Abonent]:
    """amoCRM user → abonent, for mapped, enabled managers whose abonent is still in the PBX."""
    with organization_scope(organization):
        rows = ManagerMapping.objects.filter(
            enabled=True, amo_user_id__isnull=False, abonent__active=True
        ).select_related("abonent")
        return {int(m.amo_user_id): m.abonent for m in rows if m.amo_user_id}


def _targets(contacts: Iterable[AmoContact], managers: dict[int, Abonent]) -> dict[str, Target]:
    """Phone (national digits) → Target. A phone on several such contacts follows the oldest
    (lowest id), as the pipeline does when it picks a contact for a call."""
    targets: dict[str, Target] = {}
    for contact in sorted(contacts, key=lambda c: c.id):
        abonent = managers.get(contact.responsible_user_id or 0)
        if abonent is None:
            continue
        for raw in contact.phones:
            phone = phone_parse(raw)
            if phone is not None and phone.national not in targets:
                targets[phone.national] = Target(
                    phone=phone,
                    contact_id=contact.id,
                    amo_user_id=int(contact.responsible_user_id or 0),
                    abonent=abonent,
                )
    return targets


def _remote_rules(client: BeelineClient) -> dict[str, str]:
    """Beeline's rules as national digits → extension. Whether Beeline writes the client
    number as "+7…" or as 10 digits is a GUESS (docs/beeline-api.md §3 shows "+7…"): both parse."""
    rules: dict[str, str] = {}
    for rule in client.icr_routes_list():
        phone = phone_parse(rule.inbound_number)
        if phone is not None:
            rules[phone.national] = rule.extension.strip()
    return rules


# --- reconciling the rules -------------------------------------------------------------------


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    removed: int = 0
    refused: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def _rule_for_beeline(row: RoutingRule, extension: str) -> IcrRule:
    # Sent as E.164 ("+7…"), the form docs/beeline-api.md §3 shows; 10 digits may work too (GUESS).
    return IcrRule.model_validate({"inboundNumber": row.phone_e164, "extension": extension})


def _rules_reconcile(
    *,
    organization: Organization,
    client: BeelineClient,
    targets: dict[str, Target],
    phones: set[str] | None,
) -> SyncResult:
    """Bring Beeline's rules for ``phones`` (None: every phone we know of) to ``targets``.

    Writes our intentions first (rows ``pending`` / ``removing``, committed), then talks to
    Beeline, then records each rule's result. A crash in between leaves rows that the next run
    recognises: a pending row whose rule Beeline already holds is adopted as synced.
    """
    result = SyncResult()
    remote = _remote_rules(client)
    now = timezone.now()
    to_add: list[RoutingRule] = []
    to_update: list[RoutingRule] = []
    to_delete: list[RoutingRule] = []
    with organization_scope(organization), transaction.atomic():
        rows_qs = RoutingRule.objects.select_for_update().filter(organization=organization)
        if phones is not None:
            rows_qs = rows_qs.filter(phone_national__in=phones)
        rows = {r.phone_national: r for r in rows_qs}
        todo = set(phones) if phones is not None else set(targets) | set(rows)
        for national in sorted(todo):
            target, row, remote_ext = (
                targets.get(national),
                rows.get(national),
                remote.get(national),
            )
            ours = (
                row is not None
                and bool(row.remote_extension)
                and remote_ext == row.remote_extension
            )
            if target is None:
                if row is None:
                    continue  # not ours to touch
                if ours:
                    row.state, row.last_error = State.REMOVING, ""
                    to_delete.append(row)
                else:
                    row.delete()
                    result.removed += 1
                continue
            existed = row is not None
            if row is None:
                row = RoutingRule(
                    organization=organization,
                    phone_national=national,
                    phone_e164=target.phone.e164,
                )
            row.contact_id = target.contact_id
            row.amo_user_id = target.amo_user_id
            row.abonent = target.abonent
            row.extension = target.abonent.extension.strip()
            if not row.extension:
                row.state = State.REFUSED
                row.last_error = _(
                    "У абонента %(phone)s нет добавочного номера в АТС: правило не создать."
                ) % {"phone": target.abonent.phone or target.abonent.user_id}
                if ours:
                    to_delete.append(row)  # our old rule points at the wrong manager now
                result.refused += 1
            elif remote_ext == row.extension:
                if existed and row.state != State.REFUSED:
                    row.remote_extension = row.extension  # ours (maybe sent before a crash)
                if row.state != State.SYNCED:
                    row.synced_at = now
                row.state, row.last_error = State.SYNCED, ""
                result.unchanged += 1
            elif remote_ext is None:
                row.state, row.last_error = State.PENDING, ""
                to_add.append(row)
            elif ours:
                row.state, row.last_error = State.PENDING, ""
                to_update.append(row)
            else:
                row.state = State.REFUSED
                row.last_error = _(
                    "В Билайн уже есть правило для этого номера на добавочный %(ext)s, "
                    "созданное не Beetel: мы его не меняем."
                ) % {"ext": remote_ext}
                result.refused += 1
            row.save()
    for batch in _batches(to_add):
        _apply(client, batch, "add", result)
    for batch in _batches(to_update):
        _apply(client, batch, "update", result)
    for batch in _batches(to_delete):
        _apply(client, batch, "delete", result)
    return result


def _apply(
    client: BeelineClient, rows: Sequence[RoutingRule], action: str, result: SyncResult
) -> None:
    """Send one batch and record each rule's answer. Beeline being unreachable raises (the
    rows stay pending / removing for the retry)."""
    if action == "delete":
        rules = [_rule_for_beeline(r, r.remote_extension) for r in rows]
    else:
        rules = [_rule_for_beeline(r, r.extension) for r in rows]
    answers = client.icr_routes_change(rules, action=action)
    now = timezone.now()
    with organization_scope(rows[0].organization_id), transaction.atomic():
        for row, answer in zip(rows, answers, strict=True):
            _record(row, action, answer, now, result)


def _record(
    row: RoutingRule, action: str, answer: IcrItemResult, now: datetime, result: SyncResult
) -> None:
    if action == "delete":
        gone = answer.ok or (answer.error is not None and answer.error.error_code == "RuleNotFound")
        if not gone:
            row.last_error = answer.reason
            row.save(update_fields=["last_error", "updated_at"])
            result.errors.append(answer.reason)
        elif row.state == State.REMOVING:
            row.delete()
            result.removed += 1
        else:  # a refused row whose old rule of ours had to go
            row.remote_extension = ""
            row.save(update_fields=["remote_extension", "updated_at"])
        return
    if answer.ok:
        row.state, row.last_error = State.SYNCED, ""
        row.remote_extension, row.synced_at = row.extension, now
        if action == "add":
            result.added += 1
        else:
            result.updated += 1
    else:
        row.state, row.last_error = State.REFUSED, answer.reason or _("Билайн отклонил правило.")
        result.refused += 1
    row.save()


# --- ICR numbers ------------------------------------------------------------------------------


def _numbers_reconcile(
    *, organization: Organization, client: BeelineClient, wanted: dict[str, str]
) -> None:
    """ICR on for the ``wanted`` numbers (national → E.164), off again for numbers we switched
    on and no longer want. A number that had ICR on before us is left on."""
    enabled = _icr_numbers(client)
    with organization_scope(organization):
        rows = {
            r.phone_national: r for r in RoutingNumber.objects.filter(organization=organization)
        }
        for national in wanted.keys() & enabled:
            row = rows.get(national) or RoutingNumber(
                organization=organization, phone_national=national, enabled_by_us=False
            )
            row.state, row.last_error = State.SYNCED, ""
            row.save()
        switch_on = sorted(wanted.keys() - enabled)
        for national in switch_on:
            row = rows.get(national) or RoutingNumber(
                organization=organization, phone_national=national
            )
            row.state, row.last_error = State.PENDING, ""
            row.save()
    if switch_on:
        answers = client.icr_numbers_switch([wanted[n] for n in switch_on], enable=True)
        with organization_scope(organization):
            for national, answer in zip(switch_on, answers, strict=True):
                RoutingNumber.objects.filter(
                    organization=organization, phone_national=national
                ).update(
                    enabled_by_us=answer.ok,
                    state=State.SYNCED if answer.ok else State.REFUSED,
                    last_error="" if answer.ok else answer.reason,
                    updated_at=timezone.now(),
                )
    _numbers_release(organization=organization, client=client, keep=set(wanted), enabled=enabled)


def _icr_numbers(client: BeelineClient) -> set[str]:
    return {p.national for n in client.icr_numbers_list() if (p := phone_parse(n.phone))}


def _numbers_release(
    *, organization: Organization, client: BeelineClient, keep: set[str], enabled: set[str]
) -> None:
    with organization_scope(organization):
        unwanted = list(
            RoutingNumber.objects.filter(organization=organization).exclude(phone_national__in=keep)
        )
    ours = [r for r in unwanted if r.enabled_by_us and r.phone_national in enabled]
    if ours:
        answers = client.icr_numbers_switch(
            [phone.e164 for r in ours if (phone := phone_parse(r.phone_national))], enable=False
        )
        failed = {r.pk: a.reason for r, a in zip(ours, answers, strict=True) if not a.ok}
    else:
        failed = {}
    with organization_scope(organization):
        for row in unwanted:
            if row.pk in failed:
                row.state, row.last_error = State.REMOVING, failed[row.pk]
                row.save()
            else:
                row.delete()


def _wanted_numbers(organization: Organization) -> dict[str, str]:
    with organization_scope(organization):
        settings_row = CallSettings.objects.filter(organization=organization).first()
        numbers = list(settings_row.routing_numbers.all()) if settings_row else []
    return {p.national: p.e164 for n in numbers if (p := phone_parse(n.phone))}


# --- entry points -------------------------------------------------------------------------


def _status_store(organization: Organization, *, full: bool, error: str = "") -> None:
    now = timezone.now()
    with organization_scope(organization):
        status, _created = RoutingStatus.objects.get_or_create(organization=organization)
        status.last_sync_at = now
        if full and not error:
            status.full_sync_at = now
        status.last_error = error
        status.save()


def _report(organization: Organization, result: SyncResult, *, full: bool) -> None:
    changed = result.added + result.updated + result.removed
    if changed or result.refused or full:
        audit_record(
            organization=organization,
            kind="routing.synced" if not result.errors else "routing.sync_errors",
            level=AuditEntry.Level.INFO if not result.errors else AuditEntry.Level.WARNING,
            message=_(
                "Правила «Звонок ответственному»: добавлено %(a)s, изменено %(u)s, удалено "
                "%(r)s, отклонено Билайн %(f)s."
            )
            % {"a": result.added, "u": result.updated, "r": result.removed, "f": result.refused},
            data={"full": full, "errors": result.errors[:5]},
        )


def _clients(organization: Organization) -> tuple[AmoClient, BeelineClient]:
    return amo_client(organization=organization), beeline_client_for(organization)[1]


def _sync_recorded(
    organization: Organization, *, full: bool, sync: Callable[[], SyncResult]
) -> SyncResult:
    """Run one sync under the organization's lock and record its outcome for Диагностика: the
    error too, before it is raised again for the caller to retry."""
    with _organization_lock(organization.pk):
        try:
            result = sync()
        except Exception as exc:
            _status_store(organization, full=full, error=_error_text(exc))
            raise
    _status_store(organization, full=full)
    _report(organization, result, full=full)
    return result


def routing_sync_full(*, organization: Organization) -> SyncResult:
    """The full reconciliation: every contact of a mapped manager read from amoCRM, every
    rule of ours compared with Beeline's. With the option off this removes our rules.

    Raises RoutingBusy, ``crm.errors``/``pbx.errors`` classes (the caller retries transient
    ones; the error is also stored for Диагностика)."""
    if not routing_enabled(organization=organization):
        return routing_remove_all(organization=organization)

    def sync() -> SyncResult:
        amo, beeline = _clients(organization)
        managers = _managers(organization)
        contacts = amo.contacts_by_responsible(sorted(managers))
        targets = _targets(contacts, managers)
        _numbers_reconcile(
            organization=organization, client=beeline, wanted=_wanted_numbers(organization)
        )
        return _rules_reconcile(
            organization=organization, client=beeline, targets=targets, phones=None
        )

    return _sync_recorded(organization, full=True, sync=sync)


def routing_contacts_sync(*, organization: Organization, contact_ids: Sequence[int]) -> SyncResult:
    """Bring the rules of these contacts' phones in step: each contact read through the API
    (a deleted one answers nothing and loses its rules), each phone searched again. Phones the
    contacts had before (our rows) are looked at too. Raises as ``routing_sync_full``."""
    if not routing_enabled(organization=organization):
        return SyncResult()

    def sync() -> SyncResult:
        amo, beeline = _clients(organization)
        managers = _managers(organization)
        phones: dict[str, Phone] = {}
        for contact_id in contact_ids:
            contact = amo.contact_get(contact_id)
            for raw in contact.phones if contact else []:
                if (phone := phone_parse(raw)) is not None:
                    phones[phone.national] = phone
        with organization_scope(organization):
            for national in RoutingRule.objects.filter(
                organization=organization, contact_id__in=list(contact_ids)
            ).values_list("phone_national", flat=True):
                phones.setdefault(national, phone_parse(national) or Phone(national, national))
        found: dict[int, AmoContact] = {}
        for national in phones:
            for contact in amo.contacts_find_by_phone(national):
                found[contact.id] = contact
        targets = {n: t for n, t in _targets(found.values(), managers).items() if n in phones}
        return _rules_reconcile(
            organization=organization, client=beeline, targets=targets, phones=set(phones)
        )

    return _sync_recorded(organization, full=False, sync=sync)


def routing_remove_all(*, organization: Organization) -> SyncResult:
    """The option was switched off: delete the rules Beetel made (and only those) and switch
    ICR off again on the numbers Beetel switched it on for."""
    with organization_scope(organization):
        anything = (
            RoutingRule.objects.filter(organization=organization).exists()
            or RoutingNumber.objects.filter(organization=organization).exists()
        )
    if not anything:
        return SyncResult()

    def sync() -> SyncResult:
        beeline = beeline_client_for(organization)[1]
        result = _rules_reconcile(
            organization=organization, client=beeline, targets={}, phones=None
        )
        _numbers_release(
            organization=organization,
            client=beeline,
            keep=set(),
            enabled={p.national for n in beeline.icr_numbers_list() if (p := phone_parse(n.phone))},
        )
        return result

    return _sync_recorded(organization, full=False, sync=sync)


def routing_due_dispatch(*, now: datetime | None = None) -> list[int]:
    """The beat: a full sync for every organization with routing on, or with rules of ours left
    to remove; spread over time so thousands of accounts do not hit the APIs at once."""
    with scopes_disabled():
        org_ids = sorted(
            set(
                CallSettings.objects.filter(routing_enabled=True)
                .exclude(organization__status=Organization.Status.DISCONNECTED)
                .values_list("organization_id", flat=True)
            )
            | set(RoutingRule.objects.values_list("organization_id", flat=True).distinct())
            | set(RoutingNumber.objects.values_list("organization_id", flat=True).distinct())
        )
    spacing = float(settings.ROUTING_DISPATCH_SPACING_SECONDS)
    for index, org_id in enumerate(org_ids):
        countdown = task_fanout_countdown(index=index, total=len(org_ids), spacing=spacing)
        task_enqueue("integration.tasks.routing_sync_full", org_id, countdown=countdown)
    return org_ids


def _error_text(exc: Exception) -> str:
    return str(getattr(exc, "message", "") or exc)[:500] or type(exc).__name__


# --- what Диагностика shows -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutingHealth:
    enabled: bool
    numbers: list[str]  # the chosen numbers (E.164)
    synced: int
    pending: int
    refused: int
    refused_rules: list[RoutingRule]  # the first ones, with Beeline's reason
    numbers_refused: list[RoutingNumber]
    full_sync_at: datetime | None
    last_error: str
    webhook_subscribed_at: datetime | None
    webhook_error: str
    webhook_last_received_at: datetime | None
    stale: bool  # no full sync for longer than two reconcile periods


def routing_health(*, organization: Organization, now: datetime | None = None) -> RoutingHealth:
    from crm.selectors import amo_webhook_for

    now = now or timezone.now()
    with organization_scope(organization):
        settings_row = CallSettings.objects.filter(organization=organization).first()
        enabled = bool(settings_row and settings_row.routing_enabled)
        numbers = [
            phone.e164 if (phone := phone_parse(n.phone)) else n.phone
            for n in (settings_row.routing_numbers.all() if settings_row else [])
        ]
        rules = RoutingRule.objects.filter(organization=organization)
        synced = rules.filter(state=State.SYNCED).count()
        pending = rules.filter(Q(state=State.PENDING) | Q(state=State.REMOVING)).count()
        refused_qs = rules.filter(state=State.REFUSED).order_by("-updated_at")
        refused = refused_qs.count()
        refused_rules = list(refused_qs[:10])
        numbers_refused = list(
            RoutingNumber.objects.filter(organization=organization, state=State.REFUSED)
        )
        status = RoutingStatus.objects.filter(organization=organization).first()
    webhook = amo_webhook_for(organization=organization)
    full_sync_at = status.full_sync_at if status else None
    period = timedelta(minutes=int(settings.ROUTING_RECONCILE_MINUTES))
    return RoutingHealth(
        enabled=enabled,
        numbers=numbers,
        synced=synced,
        pending=pending,
        refused=refused,
        refused_rules=refused_rules,
        numbers_refused=numbers_refused,
        full_sync_at=full_sync_at,
        last_error=status.last_error if status else "",
        webhook_subscribed_at=webhook.subscribed_at if webhook else None,
        webhook_error=webhook.last_error if webhook else "",
        webhook_last_received_at=webhook.last_received_at if webhook else None,
        stale=enabled and (full_sync_at is None or now - full_sync_at > 2 * period),
    )
