"""What the «Пропущенные» tab draws besides the report's figures: its per-day chart, stacked like
the Dashboard's (``cabinet.dashboard.stacked_chart``): missed calls returned within the SLA at the
bottom, returned late in the middle, not returned on top, for the last 30 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils import formats
from django.utils.translation import gettext as _

from cabinet.dashboard import Chart, chart_days, stacked_chart
from integration.callback_report import CallbackDay


def missed_chart(*, series: list[CallbackDay], today: date, span: int = 30) -> Chart:
    dates = chart_days(today=today, span=span)
    stacks = {entry.day: (entry.in_time, entry.late, entry.waiting) for entry in series}
    total = sum(sum(stacks.get(d, (0, 0, 0))) for d in dates)

    def title(day: date, counts: Sequence[int]) -> str:
        return _(
            "%(day)s: перезвонили в срок %(in_time)s, позже %(late)s, не перезвонили %(waiting)s"
        ) % {
            "day": formats.date_format(day, "SHORT_DATE_FORMAT"),
            "in_time": counts[0],
            "late": counts[1],
            "waiting": counts[2],
        }

    return stacked_chart(
        dates=dates,
        stacks=stacks,
        classes=("chart-in-time", "chart-late", "chart-waiting"),
        title=title,
        description=_("Пропущенные звонки по дням за %(span)s дней: всего %(total)s.")
        % {"span": span, "total": total},
    )
