"""The one retry schedule: exponential, capped, with jitter so that retries of many workers
(or many deliveries) failing together do not come back together."""

from __future__ import annotations

import random

JITTER = 0.2  # each delay is spread ±20 % around its exponential value


def backoff_seconds(attempt: int, *, base: float, cap: float, floor: float = 0.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry).

    ``base`` doubles with every attempt up to ``cap``; the result is spread by ±JITTER and
    never shorter than ``floor`` (a server's ``Retry-After``, honoured as given).
    """
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return max(floor, delay * random.uniform(1 - JITTER, 1 + JITTER))  # noqa: S311 (jitter)
