"""One database transaction whose outbox jobs are pushed to Redis once it has committed.

    async with unit_of_work(raw.transaction(engine), pusher) as conn:
        await qris.create_deposit(conn, ...)   # adds an outbox row
    # committed: the job is on its queue now (or, if Redis is down, the relay will push it)

The transaction is SQLAlchemy's engine.begin() where a statement is built with SQLAlchemy,
db.raw.transaction() where every statement goes through db.raw, or db.raw.autocommitting() where
one CALL of an intake procedure opens and commits its own (the web's hot paths).

On an exception the transaction rolls back and nothing is pushed; a job is never visible to a
worker before the rows it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from db.outbox import jobs_added
from workers.pusher import Pusher

Conn = TypeVar("Conn")


@asynccontextmanager
async def unit_of_work(transaction: AbstractAsyncContextManager[Conn], pusher: Pusher) -> AsyncIterator[Conn]:
    """transaction: not yet entered; engine.begin(), db.raw.transaction(engine) or db.raw.autocommitting(engine).
    pusher: the process's (workers.pusher), which may push these jobs together with others'."""
    with jobs_added() as jobs:
        async with transaction as conn:
            yield conn
    await pusher.push_after_commit(jobs)
