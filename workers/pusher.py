"""Pushing committed jobs in as few Redis calls as the load allows (a group commit for the enqueue).

Each unit of work used to push its own jobs: one EVALSHA per accepted purchase, 17% of the web's
CPU per accept (py-spy, issue 4), most of it redis-py's per-command work rather than Redis's.
Here the jobs that units of work hand over while a push is on its way wait for it and then go
together in the next one; an idle process pushes at once. Every caller still returns only after
its own jobs are on their queues, or have been left to the outbox relay when Redis failed.
"""

from __future__ import annotations

import asyncio
from collections import deque

from redis.asyncio import Redis

from db.outbox import Job
from workers.enqueue import push_after_commit

MAX_JOBS_PER_PUSH = 256  # bounds the Lua script's run, during which Redis serves no one else


class Pusher:
    """The enqueue of one event loop (the web process's, or a worker process's actor loop).

    redis: the client of that loop; a Pusher is never shared between loops.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: deque[tuple[list[Job], asyncio.Future[bool]]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def push_after_commit(self, jobs: list[Job]) -> bool:
        """Enqueue jobs whose outbox rows are committed; False if Redis failed and the relay will."""
        if not jobs:
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((jobs, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        # shield: a cancelled caller stops waiting; its jobs still go (their rows are committed).
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        batch: list[tuple[list[Job], asyncio.Future[bool]]] = []
        try:
            while self._waiting:
                batch = self._take_batch()
                _resolve(batch, await push_after_commit(self.redis, [job for jobs, _ in batch for job in jobs]))
                batch = []
        finally:
            self._flusher = None
            # Left over only when this task was cancelled (the loop is closing): the relay pushes them.
            _resolve([*batch, *self._waiting], False)
            self._waiting.clear()

    def _take_batch(self) -> list[tuple[list[Job], asyncio.Future[bool]]]:
        batch = [self._waiting.popleft()]
        size = len(batch[0][0])
        while self._waiting and size + len(self._waiting[0][0]) <= MAX_JOBS_PER_PUSH:
            entry = self._waiting.popleft()
            batch.append(entry)
            size += len(entry[0])
        return batch


def _resolve(batch: list[tuple[list[Job], asyncio.Future[bool]]], pushed: bool) -> None:
    for _, done in batch:
        if not done.done():
            done.set_result(pushed)
