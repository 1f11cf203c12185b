from __future__ import annotations

import pytest
from celery import shared_task
from celery.exceptions import NotRegistered

from core.task_queue import task_countdown_cap, task_enqueue, task_fanout_countdown

RECEIVED: list[tuple[int, str]] = []


@shared_task(name="core.tests.record_probe")
def record_probe(number: int, word: str) -> None:
    RECEIVED.append((number, word))


def test_a_task_is_queued_by_its_registered_name():
    RECEIVED.clear()
    task_enqueue("core.tests.record_probe", 7, "seven")  # eager in tests: runs in line
    assert RECEIVED == [(7, "seven")]


def test_an_unknown_name_fails_loudly():
    with pytest.raises(NotRegistered):
        task_enqueue("core.tests.no_such_task", 1)


# --- countdowns stay below the broker's visibility timeout ---------------------------------


def test_a_small_fan_out_keeps_its_spacing(settings):
    settings.CELERY_COUNTDOWN_MAX_SECONDS = 600
    countdowns = [task_fanout_countdown(index=i, total=5, chunk=2, spacing=10) for i in range(5)]
    assert countdowns == [0, 0, 10, 10, 20]
    assert task_fanout_countdown(index=0, total=1, spacing=10) == 0


def test_a_big_fan_out_is_squeezed_into_the_longest_countdown(settings):
    settings.CELERY_COUNTDOWN_MAX_SECONDS = 600
    countdowns = [
        task_fanout_countdown(index=i, total=10_000, chunk=50, spacing=10) for i in range(10_000)
    ]
    assert countdowns == sorted(countdowns)  # still in order, chunk after chunk
    assert countdowns[0] == 0 and 590 < countdowns[-1] <= 600  # (was 1,990 s)
    assert len(set(countdowns)) == 200  # 200 chunks, each released together


def test_a_long_wait_is_capped(settings):
    settings.CELERY_COUNTDOWN_MAX_SECONDS = 600
    assert task_countdown_cap(900) == 600 and task_countdown_cap(30) == 30
