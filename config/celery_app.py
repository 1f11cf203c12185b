"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace;
queues: ``events`` (Beeline ingestion), ``crm`` (amoCRM work), ``default`` (everything else)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("beetel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("events", "crm", "default")]
app.autodiscover_tasks()


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    from config.logs import request_id_var

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get()


@signals.task_prerun.connect
def _adopt_request_id(task: Any = None, **_: Any) -> None:
    from config.logs import request_id_var

    request_id = getattr(getattr(task, "request", None), "request_id", None)
    request_id_var.set(request_id or getattr(getattr(task, "request", None), "id", None) or "-")
