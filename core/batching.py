"""Group commit for Redis calls: what callers submit while a call is on its way goes in the next one.

Under load most of a Redis command's cost is the client's (redis-py's asyncio client: ~125 us of
CPU per EVALSHA here), not Redis's. A process that would send one small script call per request
sends one per batch instead; an idle process sends at once, so nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class BatchAbandoned(RuntimeError):
    """The batch task was cancelled (its event loop is closing) before this item was sent."""


class _Waiting(NamedTuple, Generic[Item, Answer]):
    item: Item
    size: int
    answer: asyncio.Future[Answer]


class Batcher(Generic[Item, Answer]):
    """Sends items in batches through one call; belongs to one event loop.

    send: sends a batch and answers one result per item, in order; an exception it raises is
        what every caller of that batch gets.
    size_of: how much an item adds to a batch (for a cap on the call's work); 1 each by default.
    max_size: a batch never exceeds it, except a single item that is larger alone.
    """

    def __init__(
        self, send: Callable[[list[Item]], Awaitable[list[Answer]]], size_of: Callable[[Item], int] = lambda _: 1, max_size: int = 256
    ) -> None:
        self._send = send
        self._size_of = size_of
        self._max_size = max_size
        self._waiting: deque[_Waiting[Item, Answer]] = deque()
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        """The item's answer, once the batch that carries it has been sent."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, self._size_of(item), answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        # shield: a caller that is cancelled stops waiting, but its item is still sent.
        return await asyncio.shield(answer)

    async def _send_all(self) -> None:
        batch: list[_Waiting[Item, Answer]] = []
        try:
            while self._waiting:
                batch = self._take_batch()
                try:
                    answers = await self._send([waiting.item for waiting in batch])
                except Exception as error:  # each caller handles what the call raised, as if it had sent alone
                    for waiting in batch:
                        _settle(waiting.answer, error=error)
                else:
                    for waiting, answer in zip(batch, answers, strict=True):
                        _settle(waiting.answer, answer=answer)
                batch = []
        finally:
            self._sender = None
            for waiting in [*batch, *self._waiting]:
                _settle(waiting.answer, error=BatchAbandoned())
            self._waiting.clear()

    def _take_batch(self) -> list[_Waiting[Item, Answer]]:
        batch = [self._waiting.popleft()]
        size = batch[0].size
        while self._waiting and size + self._waiting[0].size <= self._max_size:
            waiting = self._waiting.popleft()
            batch.append(waiting)
            size += waiting.size
        return batch


def _settle(future: asyncio.Future, *, answer: object = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # its caller may have stopped waiting (cancelled): no "never retrieved" log
    else:
        future.set_result(answer)
