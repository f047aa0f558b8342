"""Calls that arrive while one is on its way go together in the next one: a group commit.

A worker process has up to WORKER_IN_FLIGHT purchases on its event loop at once. Transactions of
their own to start and to settle each would cost two commits, two pool checkouts and two round
trips per purchase: about a third of a worker's CPU and most of MariaDB's work for a purchase.
Through a GroupCall, the starts (or settles) that queue up while one transaction
is on its way share the next one. An idle process still calls at once (with the callers of the
same moment).

Each run is measured by name (core.metrics: loket_group_call_seconds and _items_total): a group
call whose runs fill its process's time is where that process's callers wait, the first thing to
read when a rate stops growing (bench: the "group calls" rows).

workers.pusher does the same for the enqueue to Redis, and web.intake for the web's accepts,
webhook intake and status reads. One group runs at a time: a call waits at most for the group
before its own, and the process's database work goes in as few round trips as its load allows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, TypeVar

from core import metrics

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class GroupCallClosed(Exception):
    """The call's group never ran: its task was cancelled (the event loop is closing)."""


class GroupCall(Generic[Item, Answer]):
    """One kind of call on one event loop, whose concurrent callers share a run.

    run: does the work of a group of items and answers one result per item, in their order. One
    run at a time, except that when a group of more than one fails, its items are run again each
    alone (concurrently), so a bad item fails only its own caller.
    limit: the most weight one run takes.
    weight: an item's share of the limit (1 each by default).
    name: what the runs do, in the domain's words ("purchases.accept"): their metrics' label.
    """

    def __init__(
        self, run: Callable[[list[Item]], Awaitable[list[Answer]]], limit: int, *, name: str, weight: Callable[[Item], int] | None = None
    ) -> None:
        self._run = run
        self._limit = limit
        self._weight = weight or (lambda _item: 1)
        self._seconds = metrics.group_call_seconds.labels(name)
        self._items = metrics.group_call_items.labels(name)
        metrics.group_call_processes.labels(name).set(1)
        self._waiting: deque[_Waiting[Item, Answer]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Answer:
        """The answer for item, once the group it went in has run; or the exception of its run."""
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, done))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_groups())
        # A cancelled caller cancels only its own future: the group runs in its own task, for the
        # others, and leaves a cancelled future alone (no shield: its extra future and callbacks
        # were ~2.5% of the web's CPU per GET /status).
        return await done

    async def _run_groups(self) -> None:
        group: list[_Waiting[Item, Answer]] = []
        try:
            while self._waiting:
                group = self._take_group()
                await self._run_group(group)
                group = []
        finally:
            self._runner = None
            for waiting in [*group, *self._waiting]:  # left over only when this task was cancelled
                if not waiting.done.done():
                    waiting.done.set_exception(GroupCallClosed())
            self._waiting.clear()

    async def _run_group(self, group: list[_Waiting[Item, Answer]]) -> None:
        started = time.perf_counter()
        try:
            answers = await self._run([waiting.item for waiting in group])
        except Exception as failure:
            self._measure(started, group)
            if len(group) == 1:
                _fail(group[0], failure)
                return
            await asyncio.gather(*(self._run_group([waiting]) for waiting in group))
            return
        self._measure(started, group)
        for waiting, answer in zip(group, answers, strict=True):
            if not waiting.done.done():
                waiting.done.set_result(answer)

    def _measure(self, started: float, group: list[_Waiting[Item, Answer]]) -> None:
        self._seconds.observe(time.perf_counter() - started)
        self._items.inc(len(group))

    def _take_group(self) -> list[_Waiting[Item, Answer]]:
        group = [self._waiting.popleft()]
        weight = self._weight(group[0].item)
        while self._waiting and weight + self._weight(self._waiting[0].item) <= self._limit:
            waiting = self._waiting.popleft()
            group.append(waiting)
            weight += self._weight(waiting.item)
        return group


class _Waiting(NamedTuple, Generic[Item, Answer]):
    item: Item
    done: asyncio.Future[Answer]


def _fail(waiting: _Waiting[Item, Answer], failure: Exception) -> None:
    if not waiting.done.done():
        waiting.done.set_exception(failure)
