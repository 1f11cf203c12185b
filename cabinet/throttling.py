"""Login throttling: fixed one-minute windows counted in Redis (through the Django cache).

Every login attempt counts against its client address and against a global cap shared by all
web processes, so guessing 100-bit access keys is infeasible even from many addresses. When the
cache is unreachable we refuse logins rather than let guesses through unmetered.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def _limits() -> tuple[int, int]:
    per_ip = int(getattr(settings, "CABINET_LOGIN_ATTEMPTS_PER_IP", 10))
    global_cap = int(getattr(settings, "CABINET_LOGIN_ATTEMPTS_GLOBAL", 300))
    return per_ip, global_cap


def client_address(request: HttpRequest) -> str:
    """The client's address. Behind a proxy that we trust, the proxy's X-Forwarded-For entry."""
    if getattr(settings, "CABINET_TRUST_X_FORWARDED_FOR", False):
        forwarded: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        # The right-most entry is the one our own proxy appended; the rest are client-supplied.
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _hit(key: str) -> int:
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    return int(cache.incr(key))


def login_attempt_allowed(request: HttpRequest) -> bool:
    """Count one login attempt; False when this address or everyone together is over the cap."""
    per_ip, global_cap = _limits()
    window = int(time.time()) // WINDOW_SECONDS
    try:
        ip_count = _hit(f"cabinet:login:ip:{client_address(request)}:{window}")
        global_count = _hit(f"cabinet:login:all:{window}")
    except Exception:
        logger.warning("login throttle: cache unavailable, refusing the attempt", exc_info=True)
        return False
    if ip_count > per_ip or global_count > global_cap:
        logger.warning(
            "login throttled",
            extra={"per_ip": ip_count > per_ip, "global": global_count > global_cap},
        )
        return False
    return True
