"""How long recovery takes: after a worker holding delayed re-checks is killed, every purchase
still ends within the re-check interval plus the broker's heartbeat timeout (and a few seconds
of polling), with the production share of broker calls that run Dramatiq's maintenance."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import redis.asyncio as aioredis

from core.settings import Settings
from tests.harness import LoketStack, final_statuses, register, wait_until
from tests.test_crash_recovery import assert_each_charged_once

RECHECK_SECONDS = 5
HEARTBEAT_TIMEOUT_SECONDS = 3
POLLING_SLACK_SECONDS = 6  # an idle consumer's poll, a fetch, the provider call and the settle


async def held_delayed_messages(redis_url: str) -> int:
    """Messages that workers have fetched from the delay queues and hold until their time comes."""
    client = aioredis.from_url(redis_url)
    try:
        held = 0
        async for key in client.scan_iter(match="*__acks__*.DQ"):
            held += await client.scard(key)
        return held
    finally:
        await client.aclose()


async def test_a_worker_killed_while_holding_re_checks_delays_no_purchase_past_the_re_check_and_the_heartbeat(
    redis_server, make_stack, admin_token
):
    production_maintenance = str(Settings.model_fields["broker_maintenance_chance"].default)
    loket: LoketStack = make_stack(redis_server.url, extra_env={
        "PPOB_RECHECK_SECONDS": str(RECHECK_SECONDS),
        "BROKER_HEARTBEAT_TIMEOUT_MS": str(HEARTBEAT_TIMEOUT_SECONDS * 1000),
        "BROKER_MAINTENANCE_CHANCE": production_maintenance,
    })  # fmt: skip
    # Numbers ending 1233 are answered Pending and are Sukses a second later, but checks keep
    # answering Pending until told otherwise, and no callback tells Loket.
    await loket.reset_sim(pending_check_resolves=False, callback_url="", pending_ms=1000)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=500_000)
        orders = [{"produk_id": 1, "nomor_tujuan": f"0812{n:04d}1233"} for n in range(20)]
        answers = await asyncio.gather(*(api.post("/beli", json=o, headers=reseller.headers) for o in orders))
        assert [a.status_code for a in answers] == [200] * len(orders), [a.text for a in answers]
        ids = [a.json()["id"] for a in answers]

        async def all_held() -> bool:
            in_proses = loket.db.value(f"SELECT COUNT(*) FROM purchase WHERE status = 'proses' AND id IN ({','.join(map(str, ids))})")
            return in_proses == len(ids) and await held_delayed_messages(redis_server.url) >= len(ids)

        await wait_until(all_held, timeout=20)
        loket.process("worker").kill(signal.SIGKILL)
        killed_at = time.monotonic()
        await loket.configure_sim(pending_check_resolves=True)  # the next re-check decides
        loket.processes.start_worker(1, 8)

        budget = RECHECK_SECONDS + HEARTBEAT_TIMEOUT_SECONDS + POLLING_SLACK_SECONDS
        ended = await final_statuses(api, reseller, ids, timeout=budget + 60)
        took = time.monotonic() - killed_at
        assert {s["status"] for s in ended.values()} == {"sukses"}
        assert took <= budget, f"the last purchase ended {took:.1f} s after the kill; the budget is {budget} s"
    assert_each_charged_once(loket, reseller.id, ended)
