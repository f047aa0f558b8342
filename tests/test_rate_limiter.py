"""web.rate_limit: counts of concurrent requests share Redis calls and still add up exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.servers import RedisServer
from web.errors import ApiError
from web.rate_limit import RateLimiter


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    yield client
    await client.aclose()


async def outcomes(limiter: RateLimiter, key_hash: bytes, requests: int) -> list[int]:
    async def one() -> int:
        try:
            await limiter.enforce(key_hash)
            return 200
        except ApiError as refused:
            return refused.status

    return list(await asyncio.gather(*(one() for _ in range(requests))))


async def test_concurrent_requests_over_the_allowance_get_429_exactly_past_it(redis):
    limiter = RateLimiter(redis, per_minute=10)
    before = (await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
    answers = await outcomes(limiter, b"\x01" * 32, 30)
    other_key = await outcomes(limiter, b"\x02" * 32, 5)  # another key's minute is its own
    calls = (await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0) - before
    assert sorted(answers) == [200] * 10 + [429] * 20
    assert other_key == [200] * 5
    assert calls <= 4, calls  # 35 counts: the first alone, the rest batched
    [window_key] = await redis.keys("loket:rl:0101*")
    assert int(await redis.get(window_key)) == 30
    assert 0 < await redis.ttl(window_key) <= 120


async def test_a_limit_of_zero_never_asks_redis(redis):
    limiter = RateLimiter(redis, per_minute=0)
    assert await outcomes(limiter, b"\x03" * 32, 50) == [200] * 50
    assert await redis.keys("loket:rl:*") == []


async def test_with_redis_down_requests_go_through(redis, redis_server):
    limiter = RateLimiter(redis, per_minute=1)
    redis_server.stop()
    assert await outcomes(limiter, b"\x04" * 32, 5) == [200] * 5
