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


def task_enqueue(name: str, *args: Any, countdown: float = 0) -> None:
    """Queue the task registered as ``name`` with positional ``args`` (ids only).

    Raises ``celery.exceptions.NotRegistered`` for a name no app defines. Honours
    ``CELERY_TASK_ALWAYS_EAGER`` (tests, the demo without Redis) like ``Task.apply_async``.
    """
    current_app.tasks[name].apply_async(args, countdown=countdown)
