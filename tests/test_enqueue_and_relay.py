"""Jobs pushed from async code are what Dramatiq's Redis broker reads; the relay re-pushes lost ones."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from dramatiq.brokers.redis import RedisBroker
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import get_settings
from db import outbox
from db.apply import apply_schema
from db.engine import create_engine
from db.outbox import Job
from domain import purchases
from tests.harness import MariaDB
from tests.servers import RedisServer
from tests.test_domain import PULSA10, autocommit_connection, new_reseller
from workers.enqueue import NAMESPACE, RECENTLY_ACKED_MS, RECENTLY_ACKED_SUFFIX, push, push_after_commit
from workers.group_ack import GroupAckRedisBroker
from workers.relay import relay_once


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def relay_db() -> Iterator[MariaDB]:
    """A database of its own, so that no other relay (the shared stack's clock) claims its rows."""
    url = get_settings().database_url + "_relay"
    apply_schema(url, drop_first=True)
    yield MariaDB(url)
    MariaDB(url).drop()


@pytest.fixture
async def engine(relay_db: MariaDB) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(get_settings().model_copy(update={"database_url": relay_db.url}), pool_size=2)
    yield engine
    await engine.dispose()


def consume(url: str, queue: str, count: int) -> list:
    broker = RedisBroker(url=url, namespace=NAMESPACE)
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=count, timeout=500)
    messages = []
    deadline = time.monotonic() + 5
    while len(messages) < count and time.monotonic() < deadline:
        message = next(consumer)
        if message is not None:
            messages.append(message)
            consumer.ack(message)
    consumer.close()
    return messages


async def test_a_pushed_job_is_read_by_the_dramatiq_broker(redis, redis_server):
    await push(redis, [Job("purchase:1", "purchases", "execute_purchase", [1]), Job("purchase:2", "purchases", "execute_purchase", [2])])
    messages = consume(redis_server.url, "purchases", 2)
    assert [(m.actor_name, m.args) for m in messages] == [("execute_purchase", (1,)), ("execute_purchase", (2,))]


async def test_a_delayed_job_waits_in_the_delay_queue(redis):
    await push(redis, [Job("purchase:3", "purchases", "execute_purchase", [3])], delay_ms=60_000)
    [payload] = (await redis.hgetall(f"{NAMESPACE}:purchases.DQ.msgs")).values()
    assert json.loads(payload)["options"]["eta"] > time.time() * 1000 + 50_000
    assert await redis.llen(f"{NAMESPACE}:purchases") == 0


async def test_push_after_commit_survives_a_dead_redis(redis_server):
    client = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    redis_server.stop()
    assert await push_after_commit(client, [Job("purchase:4", "purchases", "execute_purchase", [4])]) is False
    await client.aclose()


async def test_the_relay_pushes_due_jobs_and_leaves_waiting_ones(engine, redis, redis_server, relay_db: MariaDB):
    queue = f"relaytest{time.time_ns()}"
    async with engine.begin() as conn:
        await outbox.add(conn, Job(f"{queue}:lost", queue, "execute_purchase", [10]), lease_seconds=0)
    assert await relay_once(engine, redis, lease_seconds=30) == 1
    assert [m.args for m in consume(redis_server.url, queue, 1)] == [(10,)]
    row = relay_db.rows("SELECT attempts, due_at > NOW(6) AS later FROM outbox WHERE job_key = %s", f"{queue}:lost")[0]
    assert row == {"attempts": 1, "later": 1}

    # A job whose message still waits in its queue (a backlog, or prefetched by a worker) is late, not lost.
    waiting = Job(f"{queue}:waiting", queue, "execute_purchase", [11])
    async with engine.begin() as conn:
        await outbox.add(conn, waiting, lease_seconds=0)
    await push(redis, [waiting])
    before = await redis.llen(f"{NAMESPACE}:{queue}")
    await relay_once(engine, redis, lease_seconds=30)
    assert await redis.llen(f"{NAMESPACE}:{queue}") == before
    assert relay_db.value("SELECT attempts FROM outbox WHERE job_key = %s", f"{queue}:waiting") == 0


