"""Hands stored events to the ``events`` queue in batches instead of one message per event.

Publishing a Celery message costs more CPU than storing the event, so the webhook only appends
the new row's id here (after commit) and a background thread of the web process publishes one
``pbx_events_process`` message per ``PBX_EVENT_BATCH_SECONDS`` with every id gathered
meanwhile. An id that never makes it to the broker (the process died, Redis was down) is not
lost: the row is in PostgreSQL with no ``processed_at``, and the beat's sweeper
(``pbx.services.events_unprocessed_requeue``) queues it again. ``PBX_EVENT_BATCH_SECONDS = 0``
publishes at once, in the caller's thread (tests, eager Celery).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from django.conf import settings
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # ids per message; a bigger backlog goes out as several messages


def _publish_with_celery(event_pks: list[int]) -> None:
    from pbx import tasks

    tasks.pbx_events_process.delay(event_pks)


def _publish_safely(publish: Callable[[list[int]], None], event_pks: list[int]) -> None:
    try:
        publish(event_pks)
    except Exception:  # the broker is down: the sweeper re-queues these rows
        logger.warning(
            "stored events not queued; the sweeper will queue them",
            extra={"events": len(event_pks)},
            exc_info=True,
        )


class EventBatcher:
    """Collects ids from any thread; one daemon thread publishes them every ``interval``."""

    def __init__(self, publish: Callable[[list[int]], None], *, interval: float) -> None:
        self._publish = publish
        self._interval = interval
        self._pending: list[int] = []
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, event_pk: int) -> None:
        with self._wakeup:
            self._ensure_thread()
            self._pending.append(event_pk)
            if len(self._pending) == 1:
                self._wakeup.notify()

    def flush(self) -> None:
        """Publish what is pending now (also at interpreter exit)."""
        with self._wakeup:
            batch, self._pending = self._pending, []
        for start in range(0, len(batch), MAX_BATCH):
            _publish_safely(self._publish, batch[start : start + MAX_BATCH])

    def _ensure_thread(self) -> None:
        # A forked child (gunicorn worker) inherits the object but not the thread.
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="pbx-event-batcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._pending:
                    self._wakeup.wait()
            # Let the batch fill for one interval, then send it as one message.
            threading.Event().wait(self._interval)
            self.flush()


_batcher: EventBatcher | None = None
_batcher_lock = threading.Lock()


def _shared_batcher() -> EventBatcher:
    global _batcher
    with _batcher_lock:
        if _batcher is None:
            _batcher = EventBatcher(_publish_with_celery, interval=settings.PBX_EVENT_BATCH_SECONDS)
            atexit.register(_batcher.flush)
        return _batcher


def event_stored(event_pk: int) -> None:
    """Queue the processing of a committed event (soon, batched with its neighbours)."""
    if settings.PBX_EVENT_BATCH_SECONDS <= 0:
        try:
            _publish_with_celery([event_pk])
        except (KombuOperationalError, RedisError, OSError):
            # Only the broker's failures: with eager Celery (tests) a processing error raises.
            logger.warning("stored event not queued; the sweeper will queue it", exc_info=True)
        return
    _shared_batcher().add(event_pk)
