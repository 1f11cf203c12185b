"""Prometheus counters and histograms of the code paths (docs/operations.md "Monitoring").

Every call here is an in-process increment (a dict lookup and an add, or a write to this
process's mmap file in multiprocess mode): no database or Redis round trip, so the webhook and
the workers never wait for monitoring. State that lives in PostgreSQL or Redis (unprocessed
events, queue lengths, deliveries by status, subscriptions, paused accounts) is read at scrape
time instead (``config.metrics``).

Labels are bounded: status classes, a handful of named codes and outcomes, never an
organization, a phone number or a URL, so the number of series does not grow with customers.

Multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set before the process starts,
prometheus_client writes these values to per-process files in that directory, and the web
process's ``/metrics`` sums every process of the host (gunicorn workers, Celery workers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import ParamSpec, Protocol, TypeVar

from django.utils import timezone
from prometheus_client import Counter, Histogram

P = ParamSpec("P")


class _Answer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def message(self) -> str: ...


A = TypeVar("A", bound=_Answer)

# --- Beeline's webhook ---------------------------------------------------------------------------

EVENTS_RECEIVED = Counter(
    "beetel_events_received", "Beeline webhook requests that reached the event intake."
)
EVENTS_STORED = Counter("beetel_events_stored", "Beeline events stored (new eventID).")
EVENTS_DUPLICATE = Counter(
    "beetel_events_duplicate", "Beeline events already stored (a resend of a known eventID)."
)
EVENTS_IGNORED = Counter(
    "beetel_events_ignored", "Beeline events answered 200 but not stored (types we do not use)."
)
EVENTS_REJECTED = Counter(
    "beetel_events_rejected",
    "Beeline webhook requests refused, by HTTP status (400, 404, 413, 415, 503).",
    ["code"],
)
_REJECT_CODES = frozenset({"400", "404", "413", "415", "503"})

# --- amoCRM and Beeline APIs ---------------------------------------------------------------------

AMOCRM_RESPONSES = Counter(
    "beetel_amocrm_responses",
    "amoCRM API answers: 401, 402, 403 and 429 by themselves, others by class "
    "(2xx, 3xx, 4xx, 5xx); 'network' for timeouts and connection errors.",
    ["code"],
)
_AMOCRM_NAMED = frozenset({401, 402, 403, 429})

BEELINE_API_ERRORS = Counter(
    "beetel_beeline_api_errors",
    "Beeline API requests that failed: 401, 403, 404 and 429 by themselves, others by class; "
    "'network' for timeouts and connection errors.",
    ["code"],
)
_BEELINE_NAMED = frozenset({401, 403, 404, 429})

# --- the call pipeline ---------------------------------------------------------------------------

DELIVERIES_FINISHED = Counter(
    "beetel_deliveries_finished",
    "Call deliveries that reached a final status (done, skipped_by_setting, failed) or were "
    "paused.",
    ["status"],
)
_DELIVERY_STATUSES = frozenset({"done", "skipped_by_setting", "failed", "paused"})

RING_POPUP_SECONDS = Histogram(
    "beetel_ring_popup_seconds",
    "From receipt of the ringing event to the amoCRM pop-up sent.",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
RELEASED_TO_AMOCRM_SECONDS = Histogram(
    "beetel_released_to_amocrm_seconds",
    "From the end of a call (Beeline's release time) to its call log posted in amoCRM.",
    buckets=(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0),
)


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def intake_observed(intake: Callable[P, A]) -> Callable[P, A]:
    """Count what the webhook's intake answered (the decorator of ``pbx.intake.event_intake``)."""

    @functools.wraps(intake)
    def observed(*args: P.args, **kwargs: P.kwargs) -> A:
        answer = intake(*args, **kwargs)
        intake_observe(status=answer.status, message=answer.message)
        return answer

    return observed


def intake_observe(*, status: int, message: str) -> None:
    EVENTS_RECEIVED.inc()
    if status == 200:
        if message == "ok":
            EVENTS_STORED.inc()
        elif message == "duplicate":
            EVENTS_DUPLICATE.inc()
        else:
            EVENTS_IGNORED.inc()
        return
    code = str(status)
    EVENTS_REJECTED.labels(code=code if code in _REJECT_CODES else _status_class(status)).inc()


def amocrm_response_observe(status: int | None) -> None:
    """One amoCRM answer (``None``: no answer — timeout or connection error)."""
    if status is None:
        code = "network"
    elif status in _AMOCRM_NAMED:
        code = str(status)
    else:
        code = _status_class(status)
    AMOCRM_RESPONSES.labels(code=code).inc()


def beeline_error_observe(status: int | None) -> None:
    """One failed Beeline API request (``None``: no answer)."""
    if status is None:
        code = "network"
    elif status in _BEELINE_NAMED:
        code = str(status)
    else:
        code = _status_class(status)
    BEELINE_API_ERRORS.labels(code=code).inc()


def delivery_finished_observe(status: str) -> None:
    if status in _DELIVERY_STATUSES:
        DELIVERIES_FINISHED.labels(status=status).inc()


def _since(start: datetime | None) -> float | None:
    if start is None:
        return None
    return max(0.0, (timezone.now() - start).total_seconds())


def ring_popup_observe(*, ringing_received_at: datetime | None) -> None:
    seconds = _since(ringing_received_at)
    if seconds is not None:
        RING_POPUP_SECONDS.observe(seconds)


def released_to_amocrm_observe(*, released_at: datetime | None, recovered: bool) -> None:
    """A call log posted. Calls recovered from Beeline's statistics (their events were lost)
    are left out: their delay measures the outage, not the pipeline."""
    seconds = None if recovered else _since(released_at)
    if seconds is not None:
        RELEASED_TO_AMOCRM_SECONDS.observe(seconds)
