"""Reads of the join: call settings, «Менеджеры» rows, the call journal and statistics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.models import Organization
from core.phones import phone_national
from core.tenancy import organization_scope
from crm.models import AmoUser
from crm.selectors import amo_users_for
from integration.models import CallDelivery, CallSettings, ManagerMapping, MissedCall
from pbx.models import Abonent, PbxCall
from pbx.selectors import abonents_for, call_recording_url


def call_settings_for(*, organization: Organization) -> CallSettings:
    with organization_scope(organization):
        settings, _ = CallSettings.objects.get_or_create(organization=organization)
    return settings


# --- «Менеджеры»: Beeline abonents ↔ amoCRM users ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagerRow:
    """One line of «Менеджеры»: an abonent, its saved mapping and the users involved."""

    abonent: Abonent
    mapping: ManagerMapping | None
    amo_user: AmoUser | None  # the mapped user, if still among amoCRM's users
    suggestion: AmoUser | None  # the user whose profile phone is this abonent's number

    @property
    def enabled(self) -> bool:
        return self.mapping.enabled if self.mapping else True

    @property
    def amo_user_id(self) -> int | None:
        """The saved choice; for a number never saved, the phone-based suggestion."""
        if self.mapping is not None:
            return self.mapping.amo_user_id
        return self.suggestion.amo_id if self.suggestion else None


def manager_suggestions(
    *, abonents: Iterable[Abonent], amo_users: Iterable[AmoUser]
) -> dict[int, AmoUser]:
    """Abonent pk → the amoCRM user whose profile phone equals the abonent's number.

    A phone shared by several amoCRM users suggests nobody: guessing would map the wrong person.
    """
    by_phone: dict[str, list[AmoUser]] = defaultdict(list)
    for user in amo_users:
        if user.phone_national:
            by_phone[user.phone_national].append(user)
    suggestions = {}
    for abonent in abonents:
        national = phone_national(abonent.phone)
        candidates = by_phone.get(national or "", [])
        if len(candidates) == 1:
            suggestions[abonent.pk] = candidates[0]
    return suggestions


def mappings_for_abonents(
    *, organization: Organization, abonent_ids: Iterable[int]
) -> dict[int, ManagerMapping]:
    """Abonent pk → its mapping (one query)."""
    with organization_scope(organization):
        return {
            mapping.abonent_id: mapping
            for mapping in ManagerMapping.objects.filter(
                organization=organization, abonent_id__in=list(abonent_ids)
            )
        }


def mapping_for_amo_user(*, organization: Organization, amo_user_id: int) -> ManagerMapping | None:
    """The enabled mapping of an amoCRM user, with its abonent (click-to-call, the widget)."""
    with organization_scope(organization):
        return (
            ManagerMapping.objects.select_related("abonent")
            .filter(organization=organization, amo_user_id=amo_user_id, enabled=True)
            .first()
        )


def manager_rows_for(
    *, organization: Organization, amo_users: list[AmoUser] | None = None
) -> list[ManagerRow]:
    """Every current abonent with its mapping, mapped user and suggestion: three queries at most,
    whatever the number of abonents (two when the caller passes the amoCRM users it already has).
    """

    abonents = list(abonents_for(organization=organization))
    users = list(amo_users_for(organization=organization)) if amo_users is None else amo_users
    mappings = mappings_for_abonents(
        organization=organization, abonent_ids=[abonent.pk for abonent in abonents]
    )
    users_by_id = {user.amo_id: user for user in users}
    suggestions = manager_suggestions(abonents=abonents, amo_users=users)
    rows = []
    for abonent in abonents:
        mapping = mappings.get(abonent.pk)
        mapped_id = mapping.amo_user_id if mapping else None
        rows.append(
            ManagerRow(
                abonent=abonent,
                mapping=mapping,
                amo_user=users_by_id.get(mapped_id) if mapped_id is not None else None,
                suggestion=suggestions.get(abonent.pk),
            )
        )
    return rows


# --- the call journal (cabinet Dashboard) ------------------------------------------------------

# Values ``call_journal(outcome=…)`` accepts beyond PbxCall.Outcome: what became of the call in
# amoCRM.
JOURNAL_DELIVERY_FILTERS = {
    "delivered": ["done"],
    "skipped": ["skipped_by_setting"],
    "delivery_failed": ["failed"],
    "queued": ["pending", "in_progress", "paused"],
    # Everything not (yet) in amoCRM and not skipped: Диагностика links here.
    "undelivered": ["failed", "paused", "pending", "in_progress"],
}


@dataclass(frozen=True, slots=True)
class CallbackState:
    """What became of a missed inbound call (its journal row shows it)."""

    state: str  # returned / returned_by_client / waiting / overdue / closed_in_amo
    wait_seconds: int  # until returned, or until now
    by: str  # who called back (abonent name), "" if unknown
    late: bool  # returned after the SLA deadline, or still waiting past it

    @property
    def returned(self) -> bool:
        return self.state in ("returned", "returned_by_client")


def callback_state(missed: MissedCall | None, *, now: datetime) -> CallbackState | None:
    if missed is None:
        return None
    if missed.returned_at is not None:
        by = missed.returned_by
        return CallbackState(
            state="returned_by_client" if missed.returned_by_client else "returned",
            wait_seconds=int(missed.wait_seconds or 0),
            by=(by.full_name or by.phone) if by else "",
            late=missed.returned_at > missed.due_at,
        )
    waited = max(0, int((now - missed.missed_at).total_seconds()))
    if missed.task_state == MissedCall.TaskState.CLOSED_IN_AMO:
        state = "closed_in_amo"
    else:
        state = "overdue" if now > missed.due_at else "waiting"
    return CallbackState(state=state, wait_seconds=waited, by="", late=now > missed.due_at)


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One call of «Журнал звонков» with its outcome in amoCRM."""

    call_id: int
    started_at: datetime | None
    direction: str  # in / out
    direction_label: str
    external_phone: str
    outcome: str  # answered / missed / busy / failed
    outcome_label: str
    talk_seconds: int
    abonent_phone: str
    abonent_name: str
    number_name: str  # the multichannel number the call came through
    manager_id: int | None  # the amoCRM user the call was logged for
    manager_name: str
    recording_url: str | None
    recovered: bool
    delivery_status: str  # CallDelivery.Status value, "" while not handed on yet
    delivery_label: str
    delivery_reason: str  # why it was skipped / failed
    flags: list[str]
    contact_url: str  # the amoCRM contact card, "" when none
    can_retry: bool
    callback: CallbackState | None  # missed inbound calls only
    # Where the call landed in amoCRM: "contact", "lead" (the contact's only open lead, or
    # the lead made for a new client), "unsorted" («Неразобранное»), "" (not logged).
    landed: str = ""
    lead_url: str = ""  # the amoCRM lead card the call is on


