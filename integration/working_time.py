"""Working hours of an organization: is the team at work now, and when does a deadline of N
working minutes fall (the call-back SLA, docs/callbacks.md).

Pure functions over aware datetimes; the schedule is one interval per weekday in the
organization's time zone (``CallbackSettings.working_hours``: seven entries, Monday first, each
``["HH:MM", "HH:MM"]`` or ``None`` for a day off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = 7
# A deadline further than this is not searched for (a schedule with at least one working day
# always finds one within a week; SLA targets are capped at a week of working minutes).
_HORIZON_DAYS = 7 * 60


class WorkingHoursInvalid(ValueError):
    """The stored schedule or time zone cannot be used."""


def time_zone_get(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WorkingHoursInvalid(f"unknown time zone {name!r}") from exc


def _clock(text: str) -> time:
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        return time(hours, minutes)
    except (ValueError, AttributeError) as exc:
        raise WorkingHoursInvalid(f"bad time {text!r}") from exc


@dataclass(frozen=True, slots=True)
class WorkingHours:
    zone: ZoneInfo
    days: tuple[tuple[time, time] | None, ...]  # Monday first

    @classmethod
    def of(cls, *, time_zone: str, working_hours: Sequence[Sequence[str] | None]) -> WorkingHours:
        """Parse the stored form; raises WorkingHoursInvalid for anything malformed."""
        if len(working_hours) != DAYS:
            raise WorkingHoursInvalid("seven weekdays expected")
        days: list[tuple[time, time] | None] = []
        for entry in working_hours:
            if entry is None:
                days.append(None)
                continue
            if len(entry) != 2:
                raise WorkingHoursInvalid(f"bad interval {entry!r}")
            start, end = _clock(entry[0]), _clock(entry[1])
            if start >= end:
                raise WorkingHoursInvalid(f"interval ends before it starts: {entry!r}")
            days.append((start, end))
        return cls(zone=time_zone_get(time_zone), days=tuple(days))

    @property
    def always(self) -> bool:
        """No working day at all is read as «no schedule»: the clock always runs."""
        return all(day is None for day in self.days)

    def _interval(self, day: date) -> tuple[datetime, datetime] | None:
        hours = self.days[day.weekday()]
        if hours is None:
            return None
        start = datetime.combine(day, hours[0], tzinfo=self.zone)
        end = datetime.combine(day, hours[1], tzinfo=self.zone)
        return start, end

    def contains(self, moment: datetime) -> bool:
        """Is ``moment`` within working hours (start inclusive, end exclusive)?"""
        if self.always:
            return True
        local = moment.astimezone(self.zone)
        interval = self._interval(local.date())
        return interval is not None and interval[0] <= local < interval[1]

    def deadline(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` working minutes after ``start`` have passed.

        A call missed outside working hours starts its clock at the next opening; a deadline
        always falls within working hours (one that would land exactly at closing time moves
        to the next opening, when someone is there to be told).
        """
        if self.always:
            return start + timedelta(minutes=minutes)
        left = timedelta(minutes=minutes)
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            interval = self._interval(day)
            if interval is not None:
                opens, closes = interval
                begin = max(opens, local)
                if begin < closes:
                    if begin + left < closes:
                        return begin + left
                    left -= closes - begin
            day += timedelta(days=1)
        raise WorkingHoursInvalid("no deadline within the horizon")
