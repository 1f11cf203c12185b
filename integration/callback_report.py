"""The «Пропущенные» report: how fast missed calls are returned (docs/callbacks.md).

Reads only. Whatever the number of missed calls, the report costs the same handful of
queries: totals, per manager, per number, the per-day series and the listed calls are each one
aggregate or one bounded query; percentiles are computed by PostgreSQL (``percentile_cont``,
linear interpolation between the closest ranks) — on the demo's SQLite, by the same rule here
from one more query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Aggregate, Case, Count, F, FloatField, Q, QuerySet, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import Organization
from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.callbacks import callback_settings_for, working_hours_of
from integration.models import MissedCall

REPORT_PERIODS = (1, 7, 30)  # today, 7 days, 30 days
LISTED_CALLS = 100


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``; NULLs are ignored."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True, slots=True)
class CallbackFigures:
    missed: int
    returned: int
    returned_in_time: int  # by the SLA deadline
    median_seconds: float | None  # time to call back, of the returned ones
    p90_seconds: float | None

    @property
    def not_returned(self) -> int:
        return self.missed - self.returned

    @property
    def returned_percent(self) -> int | None:
        return round(100 * self.returned / self.missed) if self.missed else None


@dataclass(frozen=True, slots=True)
class CallbackGroup:
    label: str
    figures: CallbackFigures


@dataclass(frozen=True, slots=True)
class ReportedCall:
    """One missed call of the list: the ones still waiting first, longest wait first."""

    call_id: int
    phone: str
    missed_at: datetime
    due_at: datetime
    manager_name: str
    abonent_name: str
    number_name: str
    returned_at: datetime | None
    wait_seconds: int  # until returned, or until now for the ones still waiting
    returned_by_name: str
    returned_by_client: bool
    returned_answered: bool
    overdue: bool  # waiting past the deadline, or returned after it
    task_closed_in_amo: bool
    notified: bool


@dataclass(frozen=True, slots=True)
class CallbackDay:
    day: date
    in_time: int
    late: int
    waiting: int


@dataclass(frozen=True, slots=True)
class CallbackReport:
    days: int
    since: datetime
    now: datetime
    target_minutes: int
    totals: CallbackFigures
    managers: list[CallbackGroup]
    numbers: list[CallbackGroup]
    calls: list[ReportedCall]
    series: list[CallbackDay]  # the last 30 days, oldest first, days with missed calls only
    today: date


def _percentiles_in_database() -> bool:
    """PostgreSQL computes percentiles itself; the zero-setup demo's SQLite cannot."""
    return connection.vendor == "postgresql"


def _figures_aggregates() -> dict[str, Any]:
    returned = Q(returned_at__isnull=False)
    aggregates: dict[str, Any] = {
        "missed": Count("id"),
        "returned": Count("id", filter=returned),
        "returned_in_time": Count("id", filter=returned & Q(returned_at__lte=F("due_at"))),
    }
    if _percentiles_in_database():
        aggregates["median_seconds"] = PercentileCont("wait_seconds", fraction=0.5)
        aggregates["p90_seconds"] = PercentileCont("wait_seconds", fraction=0.9)
    return aggregates


def percentile(values: list[int], fraction: float) -> float | None:
    """``percentile_cont``'s definition: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _percentiles_in_python(
    period: QuerySet[MissedCall],
    totals: dict[str, Any],
    by_manager: list[dict[str, Any]],
    by_number: list[dict[str, Any]],
) -> None:
    """Where the database has no ``percentile_cont``: one more query, the waits, and the same
    interpolation here."""
    waits: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for manager, number, wait in period.filter(wait_seconds__isnull=False).values_list(
        "manager_amo_user_id", "number_id", "wait_seconds"
    ):
        for key in (("total", None), ("manager", manager), ("number", number)):
            waits[key].append(int(wait or 0))
    groups = [(totals, ("total", None))]
    groups += [(row, ("manager", row["manager_amo_user_id"])) for row in by_manager]
    groups += [(row, ("number", row["number_id"])) for row in by_number]
    for row, key in groups:
        row["median_seconds"] = percentile(waits[key], 0.5)
        row["p90_seconds"] = percentile(waits[key], 0.9)


def _figures(row: Mapping[str, Any]) -> CallbackFigures:
    return CallbackFigures(
        missed=int(row["missed"] or 0),
        returned=int(row["returned"] or 0),
        returned_in_time=int(row["returned_in_time"] or 0),
        median_seconds=row["median_seconds"],
        p90_seconds=row["p90_seconds"],
    )


def period_start(*, days: int, today: date, zone: ZoneInfo) -> datetime:
    """Local midnight ``days - 1`` days before ``today`` in the organization's time zone."""
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=zone)


