"""The SLA clock: working minutes in the organization's time zone and week."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from integration.working_time import WorkingHours, WorkingHoursInvalid

MSK = ZoneInfo("Europe/Moscow")
WEEKDAYS_9_TO_18 = [["09:00", "18:00"]] * 5 + [None, None]


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 2026-03-02 (Moscow time)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=MSK)


@pytest.fixture
def hours() -> WorkingHours:
    return WorkingHours.of(time_zone="Europe/Moscow", working_hours=WEEKDAYS_9_TO_18)


@pytest.mark.parametrize(
    ("missed", "due"),
    [
        (msk(2, 10, 0), msk(2, 10, 15)),  # Monday morning: 15 minutes later
        (msk(2, 17, 50), msk(3, 9, 5)),  # 10 minutes left today, 5 tomorrow morning
        (msk(2, 17, 45), msk(3, 9, 0)),  # would end exactly at closing: next opening
        (msk(2, 7, 30), msk(2, 9, 15)),  # before opening: the clock starts at 9:00
        (msk(6, 20, 0), msk(9, 9, 15)),  # Friday evening: Monday 9:15
        (msk(7, 12, 0), msk(9, 9, 15)),  # Saturday: Monday 9:15
    ],
)
def test_deadline_counts_working_minutes_only(hours, missed, due):
    assert hours.deadline(missed, 15) == due


def test_deadline_accepts_any_time_zone_of_the_moment(hours):
    missed_utc = msk(2, 17, 50).astimezone(UTC)
    assert hours.deadline(missed_utc, 15) == msk(3, 9, 5)


def test_a_long_target_spans_several_days(hours):
    # 9 working hours a day: 20 hours from Monday 10:00 = Tuesday full day + 2 h Wednesday.
    assert hours.deadline(msk(2, 10), 20 * 60) == msk(4, 12)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (msk(2, 9, 0), True),
        (msk(2, 17, 59), True),
        (msk(2, 18, 0), False),
        (msk(2, 8, 59), False),
        (msk(7, 12, 0), False),  # Saturday
        (msk(3, 23, 30), False),
    ],
)
def test_contains(hours, moment, inside):
    assert hours.contains(moment) is inside


def test_time_zone_shifts_the_week():
    vladivostok = WorkingHours.of(time_zone="Asia/Vladivostok", working_hours=WEEKDAYS_9_TO_18)
    # Monday 09:30 in Vladivostok is 02:30 in Moscow.
    assert vladivostok.contains(msk(2, 2, 30))
    assert not vladivostok.contains(msk(2, 12, 0))  # 19:00 there


def test_no_working_day_means_the_clock_always_runs():
    always = WorkingHours.of(time_zone="Europe/Moscow", working_hours=[None] * 7)
    assert always.contains(msk(7, 3))
    assert always.deadline(msk(7, 3), 15) == msk(7, 3, 15)


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("Mars/Olympus", WEEKDAYS_9_TO_18),
        ("Europe/Moscow", WEEKDAYS_9_TO_18[:6]),
        ("Europe/Moscow", [["18:00", "09:00"]] * 7),
        ("Europe/Moscow", [["9", "18:00"]] * 7),
    ],
)
def test_malformed_schedules_are_refused(zone, days):
    with pytest.raises(WorkingHoursInvalid):
        WorkingHours.of(time_zone=zone, working_hours=days)
