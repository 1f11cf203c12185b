"""What the Dashboard draws: the counters for today / 7 / 30 days and the per-day chart.

The chart is an inline SVG computed here (no chart library, no external service): one stacked
bar per day, answered calls at the bottom, missed ones on top. ``stacked_chart`` draws the
«Пропущенные» tab's chart too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
class Segment:
    css: str  # the class that colours it
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    segments: list[Segment]  # bottom first
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


def stacked_chart(
    *,
    dates: list[date],
    stacks: Mapping[date, Sequence[int]],
    classes: Sequence[str],
    title: Callable[[date, Sequence[int]], str],
    description: str,
) -> Chart:
    """One stacked bar per date (the «Dashboard» and «Пропущенные» charts, drawn by
    cabinet/_bar_chart.html): ``stacks[day]`` are the counts of each segment, bottom first,
    coloured by ``classes``; a day without an entry is an empty bar."""
    empty = tuple(0 for _ in classes)
    peak = max((sum(stacks.get(d, empty)) for d in dates), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars = []
    for index, day in enumerate(dates):
        counts = stacks.get(day, empty)
        top = float(CHART_HEIGHT)
        segments = []
        for css, count in zip(classes, counts, strict=True):
            height = count * scale
            top -= height
            segments.append(Segment(css=css, y=round(top, 2), height=round(height, 2)))
        bars.append(
            Bar(
                x=index * CHART_BAR,
                segments=segments,
                title=title(day, counts),
                label=str(day.day) if index % 5 == 0 or index == len(dates) - 1 else "",
            )
        )
    return Chart(
        bars=bars,
        width=len(dates) * CHART_BAR,
        height=CHART_HEIGHT + CHART_LABELS,
        bar_width=CHART_BAR - 4,
        baseline=CHART_HEIGHT,
        peak=peak,
        description=description,
    )


def chart_days(*, today: date, span: int = 30) -> list[date]:
    """The ``span`` days ending ``today``, oldest first."""
    return [today - timedelta(days=offset) for offset in range(span - 1, -1, -1)]


def _period_start(days: int, today: date) -> datetime:
    """Local midnight ``days - 1`` days ago: «today» starts at this morning's midnight."""
    first = today - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def _period_label(days: int) -> str:
    if days == 1:
        return _("Сегодня")
    return ngettext("%(n)s день", "%(n)s дней", days) % {"n": days}


def dashboard_periods(*, organization: Organization, today: date | None = None) -> list[Period]:
    """Counters for each of PERIODS: one query for the longest, the others are its last days."""
    today = today or timezone.localdate()
    longest = call_stats(organization=organization, since=_period_start(max(PERIODS), today))
    return [
        Period(
            days=days,
            label=_period_label(days),
            stats=longest.since(today - timedelta(days=days - 1)),
        )
        for days in PERIODS
    ]


def dashboard_chart(*, days: list[CallDay], today: date, span: int = 30) -> Chart:
    """Stacked bars for the ``span`` days ending ``today``; days without calls are empty."""
    dates = chart_days(today=today, span=span)
    stacks = {entry.day: (entry.answered, entry.missed) for entry in days}
    total = sum(sum(stacks.get(d, (0, 0))) for d in dates)

    def title(day: date, counts: Sequence[int]) -> str:
        return _("%(day)s: отвечено %(answered)s, пропущено %(missed)s") % {
            "day": formats.date_format(day, "SHORT_DATE_FORMAT"),
            "answered": counts[0],
            "missed": counts[1],
        }

    return stacked_chart(
        dates=dates,
        stacks=stacks,
        classes=("chart-answered", "chart-missed"),
        title=title,
        description=_("Звонки по дням за %(span)s дней: всего %(total)s.")
        % {"span": span, "total": total},
    )
