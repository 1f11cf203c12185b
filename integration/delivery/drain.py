"""Draining an organization's queue: one drain per organization at a time, bounded in time.

Single-flight across processes: a session lock per organization (``core.locks``: a PostgreSQL
session advisory lock, on the demo's SQLite a ``flock`` file; a killed worker's lock goes with
it). A drain that finds the lock taken marks the organization dirty in Redis and leaves; the
holder drains again before it stops, so no hand-off waits for the next sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.locks import advisory_lock
from core.redis import redis_client
from integration.callbacks import callback_completions_run
from integration.delivery.batch import deliver_batch
from integration.delivery.queue import deliveries_claim


@dataclass
class DrainResult:
    processed: int = 0
    rounds: int = 0
    retry_in: timedelta | None = None  # earliest transient retry scheduled, if any
    busy: bool = False  # another process holds the organization's drain
    more: bool = False  # stopped at its time budget with work left (the caller re-queues)


def _dirty_key(organization_id: int) -> str:
    return f"beetel:pipeline:dirty:{organization_id}"


def deliveries_drain(
    *, organization_id: int, now: datetime | None = None, max_seconds: float = 240.0
) -> DrainResult:
    """Deliver every due delivery of one organization, batch after batch, until none is left
    or ``max_seconds`` passed (then ``more`` is set: the task queues itself again, so a busy
    account never holds a worker past the task time limit).

    When another process is draining this organization, mark it dirty and return ``busy``.
    """
    result = DrainResult()
    started = time.monotonic()
    dirty = _dirty_key(organization_id)
    redis_client().set(dirty, 1, ex=3600)
    while True:
        with advisory_lock(f"pipeline:{organization_id}", wait=False) as acquired:
            if not acquired:
                result.busy = True
                return result
            while True:
                if time.monotonic() - started > max_seconds:
                    result.more = True
                    return result
                redis_client().delete(dirty)
                ids = deliveries_claim(organization_id=organization_id, now=now)
                if not ids:
                    break
                result.rounds += 1
                result.processed += len(ids)
                retry = deliver_batch(organization_id=organization_id, delivery_ids=ids)
                if retry is not None and (result.retry_in is None or retry < result.retry_in):
                    result.retry_in = retry
            # Last, once the queue is empty: complete the tasks of returned missed calls.
            retry = callback_completions_run(organization_id=organization_id)
            if retry is not None and (result.retry_in is None or retry < result.retry_in):
                result.retry_in = retry
        # Released first, then checked: a drain that found the lock taken set the flag before
        # trying, so either we see it here or it got the lock after our release.
        if not redis_client().get(dirty):
            return result
