"""One request budget per amoCRM account, shared by every process through Redis.

amoCRM allows 7 requests/second (docs/amocrm-api.md §8) and answers 429, then 403 for the whole
account, beyond it. Requests are paced rather than windowed: each one reserves the next slot
``1/rate`` seconds after the previous one (GCRA, timed by the Redis server clock so every
worker on every machine agrees) and sleeps until its slot. Pacing at 5/s means any 8
consecutive requests span 1.4 s, so transit times differing by up to 0.4 s cannot make amoCRM
see 8 in one second — which a "6 per sliding second" window would not guarantee (two
back-to-back bursts of 6 sit exactly one second apart).
"""

from __future__ import annotations

import time

from django.conf import settings

from core.redis import redis_client
from crm.errors import AmoRateLimited

# Reserves the next slot and returns the microseconds to wait for it (0 = now), or -1 when the
# slot is further away than ARGV[2] microseconds (nothing is reserved then).
_RESERVE = """
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', key) or '0')
local slot = math.max(now, tat)
if slot - now > max_wait then
  return -1
end
redis.call('SET', key, slot + interval, 'PX', math.ceil((slot + interval - now) / 1000) + 1000)
return slot - now
"""


class AccountRateLimiter:
    """``acquire()`` blocks until this account may send one more request."""

    def __init__(self, account_key: str, *, per_second: int | None = None) -> None:
        self.key = f"beetel:amo:rate:{account_key}"
        rate = per_second or settings.AMOCRM_RATE_LIMIT_PER_SECOND
        self.interval_us = int(1_000_000 / rate)
        self._script = redis_client().register_script(_RESERVE)

    def acquire(self, *, max_wait: float = 30.0) -> None:
        wait_us = int(
            self._script(keys=[self.key], args=[self.interval_us, int(max_wait * 1_000_000)])
        )
        if wait_us < 0:
            raise AmoRateLimited(
                "Слишком много запросов к amoCRM: очередь ожидания переполнена.",
                retry_after=max_wait,
                status=None,
            )
        if wait_us:
            time.sleep(wait_us / 1_000_000)
