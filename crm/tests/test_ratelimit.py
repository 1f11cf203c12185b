"""The shared amoCRM limiter: server-timed pacing, and a 429 felt by every process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from core.redis import redis_client
from crm import client as amo_client_module
from crm import ratelimit
from crm.ratelimit import AccountRateLimiter


def redis_time() -> float:
    seconds, micros = redis_client().time()
    return seconds + micros / 1_000_000


def reserve_wait(limiter: AccountRateLimiter) -> float:
    """The wait ``acquire`` would sleep (µs → s), reserving the slot without sleeping."""
    wait_us = limiter._reserve(
        keys=[limiter.key, limiter.slow_key],
        args=[limiter.interval_us, 30_000_000, limiter._recovery_per_us()],
    )
    return int(wait_us) / 1_000_000


def test_slots_are_paced_at_the_configured_rate_across_limiters(settings):
    settings.AMOCRM_RATE_LIMIT_PER_SECOND = 6.5
    first, second = AccountRateLimiter("acme.amocrm.ru"), AccountRateLimiter("acme.amocrm.ru")
    other = AccountRateLimiter("other.amocrm.ru")
    waits = [reserve_wait(first if n % 2 else second) for n in range(8)]
    assert waits[0] == pytest.approx(0, abs=0.01)
    # Eight requests of one account, from two processes, span 7 intervals of 1/6.5 s.
    assert waits[-1] == pytest.approx(7 / 6.5, abs=0.03)
    assert reserve_wait(other) == pytest.approx(0, abs=0.01)  # accounts are independent


def test_a_429_pauses_every_process_then_slows_the_pace_and_recovers(settings, monkeypatch):
    settings.AMOCRM_RATE_LIMIT_PER_SECOND = 5
    limiter, elsewhere = AccountRateLimiter("acme.amocrm.ru"), AccountRateLimiter("acme.amocrm.ru")
    assert limiter.penalize(pause=2.0) == pytest.approx(ratelimit.PENALTY_FACTOR)
    # Another process's next slot comes after the pause …
    assert reserve_wait(elsewhere) == pytest.approx(2.0, abs=0.05)
    # … and the one after it at the slower pace (0.2 s / 0.7).
    assert reserve_wait(elsewhere) == pytest.approx(2.0 + 0.2 / 0.7, abs=0.05)
    # A second 429 slows further, never below the slowest factor.
    for _ in range(5):
        factor = limiter.penalize(pause=0)
    assert factor == pytest.approx(ratelimit.SLOWEST_FACTOR)
    # Recovery is linear in time on the Redis clock, back to the full pace.
    monkeypatch.setattr(ratelimit, "RECOVERY_SECONDS", 0.05)
    recovering = AccountRateLimiter("fresh.amocrm.ru")
    recovering.penalize(pause=0)
    time.sleep(0.1)
    start = reserve_wait(recovering)
    assert reserve_wait(recovering) - start == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({}, 1.0),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "600"}, amo_client_module.MAX_RETRY_AFTER),
        ({"Retry-After": "soon"}, 1.0),
        ({"Retry-After": "in 5 s, as a date"}, pytest.approx(5, abs=1.5)),
    ],
)  # fmt: skip
def test_retry_after_in_seconds_or_as_a_date(header, expected):
    if header.get("Retry-After") == "in 5 s, as a date":
        when = datetime.now(UTC) + timedelta(seconds=5)
        header = {"Retry-After": format_datetime(when, usegmt=True)}
    response = requests.Response()
    response.status_code = 429
    response.headers.update(header)
    assert amo_client_module._retry_after(response) == expected


def test_the_client_honours_retry_after_and_penalizes_the_account(installed, monkeypatch):
    from crm import services
    from sandbox.amocrm.services import faults_set

    faults_set(account=installed.account, fail_next=1, fail_status=429)
    monkeypatch.setattr(amo_client_module, "_retry_after", lambda response: 1.0)
    sleeps: list[float] = []
    client = services.amo_client(organization=installed.organization)
    client._sleep = sleeps.append  # our own sleep is skipped …
    started = time.monotonic()
    assert client.account().id == installed.account.pk
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 1.3  # Retry-After, not our own backoff
    # … yet the retry waited: the account's next slot was pushed past the pause for everyone.
    assert time.monotonic() - started >= 0.9
