"""How code below the tasks modules queues a task: by its registered name.

A ``tasks`` module imports the services it calls, so a service that queues follow-up work must
not import ``tasks`` back (that import cycle is what this module removes). Services name the
task instead; each app's ``AppConfig.ready`` imports its ``tasks`` so every name is registered
in web processes as well as in workers. Code above the tasks (task bodies, signal receivers)
calls task objects directly.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.conf import settings


def task_enqueue(name: str, *args: Any, countdown: float = 0) -> None:
    """Queue the task registered as ``name`` with positional ``args`` (ids only).

    Raises ``celery.exceptions.NotRegistered`` for a name no app defines. Honours
    ``CELERY_TASK_ALWAYS_EAGER`` (tests, the demo without Redis) like ``Task.apply_async``.
    """
    current_app.tasks[name].apply_async(args, countdown=countdown)


def task_countdown_cap(seconds: float) -> float:
    """``seconds``, but no more than ``CELERY_COUNTDOWN_MAX_SECONDS``: a longer wait would outlast
    the broker's visibility timeout and the task would be handed out twice (docs/operations.md
    «Processes»). What waits longer (a retry due later) is picked up by a beat sweep instead."""
    return min(float(seconds), float(settings.CELERY_COUNTDOWN_MAX_SECONDS))


def task_fanout_countdown(*, index: int, total: int, spacing: float, chunk: int = 1) -> float:
    """The countdown of the ``index``-th of ``total`` tasks released ``chunk`` at a time,
    ``spacing`` seconds apart; the spacing shrinks when the whole fan-out would otherwise last
    longer than ``CELERY_COUNTDOWN_MAX_SECONDS``."""
    steps = (total - 1) // chunk
    if steps <= 0:
        return 0.0
    step = min(float(spacing), float(settings.CELERY_COUNTDOWN_MAX_SECONDS) / steps)
    return round((index // chunk) * step, 2)
