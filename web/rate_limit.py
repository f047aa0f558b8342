"""Rate limiting: a counter per key (an API key's hash, a client address, a reseller) and minute
(fixed window), shared through Redis.

Each web process counts its requests in memory and settles them with Redis in one script call
for every key it saw, `settle_seconds` after the first unsettled one; Redis answers each key's
total over all processes. A Redis call per request would cost about an eighth of the web's
CPU per accepted purchase. The price is precision across processes: another process's
requests are seen at this one's next settle, so the limit can be passed by what the processes
admit within one settle interval. Within one process the count is exact, and it keeps counting
(per process only) while Redis is down. A process remembers at most `max_keys` totals from Redis
per minute: beyond them it forgets the oldest (their counts stay in Redis and come back at their
next settle), so a flood of distinct keys cannot grow its memory without bound; the counts not yet
settled go at every settle, and while Redis is down the oldest of them beyond `max_keys` are lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.lua import LuaScript
from web.errors import ApiError

log = logging.getLogger(__name__)

# KEYS: the window counters; ARGV[1]: their expiry, ARGV[i + 1]: what to add to KEYS[i].
_SETTLE = LuaScript("""
local totals = {}
for i, key in ipairs(KEYS) do
  local added = tonumber(ARGV[i + 1])
  local used = redis.call('INCRBY', key, added)
  if used == added then redis.call('EXPIRE', key, ARGV[1]) end
  totals[i] = used
end
return totals
""")

_EXPIRE_SECONDS = 120  # a window's counter outlives its minute, then goes


@dataclass
class _Window:
    number: int  # minutes since the epoch
    settled: dict[str, int] = field(default_factory=dict)  # key -> its total in Redis at the last settle
    settling: dict[str, int] = field(default_factory=dict)  # key -> requests on their way to Redis now
    unsettled: dict[str, int] = field(default_factory=dict)  # key -> requests counted here since then

    def used(self, key: str) -> int:
        return self.settled.get(key, 0) + self.settling.get(key, 0) + self.unsettled.get(key, 0)


class RateLimiter:
    """One per web process, shared by its requests."""

    def __init__(
        self,
        redis: Redis,
        per_minute: int,
        settle_seconds: float = 0.05,
        *,
        prefix: str = "loket:rl",
        max_keys: int = 100_000,
        counted: str = "requests",
    ) -> None:
        """per_minute: each key's allowance (0 disables the limit).
        settle_seconds: how long counts stay in this process before they go to Redis.
        prefix: of the Redis keys, e.g. with the deployment's REDIS_NAMESPACE and the limit's name.
        max_keys: counters kept in this process per minute. counted: what the 429 says was counted.
        """
        self._redis = redis
        self._per_minute = per_minute
        self._settle_seconds = settle_seconds
        self._prefix = prefix
        self._max_keys = max(1, max_keys)
        self._counted = counted
        self._window = _Window(-1)
        self._settling: asyncio.Task[None] | None = None
        self._redis_failing = False

    def enforce(self, key_hash: bytes | str) -> None:
        """Count one request of this key (bytes: a hash, of which 128 bits name it; str: as it is):
        429 with Retry-After when the key has used its minute. A refused request counts too, so a
        flood stays refused."""
        if self._per_minute <= 0:
            return
        now = time.time()
        window, key = self._count(key_hash, now)
        if window.used(key) > self._per_minute:
            raise self._refusal(window.number, now)

    def count(self, key_hash: bytes | str) -> None:
        """Count one request of this key after the fact, refusing nothing (see refuse_when_used_up)."""
        if self._per_minute > 0:
            self._count(key_hash, time.time())

    def refuse_when_used_up(self, key_hash: bytes | str) -> None:
        """429 with Retry-After when the key has used its minute, counting nothing: for a limit
        on outcomes (count() them once known) rather than on requests."""
        if self._per_minute <= 0:
            return
        now = time.time()
        window = self._window_at(now)
        if window.used(self._key(key_hash, window.number)) >= self._per_minute:
            raise self._refusal(window.number, now)

    def _window_at(self, now: float) -> _Window:
        number = int(now // 60)
        if self._window.number != number:
            self._window = _Window(number)
        return self._window

    def _key(self, key_hash: bytes | str, number: int) -> str:
        name = key_hash.hex()[:32] if isinstance(key_hash, bytes) else key_hash
        return f"{self._prefix}:{name}:{number}"

    def _count(self, key_hash: bytes | str, now: float) -> tuple[_Window, str]:
        window = self._window_at(now)
        key = self._key(key_hash, window.number)
        unsettled = window.unsettled
        unsettled[key] = unsettled.get(key, 0) + 1
        if self._redis_failing and len(unsettled) > self._max_keys:  # they are emptied at every settle otherwise
            del unsettled[next(iter(unsettled))]
        if self._settling is None:
            self._settling = asyncio.get_running_loop().create_task(self._settle_while_counting())
        return window, key

    def _refusal(self, number: int, now: float) -> ApiError:
        retry_after = max(1, int((number + 1) * 60 - now))
        return ApiError(429, "rate_limited", f"more than {self._per_minute} {self._counted} this minute", {"Retry-After": str(retry_after)})

    async def aclose(self, timeout: float = 2.0) -> None:
        """Settle what is counted, so the other processes see it; for when no request comes any more.

        timeout: seconds to wait for Redis before the counts are given up.
        """
        if self._settling is None:
            return
        try:
            await asyncio.wait_for(self._settling, timeout)
        except TimeoutError:
            log.warning("rate limit counts not settled at shutdown: Redis did not answer")

    async def _settle_while_counting(self) -> None:
        while self._window.unsettled:
            await asyncio.sleep(self._settle_seconds)
            await self._settle_once()
        self._settling = None  # no await since the check: a request counted after it starts a new task

    async def _settle_once(self) -> None:
        window = self._window
        counts = window.settling = window.unsettled
        window.unsettled = {}
        if not counts:
            return
        try:
            totals = await _SETTLE(self._redis, list(counts), [_EXPIRE_SECONDS, *counts.values()])
        except RedisError:
            if not self._redis_failing:
                log.warning("rate limit counted in this process only: Redis unavailable")
            self._redis_failing = True
            for key, count in counts.items():  # still counted here, and sent at the next settle
                window.unsettled[key] = window.unsettled.get(key, 0) + count
            return
        finally:
            window.settling = {}
        self._redis_failing = False
        settled = window.settled
        settled.update(zip(counts, (int(total) for total in totals), strict=True))
        for _ in range(len(settled) - self._max_keys):  # the oldest first: dicts keep insertion order
            del settled[next(iter(settled))]
