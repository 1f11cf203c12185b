"""The Celery contract of the Foundation: three queues, JSON only, time limits, and a beat
schedule in code whose every entry names a task that really exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks

from config.celery_app import app
from config.settings.checks import celery_timing_check

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_APPS = ("core", "pbx", "crm", "integration", "cabinet")
# A task written by name (core.task_queue, CELERY_TASK_ROUTES, the beat schedule).
TASK_NAME = re.compile(r"[\"']((?:" + "|".join(PRODUCT_APPS) + r")\.tasks\.\w+)[\"']")


def test_queues_serialization_and_time_limits():
    app.loader.import_default_modules()  # autodiscover every app's tasks

    assert {queue.name for queue in app.conf.task_queues} == {"events", "crm", "default"}
    assert app.conf.task_default_queue == "default"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.broker_url == settings.REDIS_URL


@pytest.mark.parametrize("entry", list(settings.CELERY_BEAT_SCHEDULE))
def test_beat_entry_names_a_registered_task_on_a_known_queue(entry):
    app.loader.import_default_modules()
    task = settings.CELERY_BEAT_SCHEDULE[entry]["task"]

    assert task in app.tasks, f"beat entry {entry!r} sends {task!r}, which no app defines"
    assert app.amqp.router.route({}, task)["queue"].name in {"events", "crm", "default"}


def test_every_task_named_in_the_code_is_registered():
    app.loader.import_default_modules()
    named = {
        name
        for package in (*PRODUCT_APPS, "config")
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.parts
        for name in TASK_NAME.findall(path.read_text())
    }

    assert "integration.tasks.pipeline_drain" in named  # the scan sees the code
    assert sorted(named - set(app.tasks)) == []


def test_ringing_pop_up_does_not_queue_behind_amocrm_batches():
    route = app.amqp.router.route({}, "integration.tasks.pipeline_ring_notify")
    assert route["queue"].name == "events"
    assert app.amqp.router.route({}, "integration.tasks.pipeline_drain")["queue"].name == "crm"


def test_the_events_queue_takes_short_tasks_only():
    """worker-events serves pop-ups and event folding: nothing that may run for minutes
    (statistics reconciliation, syncs, renewals, drains) is routed there."""
    app.loader.import_default_modules()
    on_events = sorted(
        name
        for name in app.tasks
        if not name.startswith("celery.")
        and app.amqp.router.route({}, name)["queue"].name == "events"
    )
    assert "pbx.tasks.pbx_events_process" in on_events
    assert "integration.tasks.pipeline_ring_notify" in on_events
    for name in (
        "pbx.tasks.statistics_reconcile_chunk",
        "pbx.tasks.statistics_reconcile_all",
        "pbx.tasks.pbx_sync_task",
        "pbx.tasks.subscription_renew_task",
    ):
        assert name not in on_events
    default_limit = app.conf.task_time_limit
    assert [n for n in on_events if (app.tasks[n].time_limit or default_limit) > 90] == []


# --- lost tasks come back within minutes; nothing waits past the visibility timeout ----------


def test_a_task_lost_with_its_worker_is_redelivered_within_minutes_and_the_check_passes():
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert 10 * 60 <= visibility <= 30 * 60  # (was 26 hours)
    assert celery_timing_check() == []
    assert "celery.E001" not in {e.id for e in run_checks(tags=["celery"])}


def test_the_check_refuses_a_visibility_timeout_below_countdown_plus_time_limit(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": 20 * 60,
    }
    errors = run_checks(tags=["celery"])
    assert [e.id for e in errors] == ["celery.E001"]
    # the longest hard time limit is named: «Звонок ответственному»'s 960 s
    assert "time_limit: 960 s" in errors[0].msg and "integration.tasks.routing_" in errors[0].msg


def test_the_check_refuses_a_countdown_above_the_cap(settings):
    settings.PBX_RECONCILE_PERIOD_SECONDS = 3600
    errors = celery_timing_check()
    assert "E001" in errors[0].id and "PBX_RECONCILE_PERIOD_SECONDS" in errors[0].msg


def test_the_broker_and_the_publisher_give_up_instead_of_hanging():
    options = app.conf.broker_transport_options
    assert 0 < options["socket_connect_timeout"] <= 5 and 0 < options["socket_timeout"] <= 5
    policy = app.conf.task_publish_retry_policy
    assert policy["max_retries"] <= 3 and policy["interval_max"] <= 1
