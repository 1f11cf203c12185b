"""One request budget per amoCRM account, shared by every process through Redis.

amoCRM allows 7 requests/second (docs/amocrm-api.md §8) and answers 429, then 403 for the whole
account, beyond it. Requests are paced rather than windowed: each one reserves the next slot
``1/rate`` seconds after the previous one (GCRA, timed by the Redis server's clock so every
worker on every machine agrees) and sleeps until its slot. Pacing at 6.4/s means any 8
consecutive requests span 1.09 s, so transit times differing by up to 90 ms cannot make
amoCRM see 8 in one second — which a "7 per sliding second" window would not guarantee (two
back-to-back bursts of 7 can sit within one second at the far end).

When amoCRM answers 429 anyway, ``penalize`` makes every process of every machine feel it at
once: no slot is handed out before the server's ``Retry-After`` has passed, and the pace drops
to ``PENALTY_FACTOR`` of the normal rate (halving at most), then climbs back linearly over
``RECOVERY_SECONDS`` without a further 429.
"""

from __future__ import annotations

import time

from django.conf import settings

from core.redis import redis_client
from crm.errors import AmoRateLimited

PENALTY_FACTOR = 0.7  # the pace after a 429, as a share of the pace before it
SLOWEST_FACTOR = 0.5
RECOVERY_SECONDS = 60.0  # from the slowest pace back to the full one

# KEYS: slot time (tat), slowdown (factor, set at). ARGV: base interval µs, max wait µs,
# recovery per µs. Returns the µs to wait for the reserved slot (0 = now), or -1 when it is
# further away than the max wait (nothing is reserved then).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local slow = redis.call('HMGET', KEYS[2], 'factor', 'at')
if slow[1] then
  local factor = tonumber(slow[1]) + (now - tonumber(slow[2])) * tonumber(ARGV[3])
  if factor < 1 then interval = interval / factor end
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, tat)
if slot - now > tonumber(ARGV[2]) then
  return -1
end
redis.call('SET', KEYS[1], slot + interval, 'PX', math.ceil((slot + interval - now) / 1000) + 1000)
return slot - now
"""

# KEYS as above. ARGV: pause µs, penalty factor, slowest factor, recovery per µs, ttl ms.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local factor = 1
local slow = redis.call('HMGET', KEYS[2], 'factor', 'at')
if slow[1] then
  factor = math.min(1, tonumber(slow[1]) + (now - tonumber(slow[2])) * tonumber(ARGV[4]))
end
factor = math.max(tonumber(ARGV[3]), factor * tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], 'factor', factor, 'at', now)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
local resume = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if resume > tat then
  redis.call('SET', KEYS[1], resume, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return tostring(factor)
"""


class AccountRateLimiter:
    """``acquire()`` blocks until this account may send one more request."""

    def __init__(self, account_key: str, *, per_second: float | None = None) -> None:
        self.key = f"beetel:amo:rate:{account_key}"
        self.slow_key = f"beetel:amo:slow:{account_key}"
        rate = per_second or settings.AMOCRM_RATE_LIMIT_PER_SECOND
        self.interval_us = int(1_000_000 / rate)
        client = redis_client()
        self._reserve = client.register_script(_RESERVE)
        self._penalize = client.register_script(_PENALIZE)

    @staticmethod
    def _recovery_per_us() -> float:
        return (1 - SLOWEST_FACTOR) / (RECOVERY_SECONDS * 1_000_000)

    def acquire(self, *, max_wait: float = 30.0) -> None:
        wait_us = int(
            self._reserve(
                keys=[self.key, self.slow_key],
                args=[self.interval_us, int(max_wait * 1_000_000), self._recovery_per_us()],
            )
        )
        if wait_us < 0:
            raise AmoRateLimited(
                "Слишком много запросов к amoCRM: очередь ожидания переполнена.",
                retry_after=max_wait,
                status=None,
            )
        if wait_us:
            time.sleep(wait_us / 1_000_000)

    def penalize(self, *, pause: float) -> float:
        """amoCRM answered 429: no request of this account for ``pause`` seconds (every
        process), then a slower pace that recovers by itself. Returns the new pace factor."""
        factor = self._penalize(
            keys=[self.key, self.slow_key],
            args=[
                int(max(0.0, pause) * 1_000_000),
                PENALTY_FACTOR,
                SLOWEST_FACTOR,
                self._recovery_per_us(),
                int((RECOVERY_SECONDS + pause) * 1000) + 1000,
            ],
        )
        return float(factor)
