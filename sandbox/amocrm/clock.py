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


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
