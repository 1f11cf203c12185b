"""gunicorn settings for the ``web`` process (Procfile: ``gunicorn -c config/gunicorn.py``).

Threaded workers (gthread): a recording streamed to a slow player holds one thread, not a whole
process, so Beeline's webhook always finds a free thread; and gthread's worker timeout watches
the worker's main loop, not the length of a request, so a long recording is not cut off at
``timeout``. ``RECORDING_STREAMS_PER_PROCESS`` (settings) keeps a reserve of threads that
recordings never take. The access log is written by Django (``config.logs``: request id,
secrets in the path redacted), so gunicorn's own is off.
"""

from __future__ import annotations

import os
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
# Each thread may keep a PostgreSQL connection open (CONN_MAX_AGE): WEB_CONCURRENCY ×
# WEB_THREADS per web instance must fit the server's max_connections (or a PgBouncer).
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = 30
keepalive = 5
accesslog = None


def post_worker_init(worker: Any) -> None:
    import gc

    from config.celery_app import app

    # Finalize Celery (task registry, imports) now rather than in the middle of the first
    # webhook requests, where it would hold the interpreter for a while.
    app.finalize(auto=True)
    # Everything loaded at start-up (all of Django) is long-lived: keep it out of the cyclic
    # garbage collector's scans, which otherwise walk it again and again under load.
    gc.freeze()
