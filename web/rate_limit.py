"""Per-API-key rate limiting in Redis: a counter per key and minute (fixed window)."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.lua import LuaScript
from web.errors import ApiError

log = logging.getLogger(__name__)

# One command per request (a pipeline of INCR and EXPIRE cost twice the CPU): the window's counter,
# given its expiry when it is created.
_COUNT = LuaScript("""
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return used
""")


async def enforce(redis: Redis, key_hash: bytes, per_minute: int) -> None:
    """429 with Retry-After when this key has used its minute; a Redis outage lets requests through.

    per_minute: the allowance (0 disables the limit).
    """
    if per_minute <= 0:
        return
    now = time.time()
    window = int(now // 60)
    key = f"loket:rl:{key_hash.hex()[:32]}:{window}"
    try:
        used = await _COUNT(redis, [key], [120])
    except RedisError:
        log.warning("rate limit skipped: Redis unavailable")
        return
    if used > per_minute:
        retry_after = max(1, int((window + 1) * 60 - now))
        raise ApiError(429, "rate_limited", f"more than {per_minute} requests this minute", {"Retry-After": str(retry_after)})
