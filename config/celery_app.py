"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace;
queues: ``events`` (Beeline ingestion), ``crm`` (amoCRM work), ``default`` (everything else)."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from django.core import checks
from kombu import Queue

from config.entrypoint import settings_module_choose

settings_module_choose()

app = Celery("beetel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("events", "crm", "default")]
app.autodiscover_tasks()


def _celery_timing_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from config.settings.checks import celery_timing_check

    return celery_timing_check(app_configs, **kwargs)


checks.register(_celery_timing_check, "celery")


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


@signals.worker_process_init.connect
def _freeze_startup_objects(**_: Any) -> None:
    """As the web process does (config/gunicorn_conf.py): everything loaded at start-up is
    long-lived, so keep it out of the cyclic garbage collector's full scans. Otherwise a full
    collection walks all of Django again and stalls the task for ~100 ms at a random moment —
    between taking a paced amoCRM slot and sending the request, enough to put 8 requests in
    one second at amoCRM (seen as a 429)."""
    import gc

    gc.freeze()


@signals.worker_process_shutdown.connect
def _metrics_process_dead(pid: int | None = None, **_: Any) -> None:
    """Prometheus multiprocess mode (docs/operations.md "Monitoring"): a pool process that
    ends keeps its counters in the shared directory; only its live-process files go."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


@signals.setup_logging.connect
def _keep_django_logging(**_: Any) -> None:
    """Workers log through Django's LOGGING (one JSON line, secrets redacted): with a receiver
    on this signal Celery installs no handler of its own (root, ``celery.task``). What Celery
    would then skip is done here: stray prints on stdout/stderr go to a logger too, so they pass
    the same redacting handler."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if app.conf.worker_redirect_stdouts:
        app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)