async def test_the_relay_leaves_a_job_a_worker_acknowledged_moments_ago(engine, redis, redis_server, relay_db: MariaDB):
    """A hand-off actor's message is acknowledged before its work keeps the outbox row due
    (workers.in_flight): a row that fell due in a backlog is not pushed in that gap."""
    queue = f"relaytest{time.time_ns()}"
    job = Job(f"{queue}:taken", queue, "execute_purchase", [12])
    async with engine.begin() as conn:
        await outbox.add(conn, job, lease_seconds=0)  # due at once, as after a long backlog
    await push(redis, [job])
    broker = GroupAckRedisBroker(url=redis_server.url, namespace=NAMESPACE)
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=1, timeout=500)
    message = None
    while message is None:
        message = next(consumer)
    consumer.ack(message)  # gone from the queue's hashes: only the recently acknowledged set has it
    assert not await redis.hexists(f"{NAMESPACE}:{queue}.msgs", job.job_key)
    assert await relay_once(engine, redis, lease_seconds=0) == 0
    assert await redis.llen(f"{NAMESPACE}:{queue}") == 0

    # Past the window, with the row still due, the job is lost: the relay pushes it.
    await redis.zadd(f"{NAMESPACE}:{queue}{RECENTLY_ACKED_SUFFIX}", {job.job_key: time.time() * 1000 - RECENTLY_ACKED_MS - 1})
    assert await relay_once(engine, redis, lease_seconds=30) == 1
    assert [m.args for m in consume(redis_server.url, queue, 1)] == [(12,)]
    consumer.close()


async def test_the_relay_leaves_jobs_whose_group_message_waits_and_pushes_them_once_it_is_gone(engine, redis, redis_server, relay_db: MariaDB):
    """The execute jobs of purchases accepted together go in one message (web.intake): their
    outbox rows name it, and the relay counts it as theirs, waiting or just acknowledged."""
    reseller_id = await new_reseller(engine, 100_000)
    message_id = outbox.new_message_id(purchases.EXECUTE_ALL_ACTOR)
    orders = [purchases.Order(produk_id=PULSA10.id, nomor_tujuan=f"08123456{n:04d}", nominal=None, ref_id=None, reseller_id=reseller_id) for n in range(3)]
    async with autocommit_connection(engine) as conn:  # due at once, as after a long backlog
        accepted = await purchases.accept_all(conn, orders, lease_seconds=0, message_id=message_id)
    ids = [a.purchase_id for a in accepted]
    assert relay_db.value("SELECT COUNT(*) FROM outbox WHERE message_id = %s", message_id) == 3
    await push(redis, [outbox.group_message(message_id, purchases.EXECUTE_ALL_ACTOR, [(purchases.execute_job(i), f"req-{i}") for i in ids])])
    assert await relay_once(engine, redis, lease_seconds=0) == 0  # waiting in the queue
    assert await redis.llen(f"{NAMESPACE}:purchases") == 1

    broker = GroupAckRedisBroker(url=redis_server.url, namespace=NAMESPACE)
    broker.declare_queue("purchases")
    consumer = broker.consume("purchases", prefetch=1, timeout=500)
    message = None
    while message is None:
        message = next(consumer)
    assert (message.actor_name, message.args) == ("execute_purchases", ([[[i], f"req-{i}"] for i in ids],))
    consumer.ack(message)
    assert await relay_once(engine, redis, lease_seconds=0) == 0  # acknowledged moments ago: its work keeps the rows due

    # Past the window, rows still due: each job is lost, and pushed alone.
    await redis.zadd(f"{NAMESPACE}:purchases{RECENTLY_ACKED_SUFFIX}", {message_id: time.time() * 1000 - RECENTLY_ACKED_MS - 1})
    assert await relay_once(engine, redis, lease_seconds=30) == 3
    assert sorted(m.args for m in consume(redis_server.url, "purchases", 3)) == [(i,) for i in ids]
    consumer.close()
