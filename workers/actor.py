"""Loket's actor decorators: async functions run on the worker's event loop *with* the context of
the worker thread that took the message.

Dramatiq's own async support starts the coroutine in the loop thread's context, so contextvars
set by middleware (the log context) are invisible to async actors. Here the
worker thread's context is copied into the task that runs the coroutine.

actor: the thread waits for the coroutine, as Dramatiq's async actors do. hand_off_actor: the
coroutine is handed to the process's work in flight (workers.in_flight) and the message is
acknowledged at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import dramatiq
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread

from core import context
from workers import resources


def actor(*, actor_name: str, queue_name: str, **options: Any) -> Callable[[Callable[..., Coroutine[Any, Any, None]]], dramatiq.Actor]:
    """Declare an async actor.

    actor_name / queue_name: as in dramatiq.actor; options: any other dramatiq actor option.
    """

    def decorate(fn: Callable[..., Coroutine[Any, Any, None]]) -> dramatiq.Actor:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            loop_thread = _loop_thread()
            worker_context = contextvars.copy_context()

            async def in_worker_context() -> None:
                await asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=worker_context)

            loop_thread.run_coroutine(in_worker_context())

        return dramatiq.actor(actor_name=actor_name, queue_name=queue_name, **options)(run)

    return decorate


def hand_off_actor(
    *, actor_name: str, queue_name: str, job_key: Callable[..., str], **options: Any
) -> Callable[[Callable[..., Coroutine[Any, Any, None]]], dramatiq.Actor]:
    """Declare an actor whose coroutine runs after its message is acknowledged, on the worker's
    event loop (workers.in_flight), so a provider, gateway or callback call holds no worker
    thread. The actor returns once the work has its slot; the work schedules its own retries.

    job_key: the outbox row of the work, from the message's arguments: the relay pushes the job
    again if the process dies before the work ends. actor_name / queue_name / options: as in
    dramatiq.actor.
    """

    def decorate(fn: Callable[..., Coroutine[Any, Any, None]]) -> dramatiq.Actor:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            resources.in_flight().hand_over(_loop_thread().loop, job_key(*args, **kwargs), functools.partial(fn, *args, **kwargs))

        return dramatiq.actor(actor_name=actor_name, queue_name=queue_name, **options)(run)

    return decorate


def hand_off_each_actor(
    *, actor_name: str, queue_name: str, job_key: Callable[..., str], **options: Any
) -> Callable[[Callable[..., Coroutine[Any, Any, None]]], dramatiq.Actor]:
    """Declare an actor whose message carries several pieces of work, each handed off as a
    hand_off_actor's one, in the log context of the request it came from: one message, one fetch,
    one pass through the middleware and one acknowledgement for all.

    The message's one argument: a list of [args, request id], args being the decorated
    function's positional arguments for one piece. job_key / actor_name / queue_name / options:
    as for hand_off_actor. A message that fails part-way (the loop closing) is retried whole;
    its pieces are idempotent, as every hand-off's work is.
    """

    def decorate(fn: Callable[..., Coroutine[Any, Any, None]]) -> dramatiq.Actor:
        @functools.wraps(fn)
        def run(pieces: list[list[Any]]) -> None:
            in_flight, loop = resources.in_flight(), _loop_thread().loop
            for args, request_id in pieces:
                context.request_id.set(request_id)  # hand_over() copies this thread's context
                in_flight.hand_over(loop, job_key(*args), functools.partial(fn, *args))

        return dramatiq.actor(actor_name=actor_name, queue_name=queue_name, **options)(run)

    return decorate


def _loop_thread() -> EventLoopThread:
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the AsyncIO middleware is not installed")
    return loop_thread