# The journal counts matching calls only up to this many: counting every call of an
# organization with a long history would cost more than the page itself.
JOURNAL_COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class JournalPage:
    rows: list[JournalRow]
    total: int  # exact, or JOURNAL_COUNT_CAP when there are more (``total_capped``)
    page: int
    per_page: int
    more: bool = False  # calls after this page
    total_capped: bool = False

    @property
    def num_pages(self) -> int:
        """Pages in all; with a capped total, the pages known so far."""
        known = max(1, -(-self.total // self.per_page))
        return max(known, self.page + 1) if self.more else max(known, self.page)

    @property
    def has_next(self) -> bool:
        return self.more

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def call_journal(
    *,
    organization: Organization,
    date_from: date | None = None,
    date_to: date | None = None,
    direction: str | None = None,
    outcome: str | None = None,
    manager: int | None = None,
    number: str | None = None,
    call_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> JournalPage:
    """The organization's calls, newest first, filtered; three queries whatever the page size.

    ``date_from``/``date_to``: inclusive local dates of the call's start. ``direction``: in/out.
    ``outcome``: a PbxCall outcome (answered, missed, busy, failed) or an amoCRM result
    (delivered, skipped, delivery_failed, queued, undelivered). ``manager``: amoCRM user id.
    ``number``: digits contained in the client's number or the line number. ``call_id``: one
    PbxCall (the cabinet redraws a single row after «Повторить»).
    """
    now = timezone.now()
    per_page = max(1, min(per_page, 200))
    page = max(1, page)
    with organization_scope(organization):
        qs = PbxCall.objects.filter(organization=organization, status=PbxCall.Status.FINISHED)
        if call_id is not None:
            qs = qs.filter(pk=call_id)
        # Local days as time ranges, so the (organization, started_at) index serves them.
        if date_from:
            qs = qs.filter(started_at__gte=_local_midnight(date_from))
        if date_to:
            qs = qs.filter(started_at__lt=_local_midnight(date_to + timedelta(days=1)))
        if direction in (PbxCall.Direction.IN, PbxCall.Direction.OUT):
            qs = qs.filter(direction=direction)
        if outcome in JOURNAL_DELIVERY_FILTERS:
            qs = qs.filter(delivery__status__in=JOURNAL_DELIVERY_FILTERS[outcome])
        elif outcome in PbxCall.Outcome.values:
            qs = qs.filter(outcome=outcome)
        if manager:
            qs = qs.filter(
                Q(delivery__responsible_user_id=manager)
                | Q(abonent__manager_mappings__amo_user_id=manager)
            )
        digits = "".join(ch for ch in (number or "") if ch.isdigit())
        if digits:
            national = digits[-10:] if len(digits) > 10 else digits
            if len(national) == 10:  # a whole number: indexed equality, whatever the history
                qs = qs.filter(Q(external_phone_national=national) | Q(line_phone=national))
            else:
                qs = qs.filter(
                    Q(external_phone_national__contains=national) | Q(line_phone__contains=national)
                )
        total = qs.order_by()[: JOURNAL_COUNT_CAP + 1].count()
        calls = list(
            qs.select_related(
                "abonent", "number", "delivery", "missed_call", "missed_call__returned_by"
            ).order_by("-started_at", "-id")[(page - 1) * per_page : page * per_page + 1]
        )
        more = len(calls) > per_page
        calls = calls[:per_page]
        manager_ids = {
            c.delivery.responsible_user_id
            for c in calls
            if _delivery(c) is not None and c.delivery.responsible_user_id
        }
        names = dict(AmoUser.objects.filter(amo_id__in=manager_ids).values_list("amo_id", "name"))
    rows = []
    for call in calls:
        delivery = _delivery(call)
        manager_id = delivery.responsible_user_id if delivery else None
        contact_id = delivery.contact_id if delivery else None
        rows.append(
            JournalRow(
                call_id=call.pk,
                started_at=call.started_at,
                direction=call.direction,
                direction_label=str(call.get_direction_display()),
                external_phone=call.external_phone,
                outcome=call.outcome,
                outcome_label=str(call.get_outcome_display()) if call.outcome else "",
                talk_seconds=call.talk_seconds,
                abonent_phone=call.abonent.phone if call.abonent else "",
                abonent_name=call.abonent.full_name if call.abonent else "",
                number_name=call.number.display_name if call.number else "",
                manager_id=manager_id,
                manager_name=names.get(manager_id, "") if manager_id else "",
                recording_url=call_recording_url(
                    call=call, generation=organization.recording_links_generation
                ),
                recovered=call.recovered,
                delivery_status=delivery.status if delivery else "",
                delivery_label=str(delivery.get_status_display()) if delivery else "",
                delivery_reason=(delivery.skip_reason or delivery.last_error) if delivery else "",
                flags=list(delivery.flags) if delivery else [],
                contact_url=(
                    f"{organization.amo_url}/contacts/detail/{contact_id}"
                    if contact_id and organization.amo_url
                    else ""
                ),
                can_retry=bool(delivery and delivery.status in ("failed", "paused")),
                callback=callback_state(_missed(call), now=now),
                landed=_landed(delivery),
                lead_url=(
                    f"{organization.amo_url}/leads/detail/{delivery.call_entity_id}"
                    if delivery
                    and delivery.call_entity_type == "leads"
                    and delivery.call_entity_id
                    and organization.amo_url
                    else ""
                ),
            )
        )
    return JournalPage(
        rows=rows,
        total=min(total, JOURNAL_COUNT_CAP),
        page=page,
        per_page=per_page,
        more=more,
        total_capped=total > JOURNAL_COUNT_CAP,
    )


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _missed(call: Any) -> MissedCall | None:
    try:
        missed: MissedCall = call.missed_call
    except MissedCall.DoesNotExist:
        return None
    return missed


def _landed(delivery: CallDelivery | None) -> str:
    if delivery is None:
        return ""
    if delivery.unsorted_state == CallDelivery.Step.DONE:
        return "unsorted"
    if delivery.call_entity_type == "leads":
        return "lead"
    if delivery.call_state == CallDelivery.Step.DONE:
        return "contact"
    return ""


def _delivery(call: Any) -> CallDelivery | None:
    try:
        delivery: CallDelivery = call.delivery
    except CallDelivery.DoesNotExist:
        return None
    return delivery


@dataclass(frozen=True, slots=True)
class CallDay:
    day: date
    inbound: int = 0
    outbound: int = 0
    answered: int = 0
    missed: int = 0
    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class CallStats:
    inbound: int
    outbound: int
    answered: int
    missed: int  # every call not answered (missed, busy, failed)
    delivered: int
    skipped: int
    failed: int
    queued: int  # pending, in progress or paused
    days: list[CallDay]  # oldest first, one entry per day that had calls

    @classmethod
    def from_days(cls, days: list[CallDay]) -> CallStats:
        totals = {
            name: sum(getattr(day, name) for day in days)
            for name in ("inbound", "outbound", "answered", "missed", "delivered", "skipped",
                         "failed", "queued")
        }  # fmt: skip
        return cls(**totals, days=days)

    def since(self, day: date) -> CallStats:
        """The same counters for the days from ``day`` on (periods inside this one)."""
        return CallStats.from_days([d for d in self.days if d.day >= day])


def call_stats(*, organization: Organization, since: datetime) -> CallStats:
    """Counters for the Dashboard since ``since``, per local day and in total.

    Two grouped queries over indexed ranges, whatever the length of the history: the calls
    by the day they started ((organization, started_at) index, no join), and their deliveries
    by the day they reached the pipeline ((organization, created_at) index) — a call that
    started just before midnight and was handed on just after counts on either side of it.
    """
    answered = Q(outcome=PbxCall.Outcome.ANSWERED)
    by_day: dict[date, dict[str, int]] = defaultdict(dict)
    with organization_scope(organization):
        calls = (
            PbxCall.objects.filter(
                organization=organization, status=PbxCall.Status.FINISHED, started_at__gte=since
            )
            .annotate(day=TruncDate("started_at"))
            .values("day")
            .annotate(
                inbound=Count("id", filter=Q(direction=PbxCall.Direction.IN)),
                outbound=Count("id", filter=Q(direction=PbxCall.Direction.OUT)),
                answered=Count("id", filter=answered),
                missed=Count("id", filter=~answered),
            )
        )
        deliveries = (
            CallDelivery.objects.filter(organization=organization, created_at__gte=since)
            .annotate(day=TruncDate("created_at"))
            .values("day")
            .annotate(
                delivered=Count("id", filter=Q(status="done")),
                skipped=Count("id", filter=Q(status="skipped_by_setting")),
                failed=Count("id", filter=Q(status="failed")),
                queued=Count("id", filter=Q(status__in=["pending", "in_progress", "paused"])),
            )
        )
        for row in [*calls, *deliveries]:
            counts: dict[str, Any] = dict(row)
            by_day[counts.pop("day")].update(counts)
    days = [CallDay(day=day, **counts) for day, counts in sorted(by_day.items())]
    return CallStats.from_days(days)


@dataclass(frozen=True, slots=True)
class UndeliveredCalls:
    """Calls that should be in amoCRM and are not (Диагностика «Недоставленные звонки»)."""

    failed: int
    paused: int
    retrying: int  # pending after a failed attempt (the journal's «в очереди · <error>»)
    stale: int  # pending or in progress for longer than ``stale_after`` without an error
    queued: int  # pending or in progress right now, no error yet (on their way)
    oldest_at: datetime | None  # when the oldest of them reached the pipeline
    last_error: str = ""  # the latest error among the failed and retrying ones

    @property
    def total(self) -> int:
        """Everything not (yet) in amoCRM: the journal shows each of them as not delivered."""
        return self.failed + self.paused + self.retrying + self.stale + self.queued

    @property
    def problems(self) -> int:
        return self.failed + self.paused + self.retrying + self.stale


def calls_undelivered(
    *,
    organization: Organization,
    now: datetime | None = None,
    stale_after: timedelta = timedelta(minutes=15),
) -> UndeliveredCalls:
    """Every delivery of the organization that is not in amoCRM (nor skipped by a setting),
    read from the same rows as the journal: failed, paused, retrying after an error, pending too
    long, and pending right now (two queries)."""

    now = now or timezone.now()
    open_ = Q(status__in=["pending", "in_progress"])
    retrying = open_ & ~Q(last_error="")
    stale = open_ & Q(last_error="", created_at__lt=now - stale_after)
    queued = open_ & Q(last_error="", created_at__gte=now - stale_after)
    with organization_scope(organization):
        deliveries = CallDelivery.objects.filter(organization=organization)
        totals: dict[str, Any] = deliveries.aggregate(
            failed=Count("id", filter=Q(status="failed")),
            paused=Count("id", filter=Q(status="paused")),
            retrying=Count("id", filter=retrying),
            stale=Count("id", filter=stale),
            queued=Count("id", filter=queued),
            oldest_at=Min("created_at", filter=~Q(status__in=["done", "skipped_by_setting"])),
        )
        last_error = (
            deliveries.filter(Q(status="failed") | retrying)
            .order_by("-updated_at")
            .values_list("last_error", flat=True)
            .first()
        )
    return UndeliveredCalls(
        failed=totals["failed"],
        paused=totals["paused"],
        retrying=totals["retrying"],
        stale=totals["stale"],
        queued=totals["queued"],
        oldest_at=totals["oldest_at"],
        last_error=last_error or "",
    )
