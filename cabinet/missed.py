"""What the «Пропущенные» tab draws besides the report's figures: its per-day chart.

An inline SVG computed here, like the Dashboard's (cabinet/dashboard.py): one stacked bar per
day of the last 30, missed calls returned within the SLA at the bottom, returned late in the
middle, not returned on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import formats
from django.utils.translation import gettext as _

from cabinet.dashboard import CHART_BAR, CHART_HEIGHT, CHART_LABELS
from integration.callback_report import CallbackDay


@dataclass(frozen=True, slots=True)
class Segment:
    css: str
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class MissedBar:
    x: int
    segments: list[Segment]
    title: str
    label: str


@dataclass(frozen=True, slots=True)
class MissedChart:
    bars: list[MissedBar]
    width: int
    height: int
    bar_width: int
    baseline: int
    peak: int
    description: str


def missed_chart(*, series: list[CallbackDay], today: date, span: int = 30) -> MissedChart:
    by_day = {entry.day: entry for entry in series}
    dates = [today - timedelta(days=offset) for offset in range(span - 1, -1, -1)]
    totals = {d: by_day[d].in_time + by_day[d].late + by_day[d].waiting for d in by_day}
    peak = max((totals.get(d, 0) for d in dates), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars = []
    for index, day in enumerate(dates):
        entry = by_day.get(day) or CallbackDay(day=day, in_time=0, late=0, waiting=0)
        top = float(CHART_HEIGHT)
        segments = []
        for css, count in (
            ("chart-in-time", entry.in_time),
            ("chart-late", entry.late),
            ("chart-waiting", entry.waiting),
        ):
            height = count * scale
            top -= height
            segments.append(Segment(css=css, y=round(top, 2), height=round(height, 2)))
        title = _(
            "%(day)s: перезвонили в срок %(in_time)s, позже %(late)s, не перезвонили %(waiting)s"
        ) % {
            "day": formats.date_format(day, "SHORT_DATE_FORMAT"),
            "in_time": entry.in_time,
            "late": entry.late,
            "waiting": entry.waiting,
        }
        bars.append(
            MissedBar(
                x=index * CHART_BAR,
                segments=segments,
                title=title,
                label=str(day.day) if index % 5 == 0 or index == span - 1 else "",
            )
        )
    total = sum(totals.get(d, 0) for d in dates)
    return MissedChart(
        bars=bars,
        width=span * CHART_BAR,
        height=CHART_HEIGHT + CHART_LABELS,
        bar_width=CHART_BAR - 4,
        baseline=CHART_HEIGHT,
        peak=peak,
        description=_("Пропущенные звонки по дням за %(span)s дней: всего %(total)s.")
        % {"span": span, "total": total},
    )
