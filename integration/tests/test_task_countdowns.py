"""Every countdown the tasks use stays below the broker's visibility timeout (or the task
would be handed to a second worker while it still waits): fan-outs and long retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integration import tasks
from integration.delivery.drain import DrainResult
from pbx import tasks as pbx_tasks
from pbx.testing import credentials_make


@pytest.fixture
def scheduled(monkeypatch):
    calls: list[float] = []

    def record(task):
        def apply_async(args=(), kwargs=None, countdown=0, **options):
            calls.append(countdown)

        monkeypatch.setattr(task, "apply_async", apply_async)

    return calls, record


def test_a_drain_retry_due_in_15_minutes_waits_at_most_the_longest_countdown(
    org, settings, monkeypatch, scheduled
):
    calls, record = scheduled
    record(tasks.pipeline_drain)
    monkeypatch.setattr(tasks, "drain_started", lambda **kwargs: None)
    monkeypatch.setattr(
        tasks,
        "deliveries_drain",
        lambda **kwargs: DrainResult(
            retry_in=timedelta(seconds=settings.PIPELINE_RETRY_MAX_SECONDS)
        ),
    )
    tasks.pipeline_drain.run(org.pk)
    assert calls == [settings.CELERY_COUNTDOWN_MAX_SECONDS]  # (the beat's drain_due does the rest)
    assert settings.PIPELINE_RETRY_MAX_SECONDS > settings.CELERY_COUNTDOWN_MAX_SECONDS


def test_the_daily_resync_fan_out_ends_within_the_longest_countdown(
    org, outsider, settings, scheduled
):
    calls, record = scheduled
    record(pbx_tasks.pbx_sync_task)
    credentials_make(org)
    credentials_make(outsider)
    settings.PBX_FANOUT_CHUNK, settings.PBX_FANOUT_SPACING_SECONDS = 1, 3600
    assert pbx_tasks.pbx_sync_all() == 2
    assert sorted(calls) == [0, settings.CELERY_COUNTDOWN_MAX_SECONDS]  # (was 3,600 s)
