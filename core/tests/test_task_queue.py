from __future__ import annotations

import pytest
from celery import shared_task
from celery.exceptions import NotRegistered

from core.task_queue import task_enqueue

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
