"""Per-API-key rate limiting in Redis: a counter per key and minute (fixed window).

The counts of concurrent requests go to Redis together (core.batching): under load one script
call counts many requests, and an idle process counts at once.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.batching import BatchAbandoned, Batcher
from core.lua import LuaScript
from web.errors import ApiError

log = logging.getLogger(__name__)

# One command per batch (a pipeline of INCR and EXPIRE per key cost twice the CPU): each window's
# counter, given its expiry when it is created.
_COUNT = LuaScript("""
local used = {}
for i = 1, #KEYS do
  used[i] = redis.call('INCR', KEYS[i])
  if used[i] == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return used
""")
WINDOW_TTL_SECONDS = 120


class RateLimiter:
    """The limiter of one event loop (the web process's).

    redis: that loop's client.
    per_minute: requests each API key may make per minute (0 disables the limit).
    """

    def __init__(self, redis: Redis, per_minute: int) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self._counts: Batcher[str, int] = Batcher(self._count)

    async def enforce(self, key_hash: bytes) -> None:
        """429 with Retry-After when this key has used its minute; a Redis outage lets requests through."""
        if self.per_minute <= 0:
            return
        now = time.time()
        window = int(now // 60)
        try:
            used = await self._counts.submit(f"loket:rl:{key_hash.hex()[:32]}:{window}")
        except (RedisError, OSError, BatchAbandoned):
            log.warning("rate limit skipped: Redis unavailable")
            return
        if used > self.per_minute:
            retry_after = max(1, int((window + 1) * 60 - now))
            raise ApiError(429, "rate_limited", f"more than {self.per_minute} requests this minute", {"Retry-After": str(retry_after)})

    async def _count(self, keys: list[str]) -> list[int]:
        return [int(used) for used in await _COUNT(self.redis, keys, [WINDOW_TTL_SECONDS])]
