"""Loket's actor decorator: async functions run on the worker's event loop *with* the context of
the worker thread that took the message.

Dramatiq's own async support starts the coroutine in the loop thread's context, so contextvars
set by middleware (CurrentMessage, the log context) are invisible to async actors. Here the
worker thread's context is copied into the task that runs the coroutine.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread


def actor(*, actor_name: str, queue_name: str, **options: Any) -> Callable[[Callable[..., Awaitable[None]]], dramatiq.Actor]:
    """Declare an async actor.

    actor_name / queue_name: as in dramatiq.actor; options: any other dramatiq actor option.
    """

    def decorate(fn: Callable[..., Awaitable[None]]) -> dramatiq.Actor:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            loop_thread = get_event_loop_thread()
            if loop_thread is None:
                raise RuntimeError("the AsyncIO middleware is not installed")
            worker_context = contextvars.copy_context()

            async def in_worker_context() -> None:
                await asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=worker_context)

            loop_thread.run_coroutine(in_worker_context())

        return dramatiq.actor(run, actor_name=actor_name, queue_name=queue_name, **options)

    return decorate

