"""Work that goes on on a worker's event loop after its message is acknowledged, so a worker
thread is not held for the length of a provider, gateway or reseller-callback call.

An async actor holds its Dramatiq worker thread until its coroutine ends, so a worker finishes
at most threads / latency jobs a second: with a provider that answers in 2 s, 2 processes x 32
threads can finish 32 purchases a second, and 2 x 128 threads finished 99 (measured). An actor whose job
has an outbox row can hand its work here and return at once: the work then waits on the event
loop, not on a thread, and the bound becomes the limit below / latency (2 x 256 / 2 s: 239
purchases a second measured, with 2 x 8 threads).

What the hand-off gives up, and what covers it: the message is acknowledged before the work
ends, so Dramatiq's retries never see the work fail (the work schedules its own retry), and the
work of a killed process is not found by Dramatiq's heartbeat but by the outbox relay, once the
job's row falls due (within OUTBOX_LEASE_SECONDS; not sooner than RECENTLY_ACKED_MS after the
acknowledgement, workers.enqueue).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from core.logs import describe_failure
from core.metrics import worker_in_flight

log = logging.getLogger(__name__)

TIME_LIMIT_SECONDS = 120.0
"""The broker's TimeLimit for a message (workers.broker), for work that outlives its message."""


class InFlight:
    """The work in flight in one worker process."""

    def __init__(
        self,
        limit: int,
        time_limit: float = TIME_LIMIT_SECONDS,
        keep_due: Callable[[list[str]], Awaitable[None]] | None = None,
        keep_every: float = 20.0,
    ) -> None:
        """limit: how much work may be in flight at once in this process. Past it, hand_over()
        waits for a slot while holding its worker thread, so a process takes no more messages
        than it can carry; the rest wait in Redis, visible to the queue metrics and to other
        processes.

        time_limit: seconds after which a piece of work is cancelled, as Dramatiq's TimeLimit
        does for a message: a call that never returns must not keep its slot for good.

        keep_due / keep_every: every keep_every seconds, keep_due(job keys) is given the jobs
        whose work is running, to keep their outbox rows from falling due: the heartbeat that
        Dramatiq's message gave while a thread held it. The relay pushes a job again only when
        its worker has stopped beating (a killed process), not while a slow call is running.
        """
        self._slots = threading.BoundedSemaphore(limit)
        self._time_limit = time_limit
        self._keep_due = keep_due
        self._keep_every = keep_every
        self._keeper: asyncio.Task[None] | None = None
        self._tasks: dict[asyncio.Task[None], str] = {}

    def hand_over(self, loop: asyncio.AbstractEventLoop, job_key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """From a worker thread: take a slot, start work on loop, and return without waiting for it.

        The thread waits for nothing on the loop: awaiting the hand-over (Dramatiq's AsyncIO
        run_coroutine: a future, two tasks and a wake-up of the thread) costs a worker as much time
        as the message's acknowledgement.

        loop: the worker's event loop. job_key: the outbox row the work is done for, kept from
        falling due while it runs. work: makes the coroutine, on the loop and in this thread's
        context (the log fields go along); it must end by itself (its own timeouts) and handle its
        own failures: an exception that escapes it is logged, and its outbox row brings the job back.
        """
        self._slots.acquire()
        try:
            loop.call_soon_threadsafe(self._begin, job_key, work, context=contextvars.copy_context())
        except BaseException:  # the loop has closed: the message is not acknowledged, Dramatiq retries it
            self._slots.release()
            raise

    def _begin(self, job_key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # create_task copies the context this callback runs in: the worker thread's (hand_over).
        task = asyncio.get_running_loop().create_task(self._run(work))
        self._tasks[task] = job_key
        task.add_done_callback(self._tasks.pop)
        if self._keep_due is not None and self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_rows_due(self._keep_due))

    async def _keep_rows_due(self, keep_due: Callable[[list[str]], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self._keep_every)
            keys = list(self._tasks.values())
            if not keys:
                continue
            try:
                await keep_due(keys)
            except Exception as error:  # the next beat tries again; meanwhile the rows' leases run on
                log.warning("work in flight: outbox rows not kept due (%s)", describe_failure(error))

    async def _run(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        worker_in_flight.inc()
        try:
            async with asyncio.timeout(self._time_limit):
                await work()
        except TimeoutError:
            log.warning("in-flight work cancelled after %.0f s; its outbox row brings the job back when due", self._time_limit)
        except Exception:
            log.exception("in-flight work failed; its outbox row brings the job back when due")
        finally:
            worker_in_flight.dec()
            self._slots.release()

    async def drain(self, timeout: float) -> int:
        """Wait up to timeout seconds for the work in flight to end, then cancel what is left
        (its outbox rows bring it back). Returns how many were cancelled."""
        pending: set[asyncio.Task[None]] = set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        return len(pending)
