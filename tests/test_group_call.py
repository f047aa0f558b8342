"""core.group_call: concurrent callers share runs, and a bad item fails only its own caller."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from core.group_call import GroupCall, GroupCallClosed


class Recorder:
    """A run that doubles its items, slowly, and refuses negative ones."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        await asyncio.sleep(0.01)
        if any(item < 0 for item in items):
            raise ValueError("negative")
        return [2 * item for item in items]


async def test_callers_of_the_same_moment_share_a_run():
    run = Recorder()
    call = GroupCall(run, limit=40, name="test")
    answers = await asyncio.gather(*(call(n) for n in range(100)))
    assert answers == [2 * n for n in range(100)]
    # The calls of the same moment go together, in groups of at most 40.
    assert [len(group) for group in run.groups] == [40, 40, 20]
    assert sorted(item for group in run.groups for item in group) == list(range(100))


async def test_each_run_is_measured_by_name_with_its_items_and_time():
    """What an operator reads to see a group call fill its process's time (core.metrics)."""

    def sample(metric: str) -> float:
        return REGISTRY.get_sample_value(metric, {"name": "test.measured"}) or 0.0

    run = Recorder()
    call = GroupCall(run, limit=40, name="test.measured")
    assert REGISTRY.get_sample_value("loket_group_call_processes", {"name": "test.measured"}) == 1
    await asyncio.gather(*(call(n) for n in range(100)))
    with pytest.raises(ValueError):
        await asyncio.gather(call(-1), call(5))  # a failed group of two, then each alone: three runs
    assert sample("loket_group_call_seconds_count") == 3 + 3
    assert sample("loket_group_call_items_total") == 100 + 2 + 2
    assert sample("loket_group_call_seconds_sum") >= 0.01 * 6  # each run sleeps 10 ms
    assert REGISTRY.get_sample_value("loket_group_call_seconds_bucket", {"name": "test.measured", "le": "0.005"}) == 0


async def test_an_item_whose_group_fails_is_run_again_alone_so_only_its_caller_fails():
    run = Recorder()
    call = GroupCall(run, limit=10, name="test")
    first = asyncio.create_task(call(0))
    await asyncio.sleep(0)  # the first call is on its way; the next five queue behind it
    answers = await asyncio.gather(*(call(n) for n in (1, 2, -3, 4, 5)), return_exceptions=True)
    assert await first == 0
    assert answers[:2] == [2, 4] and answers[3:] == [8, 10]
    assert isinstance(answers[2], ValueError)
    assert run.groups[1] == [1, 2, -3, 4, 5]  # failed together, then each alone
    assert sorted(map(tuple, run.groups[2:])) == [(-3,), (1,), (2,), (4,), (5,)]


async def test_callers_that_come_while_a_run_is_on_its_way_share_the_next_one():
    run = Recorder()
    call = GroupCall(run, limit=40, name="test")
    first = asyncio.create_task(call(0))
    await asyncio.sleep(0.005)  # on its way
    answers = await asyncio.gather(*(call(n) for n in range(1, 31)))
    assert await first == 0 and answers == [2 * n for n in range(1, 31)]
    assert run.groups == [[0], list(range(1, 31))]


async def test_weights_bound_a_group():
    run = Recorder()
    call = GroupCall(run, limit=10, weight=lambda item: item, name="test")
    await asyncio.gather(*(call(n) for n in (1, 4, 4, 4, 9)))
    assert run.groups == [[1, 4, 4], [4], [9]]


async def test_a_cancelled_caller_does_not_take_its_group_down():
    run = Recorder()
    call = GroupCall(run, limit=10, name="test")
    first = asyncio.create_task(call(1))
    await asyncio.sleep(0)
    leaving, staying = asyncio.create_task(call(2)), asyncio.create_task(call(3))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await first == 2 and await staying == 6
    assert run.groups == [[1], [2, 3]]


async def test_callers_still_waiting_when_the_loop_closes_hear_so():
    started = asyncio.Event()

    async def never_answers(items: list[int]) -> list[int]:
        started.set()
        await asyncio.Event().wait()
        return items

    call = GroupCall(never_answers, limit=10, name="test")
    callers = [asyncio.create_task(call(n)) for n in range(3)]
    await started.wait()
    runner = next(task for task in asyncio.all_tasks() if task not in callers and task is not asyncio.current_task())
    runner.cancel()
    for caller in callers:
        with pytest.raises(GroupCallClosed):
            await caller
    # The next call starts a new runner.
    call._run = lambda items: asyncio.sleep(0, result=items)  # type: ignore[method-assign]
    assert await call(7) == 7
