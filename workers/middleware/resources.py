"""Closes a worker process's resources (workers.resources) on its event loop before the loop stops."""

from __future__ import annotations

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from workers import resources


class ResourcesMiddleware(dramatiq.Middleware):
    """Must come after AsyncIO in the middleware list, so its shutdown hook runs while the loop lives."""

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        released = resources.release()
        if released is not None and loop_thread is not None:
            loop_thread.run_coroutine(released.close())
