"""gunicorn settings of the Procfile's ``web`` process (``-c python:config.gunicorn_conf``).

Threaded workers (gthread): a recording streamed to a slow player holds one thread, not a whole
process, so Beeline's webhook always finds a free thread; and gthread's worker timeout watches
the worker's main loop, not the length of a request, so a long recording is not cut off at
``timeout``. ``RECORDING_STREAMS_PER_PROCESS`` (settings) keeps a reserve of threads that
recordings never take. Each thread may keep a PostgreSQL connection open (CONN_MAX_AGE):
WEB_CONCURRENCY × (WEB_THREADS + 1) per web instance (the webhook's group commit has one of its
own, ``pbx.event_group_commit``) must fit the server's max_connections (or a PgBouncer).

The access log goes through the product's redactor (``config.logs``): webhook secrets, recording
tokens and credentials in paths, query strings, referers and headers never reach it. Events that
Beeline's webhook accepted are not logged one line each (hundreds per second at peak; the stored
row is the record); refused ones are.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from config.logs import SecretRedactingFilter, redact_value

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = 30
keepalive = 5
accesslog = "-"
# %(U)s is the path only (no query string); the logger class below redacts it all the same.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(L)ss'
logger_class = "config.gunicorn_conf.RedactingLogger"


class RedactingLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger with every access-log atom redacted, and a redacting error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(SecretRedactingFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if resp.status_code == 200 and environ.get("PATH_INFO", "").startswith("/beeline/events/"):
            return
        super().access(resp, req, environ, request_time)

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {key: redact_value(key, value) for key, value in atoms.items()}


def post_worker_init(worker: Any) -> None:
    import gc

    from config.celery_app import app

    # Finalize Celery (task registry, imports) now rather than in the middle of the first
    # webhook requests, where it would hold the interpreter for a while.
    app.finalize(auto=True)
    # Import every URLconf and view module and build the resolver now (about 150 ms): left to
    # the first request, that request would wait for it — after a deploy or a worker restart,
    # the first webhook of each worker.
    # (Only for a Django application: the ingest benchmark's bare baseline app shares this
    # configuration.)
    from django.apps import apps
    from django.urls import get_resolver

    if apps.ready:
        get_resolver().reverse_dict  # noqa: B018  (the property populates the resolver)
    # Everything loaded at start-up (all of Django) is long-lived: keep it out of the cyclic
    # garbage collector's scans, which otherwise walk it again and again under load.
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    # Prometheus multiprocess mode (docs/operations.md "Monitoring"): the worker's counters
    # stay in the shared directory; only its live-process files are dropped.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
