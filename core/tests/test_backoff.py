from __future__ import annotations

import pytest

from core.backoff import JITTER, backoff_seconds


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 10), (1, 10), (2, 20), (3, 40), (7, 640), (8, 900), (30, 900)]
)
def test_delay_doubles_from_base_up_to_cap_within_the_jitter(attempt, expected):
    delays = [backoff_seconds(attempt, base=10, cap=900) for _ in range(200)]

    assert all(expected * (1 - JITTER) <= d <= expected * (1 + JITTER) for d in delays)
    # Spread, so retries that failed together do not come back together.
    assert max(delays) - min(delays) > expected * JITTER


def test_floor_is_honoured_as_given():
    assert all(backoff_seconds(1, base=0.5, cap=8, floor=5.0) >= 5.0 for _ in range(100))
    assert backoff_seconds(10, base=0.5, cap=8, floor=30.0) == 30.0
