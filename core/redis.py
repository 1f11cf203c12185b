"""The one Redis handle of the application processes (rate limits, drain flags, probes).

Every client gets the connect and socket timeouts of ``REDIS_CONNECT_TIMEOUT`` /
``REDIS_SOCKET_TIMEOUT``: with Redis frozen, a caller fails within them instead of hanging.
Clients are pooled and thread-safe, so one per (URL, timeouts) serves the whole process.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


def redis_client(url: str | None = None) -> redis.Redis:
    """The shared client for ``url`` (default ``settings.REDIS_URL``)."""
    return _client(
        url or settings.REDIS_URL,
        float(settings.REDIS_CONNECT_TIMEOUT),
        float(settings.REDIS_SOCKET_TIMEOUT),
    )


@lru_cache(maxsize=8)
def _client(url: str, connect_timeout: float, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
    )
