"""Login throttling: fixed one-minute windows counted in Redis (through the Django cache).

Each client address (``core.client_ip``: REMOTE_ADDR, or X-Forwarded-For behind
``TRUSTED_PROXY_COUNT`` proxies of ours) gets ``CABINET_LOGIN_ATTEMPTS_PER_IP`` attempts a
minute. Attempts refused for that address are not counted any further, so one address cannot
push everybody else towards the global level. The global level does not lock anyone out: above
``CABINET_LOGIN_ATTEMPTS_GLOBAL`` attempts a minute (many addresses guessing together) every
address is held to ``CABINET_LOGIN_ATTEMPTS_PER_IP_UNDER_PRESSURE`` attempts a minute, which
slows a distributed guess down while a customer typing the key once still gets in. Guessing a
100-bit access key stays infeasible either way. When the cache is unreachable we refuse logins
rather than let guesses through unmetered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from core.client_ip import client_address

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_now = time.time  # the clock of the windows (tests pin it so a window edge cannot split a run)

__all__ = ["client_address", "login_attempt_allowed"]


@dataclass(frozen=True, slots=True)
class _Limits:
    per_ip: int
    global_level: int
    per_ip_under_pressure: int


def _limits() -> _Limits:
    return _Limits(
        per_ip=int(getattr(settings, "CABINET_LOGIN_ATTEMPTS_PER_IP", 10)),
        global_level=int(getattr(settings, "CABINET_LOGIN_ATTEMPTS_GLOBAL", 300)),
        per_ip_under_pressure=int(
            getattr(settings, "CABINET_LOGIN_ATTEMPTS_PER_IP_UNDER_PRESSURE", 2)
        ),
    )


def _hit(key: str) -> int:
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    return int(cache.incr(key))


def login_attempt_allowed(request: HttpRequest) -> bool:
    """Count one login attempt; False when it must be refused (the caller answers 429)."""
    limits = _limits()
    window = int(_now()) // WINDOW_SECONDS
    address = client_address(request) or "unknown"
    try:
        ip_count = _hit(f"cabinet:login:ip:{address}:{window}")
        if ip_count > limits.per_ip:
            # Already refused for this address: not counted towards everyone's level.
            logger.warning("login throttled", extra={"per_ip": True, "global": False})
            return False
        global_count = _hit(f"cabinet:login:all:{window}")
    except Exception:
        logger.warning("login throttle: cache unavailable, refusing the attempt", exc_info=True)
        return False
    if global_count > limits.global_level and ip_count > limits.per_ip_under_pressure:
        logger.warning("login throttled", extra={"per_ip": False, "global": True})
        return False
    return True
