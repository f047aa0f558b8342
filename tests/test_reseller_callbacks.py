"""Reseller callbacks: signed, retried until a 2xx, every attempt recorded, one slow reseller slows no one else."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from core.security import issue_staff_token
from tests.harness import LoketStack, fast_env, final_statuses, register, sole_delivery_when, wait_until
from tests.receiver import Receiver
from web.responses import CallbackEvent


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    server = hooks.start()
    yield hooks
    server.should_exit = True


async def with_callback(api, admin_token, url: str):
    reseller = await register(api, admin_token, saldo=200_000)
    assert (await api.put("/callback", json={"callback_url": url}, headers=reseller.headers)).status_code == 200
    return reseller


async def test_a_callback_is_retried_until_2xx_and_verifiable_with_the_private_key(api, stack: LoketStack, admin_token, receiver: Receiver):
    receiver.fail_first["flaky"] = 2
    reseller = await with_callback(api, admin_token, receiver.url("flaky"))
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "087800001232"}, headers=reseller.headers)).json()
    await final_statuses(api, reseller, [purchase["id"]])

    delivery = await sole_delivery_when(api, reseller, lambda d: d["status"] == "delivered")
    assert delivery["attempts"] == 3 and delivery["trx_id"] == purchase["id"]
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert [a["error"] for a in delivery["attempt_log"]] == ["HTTP 500", "HTTP 500", None]
    arrivals = receiver.of("flaky")
    assert len(arrivals) == 3
    assert len({a.headers["x-loket-delivery"] for a in arrivals}) == 1 and len({a.body for a in arrivals}) == 1
    assert arrivals[1].at - arrivals[0].at >= 0.4  # growing delays (scaled down here: 0.5 s, 1.5 s, ...)
    for arrival in arrivals:
        timestamp = arrival.headers["x-loket-timestamp"]
        expected = hmac.new(reseller.private_key.encode(), f"{timestamp}.".encode() + arrival.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(arrival.headers["x-loket-signature"], f"sha256={expected}")
        assert abs(int(timestamp) - time.time()) < 60
    body = json.loads(arrivals[-1].body)
    assert body["event"] == "transaksi.selesai"
    CallbackEvent.model_validate(body)  # the body /openapi.json documents under webhooks
    assert body["data"]["id"] == purchase["id"] and body["data"]["status"] == "gagal"


async def test_a_dead_endpoint_fails_after_its_retries_and_is_visible_to_operators(api, stack: LoketStack, admin_token):
    reseller = await with_callback(api, admin_token, "http://127.0.0.1:9/nobody-listens")
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081233330000"}, headers=reseller.headers)).json()
    await final_statuses(api, reseller, [purchase["id"]])

    delivery = await sole_delivery_when(api, reseller, lambda d: d["attempts"] >= 2)
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] and delivery["attempt_log"][0]["error"] == "connection failed"
    staff = {"authorization": "Bearer " + issue_staff_token(fast_env()["JWT_SECRET"], "ops", 50)}
    pending = (await api.get("/api/v1/callback-deliveries", params={"status": "pending"}, headers=staff)).json()["data"]
    assert any(d["delivery_id"] == delivery["delivery_id"] and d["reseller_id"] == reseller.id for d in pending)


async def test_a_slow_reseller_endpoint_does_not_slow_another_resellers_callbacks(api, stack: LoketStack, admin_token, receiver: Receiver):
    receiver.hang_seconds["slow"] = 30
    slow = await with_callback(api, admin_token, receiver.url("slow"))
    quick = await with_callback(api, admin_token, receiver.url("quick"))
    slow_buys = await asyncio.gather(*(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0812555{i:05d}"}, headers=slow.headers) for i in range(3)))
    await final_statuses(api, slow, [r.json()["id"] for r in slow_buys])
    await wait_until(lambda: asyncio.sleep(0, len(receiver.of("slow")) >= 3), timeout=10)
    started = time.time()
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081266660000"}, headers=quick.headers)).json()
    await wait_until(lambda: asyncio.sleep(0, bool(receiver.of("quick"))), timeout=10)
    assert receiver.of("quick")[0].at - started < 5  # while three deliveries to the slow endpoint hang
    assert json.loads(receiver.of("quick")[0].body)["data"]["id"] == purchase["id"]


async def test_hanging_endpoints_outnumbering_the_worker_threads_do_not_hold_up_other_callbacks(redis_server, make_stack, admin_token, receiver: Receiver):
    """Deliveries wait on the worker's event loop, not on its threads (workers.in_flight)."""
    loket: LoketStack = make_stack(redis_server.url, worker_processes=1, worker_threads=2)
    receiver.hang_seconds["hanging"] = 30  # past the 10 s callback timeout
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        slow = await with_callback(api, admin_token, receiver.url("hanging"))
        quick = await with_callback(api, admin_token, receiver.url("prompt"))
        slow_buys = await asyncio.gather(*(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0812777{i:05d}"}, headers=slow.headers) for i in range(4)))
        await final_statuses(api, slow, [r.json()["id"] for r in slow_buys])
        await wait_until(lambda: asyncio.sleep(0, len(receiver.of("hanging")) >= 4), timeout=10)
        purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081277770000"}, headers=quick.headers)).json()
        await wait_until(lambda: asyncio.sleep(0, bool(receiver.of("prompt"))), timeout=15)
    hanging, [prompt] = receiver.of("hanging"), receiver.of("prompt")
    # Four deliveries hang at once on a worker of two threads, and the other reseller's callback
    # arrives before the first of them has even timed out.
    assert len([h for h in hanging if h.at < prompt.at]) >= 4
    assert prompt.at < min(h.at for h in hanging) + 10
    assert json.loads(prompt.body)["data"]["id"] == purchase["id"]
