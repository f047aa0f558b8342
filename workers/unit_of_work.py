"""One database transaction whose outbox jobs are pushed to Redis once it has committed.

    async with unit_of_work(engine, redis) as conn:
        await purchases.accept(conn, ...)      # adds an outbox row
    # committed: the job is on its queue now (or, if Redis is down, the relay will push it)

On an exception the transaction rolls back and nothing is pushed; a job is never visible to a
worker before the rows it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.outbox import Job, added_jobs
from workers.enqueue import push_after_commit


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine, redis: Redis) -> AsyncIterator[AsyncConnection]:
    jobs: list[Job] = []
    token = added_jobs.set(jobs)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        added_jobs.reset(token)
    await push_after_commit(redis, jobs)
