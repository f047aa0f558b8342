"""Provider calls wait on a worker's event loop, not on its threads (workers.in_flight)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from core import context
from tests.harness import LoketStack, Reseller, final_statuses, register, wait_until
from tests.test_crash_recovery import assert_each_charged_once
from workers.in_flight import InFlight


async def buy_at_a_slow_provider(loket: LoketStack, api: httpx.AsyncClient, admin_token: str, count: int, at_once: int) -> tuple[Reseller, list[int]]:
    """count purchases with the provider answering in 1 s (under the tests' PPOB_TIMEOUT_SECONDS,
    1.5); returns once at_once of them are at the provider together."""
    await loket.reset_sim(latency_ms=1000)
    reseller = await register(api, admin_token, saldo=1_000_000)
    responses = await asyncio.gather(
        *(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0816{i:08d}"}, headers=reseller.headers) for i in range(count))
    )
    assert [r.status_code for r in responses] == [200] * count

    async def at_the_provider() -> bool:
        return loket.db.value("SELECT COUNT(*) FROM purchase WHERE status = 'proses'") >= at_once

    await wait_until(at_the_provider, timeout=15, every=0.05)
    return reseller, [r.json()["id"] for r in responses]


async def test_slow_provider_calls_in_flight_outnumber_the_worker_threads(redis_server, make_stack, admin_token):
    loket: LoketStack = make_stack(redis_server.url, worker_processes=1, worker_threads=2)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        # A thread held per call would let 2 purchases be at the provider at a time.
        reseller, ids = await buy_at_a_slow_provider(loket, api, admin_token, count=30, at_once=20)
        ended = await final_statuses(api, reseller, ids, timeout=60)
    assert {s["status"] for s in ended.values()} == {"sukses"}
    assert_each_charged_once(loket, reseller.id, ended)
    # One provider call each: no job was pushed again while its call was in flight.
    assert [t["calls"] for t in await loket.sim_transactions()] == [1] * 30


async def test_a_stopping_worker_lets_its_calls_in_flight_end(redis_server, make_stack, admin_token):
    loket: LoketStack = make_stack(redis_server.url, worker_processes=1, worker_threads=2)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller, ids = await buy_at_a_slow_provider(loket, api, admin_token, count=10, at_once=10)
        worker = loket.process("worker")
        worker.stop(timeout=30)  # SIGTERM, as a deploy does; returns once the process has exited
        assert worker.popen.returncode is not None
        # Ended by the stopping worker itself: no worker runs now.
        assert loket.db.rows("SELECT status, COUNT(*) AS n FROM purchase GROUP BY status") == [{"status": "sukses", "n": 10}]
        ended = await final_statuses(api, reseller, ids, timeout=5)
    assert_each_charged_once(loket, reseller.id, ended)
    assert [t["calls"] for t in await loket.sim_transactions()] == [1] * 10
    assert "cancelled at shutdown" not in worker.log()


async def hand_over(in_flight: InFlight, job_key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """As a worker thread does (workers.actor.hand_off_actor): from a thread, onto this loop."""
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(in_flight.hand_over, loop, job_key, work)
    await asyncio.sleep(0)  # the loop starts it


async def test_work_past_the_limit_waits_for_a_slot_and_hung_work_is_cancelled_at_the_time_limit():
    in_flight = InFlight(limit=2, time_limit=0.2)
    ended: list[str] = []

    async def hang(name: str) -> None:
        await asyncio.sleep(60)
        ended.append(name)

    async def quick(name: str) -> None:
        ended.append(name)

    await hand_over(in_flight, "t:a", lambda: hang("a"))
    await hand_over(in_flight, "t:b", lambda: hang("b"))
    third = asyncio.create_task(hand_over(in_flight, "t:c", lambda: quick("c")))
    await asyncio.sleep(0.05)
    assert not third.done()  # both slots taken: the worker thread waits
    await asyncio.wait_for(third, timeout=2)  # the hung pair is cancelled at 0.2 s, freeing slots
    assert await in_flight.drain(timeout=2) == 0
    assert ended == ["c"]


async def test_drain_lets_work_end_within_its_timeout_and_cancels_the_rest():
    in_flight = InFlight(limit=10)
    ended: list[str] = []

    async def takes(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        ended.append(name)

    await hand_over(in_flight, "t:short", lambda: takes("short", 0.05))
    await hand_over(in_flight, "t:long", lambda: takes("long", 60))
    assert await in_flight.drain(timeout=0.5) == 1
    assert ended == ["short"]


async def test_the_rows_of_running_work_are_kept_due_until_it_ends():
    beats: list[list[str]] = []

    async def keep_due(job_keys: list[str]) -> None:
        beats.append(sorted(job_keys))

    in_flight = InFlight(limit=10, keep_due=keep_due, keep_every=0.05)
    await hand_over(in_flight, "t:slow", lambda: asyncio.sleep(0.3))
    await hand_over(in_flight, "t:quick", lambda: asyncio.sleep(0))
    await asyncio.sleep(0.5)
    assert beats and beats[0] == ["t:slow"] and ["t:slow"] in beats
    assert all(keys == ["t:slow"] for keys in beats if keys)  # only while it ran; the quick one had ended
    assert await in_flight.drain(timeout=1) == 0


async def test_work_runs_in_the_context_of_the_thread_that_handed_it_over():
    in_flight = InFlight(limit=1)
    seen: list[str | None] = []

    async def note() -> None:
        seen.append(context.request_id.get())

    def from_a_worker_thread(loop: asyncio.AbstractEventLoop) -> None:
        context.request_id.set("req-7")  # as the log-context middleware sets it from the message
        in_flight.hand_over(loop, "t:ctx", note)

    await asyncio.to_thread(from_a_worker_thread, asyncio.get_running_loop())
    assert await in_flight.drain(timeout=1) == 0
    assert seen == ["req-7"]


async def test_a_hand_over_to_a_closed_loop_fails_and_gives_its_slot_back():
    in_flight = InFlight(limit=1)
    closed = asyncio.new_event_loop()
    closed.close()
    with pytest.raises(RuntimeError):
        in_flight.hand_over(closed, "t:x", lambda: asyncio.sleep(0))
    await hand_over(in_flight, "t:y", lambda: asyncio.sleep(0))  # the one slot is free again
    assert await in_flight.drain(timeout=1) == 0


@pytest.mark.parametrize(("prefetch", "held"), [(0, 2), (5, 5)])
async def test_a_worker_holds_no_more_messages_than_its_prefetch(redis_server, make_stack, admin_token, prefetch, held):
    """workers.run --prefetch reaches Dramatiq's consumer (0 keeps Dramatiq's own: twice the
    threads). With its one in-flight slot taken by a slow provider call, the worker's thread
    waits to hand over the next purchase, and the consumer fetches ahead up to the prefetch."""
    loket: LoketStack = make_stack(
        redis_server.url, {"WORKER_IN_FLIGHT": "1"}, worker_processes=1, worker_threads=1, worker_prefetch=prefetch
    )
    namespace = loket.processes.env["REDIS_NAMESPACE"]
    redis = Redis.from_url(redis_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        await loket.reset_sim(latency_ms=1000)
        reseller = await register(api, admin_token, saldo=1_000_000)
        ids = []
        for i in range(12):  # one after the other: each accept its own group, so each job its own message
            response = await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0816{i:08d}"}, headers=reseller.headers)
            assert response.status_code == 200
            ids.append(response.json()["id"])

        async def fetched_not_acknowledged() -> int:
            keys = [key async for key in redis.scan_iter(f"{namespace}:__acks__.*.purchases")]
            return sum([await redis.scard(key) for key in keys])

        async def holding_its_prefetch() -> bool:
            return await fetched_not_acknowledged() == held

        await wait_until(holding_its_prefetch, timeout=5, every=0.05)
        await asyncio.sleep(0.3)  # and no more, while the queue still has messages
        assert await fetched_not_acknowledged() == held
        assert await redis.llen(f"{namespace}:purchases") > 0
        ended = await final_statuses(api, reseller, ids, timeout=60)
    await redis.aclose()
    assert {s["status"] for s in ended.values()} == {"sukses"}
    assert_each_charged_once(loket, reseller.id, ended)
