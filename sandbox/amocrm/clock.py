"""The emulator's only source of time, so tests can move it (patch ``now``/``sleep`` here).

Everything time-dependent in the emulator (code and token lifetimes, the rate-limit window,
latency and timeout faults) goes through these two functions.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


_REAL_NOW = now


def is_real() -> bool:
    """False while a test has replaced ``now`` (a fake clock that only moves when told)."""
    return now is _REAL_NOW


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
