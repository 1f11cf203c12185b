"""amoCRM's 7 requests/second limit per (integration, account), shared by every process (Redis).

A sliding-window log: a request is let through when fewer than 7 were let through in the last
second, so a client that never sends more than 7 in any one second never sees 429, and a
client that bursts does. Rejected requests are not logged in the window (a client that backs
off recovers at once) but are counted as violations for the ban mode.

Like a real server, a request is timestamped when the check runs, atomically with it (the Redis
server's clock, inside the script): a timestamp read earlier in the handler could be stale by
the time the check runs (a thread that waited for the interpreter), which would count
requests from more than a second ago and refuse a client that kept the limit. When a test has
replaced ``clock.now`` with a fake clock, the fake time is used as it is: it moves only when the
test moves it, so a client pacing exactly at the limit is judged without real-time jitter.
"""

from __future__ import annotations

import logging
import uuid

import redis

from core.redis import redis_client
from sandbox.amocrm import clock

logger = logging.getLogger(__name__)

REQUESTS_PER_SECOND = 7
WINDOW_MS = 1000
# "Persistent violation": this many 429s within BAN_WINDOW_SECONDS bans the account (ban mode).
BAN_THRESHOLD = 20
BAN_WINDOW_SECONDS = 60

_ADMIT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window * 2)
return 1
"""


def _key(account_id: int, client_id: str) -> str:
    return f"sandbox:amocrm:rl:{account_id}:{client_id}"


def rate_limit_admit(*, account_id: int, client_id: str) -> bool:
    """True when the request may proceed. Without Redis (a bare demo) everything is admitted."""
    # The real clock is read by Redis inside the script; a test's fake clock is passed as is.
    now_ms = "" if clock.is_real() else clock.now().timestamp() * 1000
    try:
        admitted = redis_client().eval(
            _ADMIT,
            1,
            _key(account_id, client_id),
            now_ms,
            WINDOW_MS,
            REQUESTS_PER_SECOND,
            uuid.uuid4().hex,
        )
    except redis.RedisError:
        logger.warning("sandbox amoCRM rate limiter: Redis unreachable, not limiting")
        return True
    return bool(admitted)


def rate_limit_violation_count(*, account_id: int, client_id: str) -> int:
    """Count one rejected request; returns the violations within the ban window."""
    key = _key(account_id, client_id) + ":violations"
    try:
        client = redis_client()
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, BAN_WINDOW_SECONDS, nx=True)
        count, _ = pipe.execute()
    except redis.RedisError:
        return 0
    return int(count)


def rate_limit_reset(*, account_id: int, client_id: str) -> None:
    key = _key(account_id, client_id)
    try:
        redis_client().delete(key, key + ":violations")
    except redis.RedisError:
        logger.warning("sandbox amoCRM rate limiter: Redis unreachable, nothing to reset")
