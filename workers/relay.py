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
from workers.enqueue import oldest_waiting_timestamp, push

log = logging.getLogger(__name__)


async def relay_once(engine: AsyncEngine, redis: Redis, lease_seconds: int, batch: int = 500) -> int:
    """Push one batch of due jobs; returns how many were pushed."""
    async with engine.begin() as conn:
        due = await outbox.claim_due(conn, batch)
        if not due:
            return 0
        heads: dict[str, float | None] = {}
        for queue_name in {d.job.queue_name for d in due}:
            heads[queue_name] = await oldest_waiting_timestamp(redis, queue_name)
        to_push, still_waiting = [], []
        for row in due:
            head = heads[row.job.queue_name]
            # A FIFO queue whose head is older than our last push may still hold our message
            # (a backlog, not a loss): pushing again would only grow the backlog.
            if head is not None and row.sent_at is not None and head <= row.sent_at:
                still_waiting.append(row.id)
            else:
                to_push.append(row)
        await push(redis, [row.job for row in to_push])
        await outbox.mark_pushed(conn, [row.id for row in to_push], lease_seconds)
        await outbox.defer(conn, still_waiting, lease_seconds)
    if to_push:
        log.info("relay pushed %d job(s)", len(to_push))
    return len(to_push)
