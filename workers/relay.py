"""The outbox relay: pushes jobs whose rows are due, i.e. not done within their lease.

That covers a crash between commit and push, a Redis that lost its data, a dead-lettered
message, and a push that failed while Redis was down. Several relays may run: rows are claimed
with SKIP LOCKED.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from db import outbox
from workers.enqueue import push, still_in_redis

log = logging.getLogger(__name__)


async def relay_once(engine: AsyncEngine, redis: Redis, lease_seconds: int, batch: int = 500) -> int:
    """Push one batch of due jobs; returns how many were pushed."""
    async with engine.begin() as conn:
        due = await outbox.claim_due(conn, batch)
        if not due:
            return 0
        # A job whose message is still in Redis (waiting in a backlog, prefetched by a worker, in
        # progress, on a timer, or acknowledged moments ago by a worker taking it on) is late, not
        # lost: pushing it again would only grow the backlog, or run it beside itself. A killed
        # worker's messages stay there too, and Dramatiq's heartbeat maintenance requeues them.
        present = await still_in_redis(redis, [row.job for row in due])
        to_push = [row for row, there in zip(due, present, strict=True) if not there]
        still_waiting = [row.id for row, there in zip(due, present, strict=True) if there]
        await push(redis, [row.job for row in to_push])
        await outbox.mark_pushed(conn, [row.id for row in to_push], lease_seconds)
        await outbox.defer(conn, still_waiting, lease_seconds)
    if to_push:
        log.info("relay pushed %d job(s)", len(to_push))
    return len(to_push)
