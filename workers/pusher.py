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
from typing import NamedTuple

from redis.asyncio import Redis

from db.outbox import Job
from workers.enqueue import Encoded, encode, push_encoded_after_commit

MAX_JOBS_PER_PUSH = 256  # bounds the Lua script's run, during which Redis serves no one else


class Pusher:
    """The enqueue of one event loop (the web process's, or a worker process's actor loop).

    redis: the client of that loop; a Pusher is never shared between loops.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: deque[_Waiting] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def push_after_commit(self, jobs: list[Job]) -> bool:
        """Enqueue jobs whose outbox rows are committed; False if Redis failed and the relay will."""
        if not jobs:
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Encoded here, not in the flusher task: each message carries its own request's id.
        self._waiting.append(_Waiting(encode(jobs), len(jobs), done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        # shield: a cancelled caller stops waiting; its jobs still go (their rows are committed).
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = self._take_batch()
                keys = [key for waiting in batch for key in waiting.encoded[0]]
                args = [arg for waiting in batch for arg in waiting.encoded[1]]
                _resolve(batch, await push_encoded_after_commit(self.redis, (keys, args)))
                batch = []
        finally:
            self._flusher = None
            # Left over only when this task was cancelled (the loop is closing): the relay pushes them.
            _resolve([*batch, *self._waiting], False)
            self._waiting.clear()

    def _take_batch(self) -> list[_Waiting]:
        batch = [self._waiting.popleft()]
        size = batch[0].jobs
        while self._waiting and size + self._waiting[0].jobs <= MAX_JOBS_PER_PUSH:
            waiting = self._waiting.popleft()
            batch.append(waiting)
            size += waiting.jobs
        return batch


class _Waiting(NamedTuple):
    encoded: Encoded
    jobs: int
    done: asyncio.Future[bool]


def _resolve(batch: list[_Waiting], pushed: bool) -> None:
    for waiting in batch:
        if not waiting.done.done():
            waiting.done.set_result(pushed)
