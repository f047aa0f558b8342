"""workers.pusher: jobs of concurrent units of work go to Redis together, and none is lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core import context
from db.outbox import Job
from tests.servers import RedisServer
from workers.enqueue import NAMESPACE
from workers.pusher import MAX_JOBS_PER_PUSH, Pusher


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    yield client
    await client.aclose()


def job(n: int, queue: str = "pushertest") -> Job:
    return Job(f"{queue}:{n}", queue, "execute_purchase", [n])


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


async def queued_ids(redis: Redis, queue: str = "pushertest") -> set[str]:
    ids = {raw.decode() for raw in await redis.lrange(f"{NAMESPACE}:{queue}", 0, -1)}
    payloads = {raw.decode() for raw in await redis.hkeys(f"{NAMESPACE}:{queue}.msgs")}
    assert ids == payloads  # no id without its payload, and no payload without its id
    return ids


async def test_concurrent_units_of_work_share_pushes_and_every_job_arrives(redis):
    pusher = Pusher(redis)
    before = await script_calls(redis)
    results = await asyncio.gather(*(pusher.push_after_commit([job(n)]) for n in range(300)))
    assert results == [True] * 300
    assert await queued_ids(redis) == {f"pushertest:{n}" for n in range(300)}
    calls = await script_calls(redis) - before
    # The first push goes alone; the 299 that queued behind it go in batches of at most 256.
    assert calls == 3, calls


async def test_one_call_never_carries_more_than_the_cap(redis):
    pusher = Pusher(redis)
    results = await asyncio.gather(*(pusher.push_after_commit([job(n), job(n + 10_000)]) for n in range(200)))
    assert all(results)
    assert len(await queued_ids(redis)) == 400
    assert MAX_JOBS_PER_PUSH < 400  # so the batches above had to be split


async def test_a_caller_that_is_cancelled_while_waiting_still_gets_its_jobs_pushed(redis):
    pusher = Pusher(redis)
    first = asyncio.create_task(pusher.push_after_commit([job(1)]))
    second = asyncio.create_task(pusher.push_after_commit([job(2)]))
    await asyncio.sleep(0)
    second.cancel()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await second
    for _ in range(50):
        if len(await queued_ids(redis)) == 2:
            break
        await asyncio.sleep(0.02)
    assert await queued_ids(redis) == {"pushertest:1", "pushertest:2"}


async def test_with_redis_down_every_caller_hears_false_and_pushing_resumes_when_it_is_back(redis, redis_server):
    pusher = Pusher(redis)
    redis_server.stop()
    results = await asyncio.gather(*(pusher.push_after_commit([job(n)]) for n in range(20)))
    assert results == [False] * 20  # each unit of work leaves its jobs to the outbox relay
    redis_server.start()
    assert await pusher.push_after_commit([job(99)]) is True
    assert await queued_ids(redis) == {"pushertest:99"}


async def test_each_message_of_a_shared_push_carries_its_own_request_id(redis):
    pusher = Pusher(redis)

    async def unit_of_work(n: int) -> bool:
        context.request_id.set(f"req-{n}")
        return await pusher.push_after_commit([job(n)])

    assert all(await asyncio.gather(*(unit_of_work(n) for n in range(10))))
    payloads = await redis.hgetall(f"{NAMESPACE}:pushertest.msgs")
    by_job = {key.decode(): json.loads(value)["options"]["request_id"] for key, value in payloads.items()}
    assert by_job == {f"pushertest:{n}": f"req-{n}" for n in range(10)}
