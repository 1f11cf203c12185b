"""What the Dashboard draws: the counters for today / 7 / 30 days and the per-day chart.

The chart is an inline SVG computed here (no chart library, no external service): one stacked
bar per day, answered calls at the bottom, missed ones on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.models import Organization
from integration.selectors import CallDay, CallStats, call_stats

PERIODS = (1, 7, 30)  # days: today, 7 days, 30 days

CHART_BAR = 20  # px per day (the SVG scales to the card's width)
CHART_HEIGHT = 140
CHART_LABELS = 18  # room under the bars for the day numbers


@dataclass(frozen=True, slots=True)
class Period:
    days: int
    label: str
    stats: CallStats

    @property
    def total(self) -> int:
        return self.stats.inbound + self.stats.outbound


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    answered_y: float
    answered_height: float
    missed_y: float
    missed_height: float
    title: str
    label: str  # day of month under every 5th bar and the last one, else ""


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    bar_width: int
    baseline: int
    peak: int
    description: str


def _period_start(days: int, today: date) -> datetime:
    """Local midnight ``days - 1`` days ago: «today» starts at this morning's midnight."""
    first = today - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def _period_label(days: int) -> str:
    if days == 1:
        return _("Сегодня")
    return ngettext("%(n)s день", "%(n)s дней", days) % {"n": days}


def dashboard_periods(*, organization: Organization, today: date | None = None) -> list[Period]:
    """Counters for each of PERIODS (two queries each, whatever the number of calls)."""
    today = today or timezone.localdate()
    return [
        Period(
            days=days,
            label=_period_label(days),
            stats=call_stats(organization=organization, since=_period_start(days, today)),
        )
        for days in PERIODS
    ]


def dashboard_chart(*, days: list[CallDay], today: date, span: int = 30) -> Chart:
    """Stacked bars for the ``span`` days ending ``today``; days without calls are empty."""
    by_day = {entry.day: entry for entry in days}
    dates = [today - timedelta(days=offset) for offset in range(span - 1, -1, -1)]
    peak = max((by_day[d].answered + by_day[d].missed for d in dates if d in by_day), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars = []
    for index, day in enumerate(dates):
        entry = by_day.get(day)
        answered = entry.answered if entry else 0
        missed = entry.missed if entry else 0
        answered_height = answered * scale
        missed_height = missed * scale
        answered_y = CHART_HEIGHT - answered_height
        title = _("%(day)s: отвечено %(answered)s, пропущено %(missed)s") % {
            "day": formats.date_format(day, "SHORT_DATE_FORMAT"),
            "answered": answered,
            "missed": missed,
        }
        bars.append(
            Bar(
                x=index * CHART_BAR,
                answered_y=round(answered_y, 2),
                answered_height=round(answered_height, 2),
                missed_y=round(answered_y - missed_height, 2),
                missed_height=round(missed_height, 2),
                title=title,
                label=str(day.day) if index % 5 == 0 or index == span - 1 else "",
            )
        )
    total = sum(by_day[d].answered + by_day[d].missed for d in dates if d in by_day)
    description = _("Звонки по дням за %(span)s дней: всего %(total)s.") % {
        "span": span,
        "total": total,
    }
    return Chart(
        bars=bars,
        width=span * CHART_BAR,
        height=CHART_HEIGHT + CHART_LABELS,
        bar_width=CHART_BAR - 4,
        baseline=CHART_HEIGHT,
        peak=peak,
        description=description,
    )
