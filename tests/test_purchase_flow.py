"""The PPOB purchase pipeline end to end: web -> MySQL + outbox -> Redis -> worker -> simulator."""

from __future__ import annotations

import asyncio

import httpx

from tests.harness import LoketStack, final_statuses, register, wait_quiet, wait_until


async def buy(api: httpx.AsyncClient, reseller, nomor: str, produk_id: int = 1, **extra) -> httpx.Response:
    return await api.post("/beli", json={"produk_id": produk_id, "nomor_tujuan": nomor, **extra}, headers=reseller.headers)


async def test_200_concurrent_purchases_on_a_saldo_for_exactly_50(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=50 * 12000)
    responses = await asyncio.gather(*(buy(api, reseller, f"0812000{i:05d}") for i in range(200)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 50 and codes.count(402) == 150, codes
    assert all(r.json()["code"] == "insufficient_saldo" for r in responses if r.status_code == 402)
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 0}
    assert stack.db.ledger_matches_saldo(reseller.id)
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 50
    ended = await final_statuses(api, reseller, [r.json()["id"] for r in responses if r.status_code == 200])
    assert {p["status"] for p in ended.values()} == {"sukses"}
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 0}


async def test_same_ref_id_twenty_times_concurrently_is_one_purchase(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    responses = await asyncio.gather(*(buy(api, reseller, "081299990001", ref_id="INV-77") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 1
    assert stack.db.value(
        "SELECT COUNT(*) FROM ledger_entry WHERE reseller_id = %s AND jenis = 'pembelian'", reseller.id
    ) == 1
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}

    before = stack.db.money_of(reseller.id)
    conflict = await buy(api, reseller, "081299990002", ref_id="INV-77")
    assert conflict.status_code == 409 and conflict.json()["code"] == "ref_id_conflict"
    assert stack.db.money_of(reseller.id)["ledger"] == before["ledger"]
    assert [p["id"] for p in stack.db.money_of(reseller.id)["purchases"]] == [p["id"] for p in before["purchases"]]
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}
    by_ref = await api.get("/status", params={"ref_id": "INV-77"}, headers=reseller.headers)
    assert by_ref.status_code == 200 and by_ref.json()["nomor_tujuan"] == "081299990001"


async def test_sukses_carries_sn_and_gagal_is_refunded_once(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    ok = (await buy(api, reseller, "081234567890")).json()
    failed = (await buy(api, reseller, "087800001232")).json()
    assert ok["status"] == failed["status"] == "pending" and failed["saldo"] == 76_000
    ended = await final_statuses(api, reseller, [ok["id"], failed["id"]])
    assert ended[ok["id"]]["status"] == "sukses" and len(ended[ok["id"]]["sn"]) >= 10
    assert ended[failed["id"]]["status"] == "gagal" and ended[failed["id"]]["sn"] is None
    await wait_quiet(stack)
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}
    mutasi = (await api.get("/mutasi", headers=reseller.headers)).json()
    assert [(m["jenis"], m["jumlah"], m["trx_id"]) for m in mutasi if m["jenis"] == "refund"] == [("refund", 12_000, failed["id"])]
    assert mutasi[0]["saldo_akhir"] == 88_000
    assert stack.db.ledger_matches_saldo(reseller.id)


async def test_pending_then_sukses_by_recheck(api, stack: LoketStack, admin_token):
    await stack.configure_sim(callback_url="", pending_ms=1500)  # no callbacks: only re-checks can tell
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await buy(api, reseller, "087800001233")).json()

    async def at_provider() -> bool:
        return (await api.get(f"/status/{purchase['id']}", headers=reseller.headers)).json()["status"] == "proses"

    await wait_until(at_provider, timeout=10)
    ended = await final_statuses(api, reseller, [purchase["id"]])
    assert ended[purchase["id"]]["status"] == "sukses" and ended[purchase["id"]]["sn"]
    [record] = [t for t in await stack.sim_transactions() if t["customer_no"] == "087800001233"]
    assert record["calls"] >= 2  # the first order and at least one re-check, with one ref_id
    assert stack.db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = %s", record["ref_id"]) == 0


async def test_pending_then_gagal_by_callback_is_refunded(api, stack: LoketStack, admin_token):
    # The provider's status checks keep saying Pending; only its callback carries the result.
    await stack.configure_sim(pending_check_resolves=False, pending_ms=500)
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await buy(api, reseller, "087800001234")).json()
    ended = await final_statuses(api, reseller, [purchase["id"]])
    assert ended[purchase["id"]]["status"] == "gagal"
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 100_000}
    provider_ref = stack.db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase["id"])
    events = stack.db.rows("SELECT outcome FROM webhook_event WHERE reference = %s", provider_ref)
    assert [e["outcome"] for e in events] == ["applied"]


async def test_pending_then_sukses_by_callback(api, stack: LoketStack, admin_token):
    await stack.configure_sim(pending_check_resolves=False, pending_ms=500)
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await buy(api, reseller, "087800001233")).json()
    ended = await final_statuses(api, reseller, [purchase["id"]])
    assert ended[purchase["id"]]["status"] == "sukses" and ended[purchase["id"]]["sn"]
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}


async def test_provider_timeout_never_refunds_what_the_provider_sold(api, stack: LoketStack, admin_token):
    # The provider records the order, then answers after Loket's 1.5 s timeout has passed.
    await stack.configure_sim(timeout_next=1, timeout_sleep_ms=4000)
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await buy(api, reseller, "081234500001")).json()
    ended = await final_statuses(api, reseller, [purchase["id"]])
    assert ended[purchase["id"]]["status"] == "sukses"
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase["id"]) == 0
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}
    [record] = [t for t in await stack.sim_transactions() if t["customer_no"] == "081234500001"]
    assert record["calls"] >= 2  # the call that timed out, then the re-check


async def test_provider_outage_then_recovery_completes_without_refund(api, stack: LoketStack, admin_token):
    await stack.configure_sim(fail_next=6)  # 503s: the client's short retries, then Dramatiq's backoff
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await buy(api, reseller, "081234500002")).json()
    ended = await final_statuses(api, reseller, [purchase["id"]], timeout=40)
    assert ended[purchase["id"]]["status"] == "sukses"
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}
    assert stack.db.value("SELECT COUNT(*) FROM outbox WHERE job_key = %s", f"purchase:{purchase['id']}") == 0
