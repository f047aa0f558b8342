"""Pushing jobs to Dramatiq's Redis queues from async code, without blocking the event loop.

Dramatiq's own `send()` is a synchronous Redis call. Here the same two writes its enqueue script
makes (the payload into `<queue>.msgs`, the id onto the list) go through redis.asyncio in one
small Lua script, so web handlers, async actors and the relay can all enqueue without stalling
their loop. A script, not a MULTI pipeline: one command and one reply instead of four, whose
bookkeeping would be a tenth of the web's CPU per accepted purchase.
"""

from __future__ import annotations

import logging
import time

import dramatiq
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core import context
from core.lua import LuaScript
from core.settings import get_settings
from db.outbox import Job

NAMESPACE = get_settings().redis_namespace  # the broker uses the same (workers/broker.py)
log = logging.getLogger(__name__)

# KEYS: for each message its queue list then its queue's `.msgs` hash; ARGV: id, payload pairs.
# Atomic like Dramatiq's enqueue: a worker never sees an id whose payload is missing.
_ENQUEUE = LuaScript("""
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  redis.call('HSET', KEYS[i + 1], ARGV[2 * n - 1], ARGV[2 * n])
  redis.call('RPUSH', KEYS[i], ARGV[2 * n - 1])
end
return #KEYS / 2
""")


def to_message(job: Job, delay_ms: int | None = None) -> dramatiq.Message:
    """The Dramatiq message of a job. Its Redis id is the job key, so the relay can tell whether
    the job is still queued or being worked on (its payload stays in `<queue>.msgs` until the ack)."""
    queue_name = job.queue_name
    options: dict[str, object] = {"redis_message_id": job.job_key}
    request_id = context.request_id.get()
    if request_id is not None:
        options["request_id"] = request_id
    if delay_ms is not None:
        queue_name = f"{queue_name}.DQ"
        options["eta"] = int(time.time() * 1000) + delay_ms
    return dramatiq.Message(queue_name=queue_name, actor_name=job.actor_name, args=tuple(job.args), kwargs={}, options=options)


Encoded = tuple[list[str], list[str | bytes]]
"""The enqueue script's KEYS and ARGV for some jobs."""


def encode(jobs: list[Job], delay_ms: int | None = None) -> Encoded:
    """The messages of jobs, made now: in the caller's context, whose request id they carry.

    delay_ms: run no sooner than this many milliseconds from now (Dramatiq's delay queue).
    """
    keys: list[str] = []
    args: list[str | bytes] = []
    for job in jobs:
        message = to_message(job, delay_ms)
        keys += [f"{NAMESPACE}:{message.queue_name}", f"{NAMESPACE}:{message.queue_name}.msgs"]
        args += [message.options["redis_message_id"], message.encode()]
    return keys, args


async def push(redis: Redis, jobs: list[Job], delay_ms: int | None = None) -> None:
    """Enqueue jobs; raises RedisError when Redis is unreachable.

    delay_ms: run no sooner than this many milliseconds from now (Dramatiq's delay queue).
    """
    if jobs:
        await _ENQUEUE(redis, *encode(jobs, delay_ms))


async def push_after_commit(redis: Redis, jobs: list[Job], delay_ms: int | None = None) -> bool:
    """Enqueue jobs whose outbox rows are committed; on a Redis failure leave them to the relay.

    Returns whether they were pushed. The caller's work is already durable, so a Redis outage
    must not turn an accepted request into an error.
    """
    return await push_encoded_after_commit(redis, encode(jobs, delay_ms)) if jobs else True


async def push_encoded_after_commit(redis: Redis, encoded: Encoded) -> bool:
    """push_after_commit() of messages made by encode()."""
    try:
        await _ENQUEUE(redis, *encoded)
        return True
    except (RedisError, OSError) as error:
        log.warning("enqueue deferred to the outbox relay: %s", type(error).__name__)
        return False


RECENTLY_ACKED_SUFFIX = ".acked"
RECENTLY_ACKED_MS = 30_000
"""How long a message acknowledged by a worker still counts as in Redis: `<queue>.acked`, a sorted
set of message ids by the time of their acknowledgement (workers.group_ack writes it). A job
handed to a worker's loop (workers.in_flight) is acknowledged before its work has kept its outbox
row due; a row that falls due in a backlog could be pushed again in that gap and run beside its
first copy (a second provider call for a few purchases in ten thousand with a slow provider). The
window only has to outlast that gap; a worker killed inside it leaves the job to the relay 30 s
later."""


async def still_in_redis(redis: Redis, jobs: list[Job]) -> list[bool]:
    """For each job: is a message of it waiting, prefetched, in progress or delayed, or was one
    acknowledged within RECENTLY_ACKED_MS? Its own message (id: its job key), or the one it went
    in with others (its message_id)."""
    ids = [[job.job_key] if job.message_id is None else [job.job_key, job.message_id] for job in jobs]
    async with redis.pipeline(transaction=False) as pipe:
        for job, message_ids in zip(jobs, ids, strict=True):
            for message_id in message_ids:
                pipe.hexists(f"{NAMESPACE}:{job.queue_name}.msgs", message_id)
                pipe.hexists(f"{NAMESPACE}:{job.queue_name}.DQ.msgs", message_id)
                pipe.zscore(f"{NAMESPACE}:{job.queue_name}{RECENTLY_ACKED_SUFFIX}", message_id)
        found = iter(await pipe.execute())
    since = time.time() * 1000 - RECENTLY_ACKED_MS
    present = []
    for message_ids in ids:
        answers = [(next(found), next(found), next(found)) for _ in message_ids]
        present.append(any(waiting or delayed or (acked is not None and acked >= since) for waiting, delayed, acked in answers))
    return present


async def oldest_waiting_timestamp(redis: Redis, queue_name: str) -> float | None:
    """Unix time at which the message at the head of a queue was created, None if it is empty."""
    head = await redis.lindex(f"{NAMESPACE}:{queue_name}", 0)
    if head is None:
        return None
    payload = await redis.hget(f"{NAMESPACE}:{queue_name}.msgs", head)
    if payload is None:
        return None
    return dramatiq.Message.decode(payload if isinstance(payload, bytes) else payload.encode()).message_timestamp / 1000
