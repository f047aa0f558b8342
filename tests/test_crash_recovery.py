"""Nothing accepted is lost: a worker killed mid-purchase, Redis lost and restarted."""

from __future__ import annotations

import asyncio
import signal

import httpx

from core.security import issue_staff_token
from tests.harness import LoketStack, fast_env, final_statuses, register, wait_until


def assert_each_charged_once(loket: LoketStack, reseller_id: int, ended: dict[int, dict]) -> None:
    for purchase_id, status in ended.items():
        entries = loket.db.rows("SELECT jenis FROM ledger_entry WHERE purchase_id = %s ORDER BY id", purchase_id)
        expected = ["pembelian"] if status["status"] == "sukses" else ["pembelian", "refund"]
        assert [e["jenis"] for e in entries] == expected, (purchase_id, entries)
    assert loket.db.ledger_matches_saldo(reseller_id)
    assert loket.db.value("SELECT COUNT(*) FROM outbox") == 0


async def test_worker_killed_mid_purchase_the_purchases_still_end_charged_once(redis_server, make_stack, admin_token):
    loket: LoketStack = make_stack(redis_server.url, worker_threads=8)
    await loket.reset_sim(latency_ms=2000)  # every provider call is in flight for 2 s
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=1_000_000)
        responses = await asyncio.gather(
            *(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"0813000{i:05d}"}, headers=reseller.headers) for i in range(12))
        )
        ids = [r.json()["id"] for r in responses]

        async def in_flight() -> bool:
            return loket.db.value("SELECT COUNT(*) FROM purchase WHERE status = 'proses'") >= 4

        await wait_until(in_flight, timeout=10, every=0.05)
        loket.process("worker").kill(signal.SIGKILL)
        assert loket.db.value("SELECT COUNT(*) FROM purchase WHERE status IN ('pending', 'proses')") > 0
        await loket.reset_sim()  # the provider is fast again; it keeps what it has already sold
        loket.processes.start_worker(1, 8)

        ended = await final_statuses(api, reseller, ids, timeout=60)
        assert {s["status"] for s in ended.values()} == {"sukses"}
        assert_each_charged_once(loket, reseller.id, ended)
        # The provider sold each purchase once: one record per ref_id, one per purchase.
        refs = {t["ref_id"] for t in await loket.sim_transactions()}
        assert len(refs) == 12
        assert refs == {r["provider_ref"] for r in loket.db.rows("SELECT provider_ref FROM purchase")}


async def test_redis_lost_while_accepting_then_back_nothing_is_lost(redis_server, make_stack, admin_token):
    loket: LoketStack = make_stack(redis_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=1_000_000)

        async def buy_many(prefix: str, count: int) -> list[int]:
            responses = await asyncio.gather(
                *(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"{prefix}{i:05d}"}, headers=reseller.headers) for i in range(count))
            )
            assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses if r.status_code != 200]
            return [r.json()["id"] for r in responses]

        before = await buy_many("0814000", 10)
        redis_server.stop()
        during = await buy_many("0814111", 20)  # accepted: MySQL has them, Redis has nothing
        ready = await api.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("down")
        await asyncio.sleep(1)
        redis_server.start()  # empty: whatever was queued is gone

        ended = await final_statuses(api, reseller, before + during, timeout=60)
        assert {s["status"] for s in ended.values()} == {"sukses"}
        assert_each_charged_once(loket, reseller.id, ended)


async def test_kiosk_transactions_never_stay_pending_past_expiry_through_a_worker_kill_and_a_lost_redis(redis_server, make_stack):
    """The expiry timers are delayed messages: killing the worker that holds them and wiping Redis
    loses them all; the sweeper in clock still expires every transaction."""
    from tests.test_kiosk_flow import new_location

    loket: LoketStack = make_stack(redis_server.url)
    admin = {"authorization": "Bearer " + issue_staff_token(fast_env()["JWT_SECRET"], "ops", 50)}
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        location_id = await new_location(api, admin)
        created = await asyncio.gather(*(api.post("/api/v1/transactions", json={"location_id": location_id}, headers=admin) for _ in range(8)))
        assert [c.status_code for c in created] == [201] * 8
        assert all(c.json()["data"]["tr_qris_string"] for c in created)
        loket.process("worker").kill(signal.SIGKILL)  # it held the prefetched timers in memory
        redis_server.stop()
        redis_server.start()  # and Redis comes back empty
        assert loket.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_status = 'PENDING'") == 8

        async def none_pending() -> bool:
            return loket.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_status = 'PENDING'") == 0

        await wait_until(none_pending, timeout=30)
        assert loket.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_status = 'EXPIRED'") == 8
        # Expired by the sweeper, never before their time.
        assert loket.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_updated_at < tr_expired_at") == 0
