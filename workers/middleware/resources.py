"""Lets a worker process's work in flight end, then closes its resources (workers.resources), on
its event loop before the loop stops."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from workers import resources

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
"""How long a stopping worker waits for its work in flight: longer than a provider call with its
short retries (PPOB_TIMEOUT_SECONDS, 15 s by default). What is still running then is cancelled;
its outbox row brings the job back."""


class ResourcesMiddleware(dramatiq.Middleware):
    """Must come after AsyncIO in the middleware list: after-hooks run in reverse order, so this
    one runs after the worker threads have stopped (no new work is handed over) and before AsyncIO
    stops the loop."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            return
        cancelled = loop_thread.run_coroutine(resources.in_flight().drain(DRAIN_SECONDS))
        if cancelled:
            log.warning("%d in-flight job(s) cancelled at shutdown; their outbox rows bring them back", cancelled)
        released = resources.release()
        if released is not None:
            loop_thread.run_coroutine(released.close())
