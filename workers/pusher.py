"""Pushing committed jobs in as few Redis calls as the load allows (a group commit for the enqueue).

A push per unit of work (one EVALSHA per accepted purchase) would cost the web about a sixth of
its CPU per accept, most of it redis-py's per-command work rather than Redis's. So the jobs that units of work hand over while a push is on its way wait for it and then go
together in the next one; an idle process pushes at once. Every caller still returns only after
its own jobs are on their queues, or have been left to the outbox relay when Redis failed.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.group_call import GroupCall, GroupCallClosed
from db.outbox import Job
from workers.enqueue import Encoded, encode, push_encoded_after_commit

MAX_JOBS_PER_PUSH = 256  # bounds the Lua script's run, during which Redis serves no one else


class Pusher:
    """The enqueue of one event loop (the web process's, or a worker process's actor loop).

    redis: the client of that loop; a Pusher is never shared between loops.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pushes: GroupCall[Encoded, bool] = GroupCall(self._push, MAX_JOBS_PER_PUSH, name="outbox.push", weight=_jobs_in)

    async def push_after_commit(self, jobs: list[Job], delay_ms: int | None = None) -> bool:
        """Enqueue jobs whose outbox rows are committed; False if Redis failed and the relay will.

        delay_ms: run no sooner than this many milliseconds from now (a timer).
        """
        if not jobs:
            return True
        try:
            # Encoded here, not in the group's task: each message carries its own request's id.
            return await self._pushes(encode(jobs, delay_ms))
        except GroupCallClosed:  # the loop is closing: the relay pushes them
            return False

    async def _push(self, group: list[Encoded]) -> list[bool]:
        keys = [key for encoded in group for key in encoded[0]]
        args = [arg for encoded in group for arg in encoded[1]]
        pushed = await push_encoded_after_commit(self.redis, (keys, args))
        return [pushed] * len(group)


def _jobs_in(encoded: Encoded) -> int:
    return len(encoded[0]) // 2  # a queue key and its messages' key per job