def callback_report(
    *, organization: Organization, days: int = 7, now: datetime | None = None
) -> CallbackReport:
    """The report for the missed calls of the last ``days`` days (1 = today), in the
    organization's time zone. A constant number of queries, whatever the number of calls."""
    now = now or timezone.now()
    settings = callback_settings_for(organization=organization)
    zone = working_hours_of(settings).zone
    today = now.astimezone(zone).date()
    since = period_start(days=days, today=today, zone=zone)
    with organization_scope(organization):
        period: QuerySet[MissedCall] = MissedCall.objects.filter(
            organization=organization, missed_at__gte=since
        )
        totals_row = period.aggregate(**_figures_aggregates())
        by_manager: list[dict[str, Any]] = [
            dict(row)
            for row in period.values("manager_amo_user_id")
            .annotate(**_figures_aggregates())
            .order_by("manager_amo_user_id")
        ]
        by_number: list[dict[str, Any]] = [
            dict(row)
            for row in period.values("number_id", "number__name", "number__phone")
            .annotate(**_figures_aggregates())
            .order_by("number__name", "number__phone", "number_id")
        ]
        if not _percentiles_in_database():
            _percentiles_in_python(period, totals_row, by_manager, by_number)
        totals = _figures(totals_row)
        waiting_first = Case(When(returned_at__isnull=True, then=0), default=1)
        listed = list(
            period.select_related("pbx_call", "abonent", "number", "returned_by")
            .annotate(waiting_first=waiting_first)
            .order_by(
                "waiting_first",
                Case(When(returned_at__isnull=True, then=F("missed_at"))).asc(),
                "-missed_at",
                "-id",
            )[:LISTED_CALLS]
        )
        month = period_start(days=30, today=today, zone=zone)
        series = [
            CallbackDay(
                day=row["day"],
                in_time=row["in_time"],
                late=row["late"],
                waiting=row["waiting"],
            )
            for row in MissedCall.objects.filter(organization=organization, missed_at__gte=month)
            .annotate(day=TruncDate("missed_at", tzinfo=zone))
            .values("day")
            .annotate(
                in_time=Count("id", filter=Q(returned_at__lte=F("due_at"))),
                late=Count("id", filter=Q(returned_at__gt=F("due_at"))),
                waiting=Count("id", filter=Q(returned_at__isnull=True)),
            )
            .order_by("day")
        ]
        user_ids = {r["manager_amo_user_id"] for r in by_manager} | {
            m.manager_amo_user_id for m in listed
        }
        names = dict(
            AmoUser.objects.filter(amo_id__in=[u for u in user_ids if u]).values_list(
                "amo_id", "name"
            )
        )
    nobody = _("Без менеджера")
    managers = [
        CallbackGroup(
            label=names.get(row["manager_amo_user_id"], "")
            or (str(row["manager_amo_user_id"]) if row["manager_amo_user_id"] else nobody),
            figures=_figures(row),
        )
        for row in by_manager
    ]
    managers.sort(key=lambda g: (g.label == nobody, -g.figures.missed, g.label))
    numbers = [
        CallbackGroup(
            label=(row["number__name"] or row["number__phone"])
            if row["number_id"]
            else _("Напрямую сотруднику"),
            figures=_figures(row),
        )
        for row in by_number
    ]
    return CallbackReport(
        days=days,
        since=since,
        now=now,
        target_minutes=settings.target_minutes,
        totals=totals,
        managers=managers,
        numbers=numbers,
        calls=[_reported(m, names, now) for m in listed],
        series=series,
        today=today,
    )


def _reported(missed: MissedCall, names: dict[int, str], now: datetime) -> ReportedCall:
    returned = missed.returned_at is not None
    wait = (
        int(missed.wait_seconds or 0)
        if returned
        else max(0, int((now - missed.missed_at).total_seconds()))
    )
    deadline_passed = (missed.returned_at or now) > missed.due_at
    return ReportedCall(
        call_id=missed.pbx_call_id,
        phone=missed.pbx_call.external_phone,
        missed_at=missed.missed_at,
        due_at=missed.due_at,
        manager_name=names.get(missed.manager_amo_user_id or 0, ""),
        abonent_name=missed.abonent.full_name or missed.abonent.phone if missed.abonent else "",
        number_name=missed.number.display_name if missed.number else "",
        returned_at=missed.returned_at,
        wait_seconds=wait,
        returned_by_name=(
            missed.returned_by.full_name or missed.returned_by.phone if missed.returned_by else ""
        ),
        returned_by_client=missed.returned_by_client,
        returned_answered=missed.returned_answered,
        overdue=deadline_passed,
        task_closed_in_amo=missed.task_state == MissedCall.TaskState.CLOSED_IN_AMO,
        notified=missed.sla_notified_at is not None,
    )
