"""The Celery contract of the Foundation: three queues, JSON only, time limits, and a beat
schedule in code whose every entry names a task that really exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from config.celery_app import app

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
