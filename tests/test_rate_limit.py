"""web.rate_limit: counted in each process, shared through Redis, still counting when Redis is down."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.servers import RedisServer
from web.errors import ApiError
from web.rate_limit import RateLimiter

SETTLE = 0.02
KEY = bytes.fromhex("ab" * 32)


@pytest.fixture(autouse=True)
async def one_window() -> None:
    """The counts are per minute: a test that ran across a minute's end would start afresh midway."""
    left = 60 - time.time() % 60
    if left < 10:
        await asyncio.sleep(left + 0.1)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    yield client
    await client.aclose()


def admitted(limiter: RateLimiter, requests: int, key: bytes = KEY) -> int:
    passed = 0
    for _ in range(requests):
        try:
            limiter.enforce(key)
            passed += 1
        except ApiError as refused:
            assert refused.status == 429 and refused.code == "rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
    return passed


async def settled() -> None:
    await asyncio.sleep(SETTLE * 10)


async def redis_total(redis: Redis) -> int:
    keys = [key async for key in redis.scan_iter("loket:rl:*")]
    return sum(int(value) for value in await redis.mget(keys)) if keys else 0


async def test_one_process_counts_exactly_and_per_key(redis: Redis):
    limiter = RateLimiter(redis, per_minute=10, settle_seconds=SETTLE)
    assert admitted(limiter, 12) == 10
    assert admitted(limiter, 3, key=bytes.fromhex("cd" * 32)) == 3
    await settled()
    assert await redis_total(redis) == 15  # the refused requests count too: a flood stays refused
    assert admitted(limiter, 1) == 0
    await limiter.aclose()


async def test_requests_counted_while_a_settle_is_on_its_way_still_count(redis: Redis):
    limiter = RateLimiter(redis, per_minute=10, settle_seconds=SETTLE)
    pauser = Redis(port=redis.connection_pool.connection_kwargs["port"])
    await pauser.execute_command("CLIENT", "PAUSE", 300, "WRITE")  # the settle's script waits in Redis
    assert admitted(limiter, 6) == 6
    await asyncio.sleep(SETTLE * 3)  # the settle has taken the 6 and is waiting for its answer
    assert admitted(limiter, 10) == 4
    await asyncio.sleep(0.5)
    assert await redis_total(redis) == 16
    await limiter.aclose()
    await pauser.aclose()


async def test_processes_see_each_others_counts_at_their_next_settle(redis: Redis):
    first = RateLimiter(redis, per_minute=10, settle_seconds=SETTLE)
    second = RateLimiter(redis, per_minute=10, settle_seconds=SETTLE)
    assert admitted(first, 8) == 8
    await settled()
    assert admitted(second, 1) == 1  # second has not heard of the 8 yet
    await settled()
    assert admitted(second, 4) == 1  # now it has: 8 + 1 + 1
    await settled()
    assert admitted(first, 1) == 1  # first last heard 8: the overshoot of one settle interval
    await settled()
    assert admitted(first, 1) == 0
    await settled()
    assert await redis_total(redis) == 15
    await first.aclose()
    await second.aclose()


async def test_the_overshoot_across_processes_is_what_they_admit_within_one_settle(redis: Redis):
    limiters = [RateLimiter(redis, per_minute=100, settle_seconds=SETTLE) for _ in range(3)]

    async def steady(limiter: RateLimiter) -> int:
        passed = 0
        for _ in range(100):
            passed += admitted(limiter, 2)
            await asyncio.sleep(SETTLE / 4)
        return passed

    passed = sum(await asyncio.gather(*(steady(limiter) for limiter in limiters)))
    await settled()
    # Each admits at most ~2 requests per quarter interval before it hears of the others.
    assert 100 <= passed <= 100 + 3 * 2 * 4 * 2
    for limiter in limiters:
        await limiter.aclose()
    assert await redis_total(redis) == 600


async def test_while_redis_is_down_each_process_still_counts_and_settles_when_it_is_back(redis_server: RedisServer):
    client = Redis.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    limiter = RateLimiter(client, per_minute=10, settle_seconds=SETTLE)
    redis_server.stop()
    assert admitted(limiter, 12) == 10
    await settled()
    assert admitted(limiter, 1) == 0
    redis_server.start()
    for _ in range(100):
        await asyncio.sleep(SETTLE)
        if await redis_total(client) == 13:
            break
    assert await redis_total(client) == 13  # nothing counted while it was down was lost
    await limiter.aclose()
    await client.aclose()


async def test_a_flood_of_distinct_keys_holds_at_most_max_keys_counters_with_redis_up_or_down(redis_server: RedisServer):
    """The memory a web process spends on counters is bounded whatever keys an attacker invents."""
    client = Redis.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    limiter = RateLimiter(client, per_minute=10, settle_seconds=SETTLE, max_keys=100)

    async def flood(count: int, prefix: str) -> int:
        """Bytes the limiter still holds after `count` new keys, 100 per settle interval."""
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for chunk in range(0, count, 100):
            for n in range(chunk, chunk + 100):
                limiter.enforce(f"{prefix}-{n}")
            await asyncio.sleep(SETTLE * 2)
        await settled()
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "traceback") if "rate_limit" in str(stat.traceback))
        tracemalloc.stop()
        return grown

    with_redis = await flood(5_000, "up")  # settled as they come: at most 100 totals remembered
    redis_server.stop()
    without_redis = await flood(5_000, "down")  # never settled: the oldest beyond 100 are dropped
    # 5,000 counters kept would be about half a megabyte; 100 are a few kilobytes.
    assert with_redis < 100_000 and without_redis < 100_000, (with_redis, without_redis)
    redis_server.start()
    await limiter.aclose()
    await client.aclose()


async def test_a_zero_allowance_turns_the_limit_off(redis: Redis):
    limiter = RateLimiter(redis, per_minute=0, settle_seconds=SETTLE)
    assert admitted(limiter, 50) == 50
    await settled()
    assert await redis_total(redis) == 0
    await limiter.aclose()


async def test_counters_are_named_by_the_prefix_and_a_string_key_as_it_is(redis: Redis):
    limiter = RateLimiter(redis, per_minute=3, settle_seconds=SETTLE, prefix="ns-1:loket:rl:addr")
    assert admitted(limiter, 4, key="203.0.113.9") == 3  # type: ignore[arg-type]
    await settled()
    assert [key async for key in redis.scan_iter("ns-1:loket:rl:addr:203.0.113.9:*")]
    await limiter.aclose()
