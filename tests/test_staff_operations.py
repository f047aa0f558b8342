"""Staff operations: saldo corrections through the ledger, resolving stuck purchases, deactivation."""

from __future__ import annotations

import os

import httpx

from core.security import issue_staff_token
from tests.harness import LoketStack, fast_env, register, wait_quiet, wait_until


async def test_saldo_corrections_are_ledger_entries_with_a_reason(api, stack: LoketStack, admin_token, admin):
    reseller = await register(api, admin_token, saldo=10_000)
    credit = await api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json={"jumlah": 5_000, "keterangan": "kompensasi gangguan"}, headers=admin)
    assert credit.status_code == 201 and credit.json()["data"]["saldo"] == 15_000
    before = stack.db.money_of(reseller.id)
    too_much = await api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json={"jumlah": -20_000, "keterangan": "salah transfer"}, headers=admin)
    assert too_much.status_code == 409
    assert stack.db.money_of(reseller.id) == before
    debit = await api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json={"jumlah": -15_000, "keterangan": "salah transfer"}, headers=admin)
    assert debit.json()["data"]["saldo"] == 0
    mutasi = (await api.get("/mutasi", headers=reseller.headers)).json()
    assert [(m["jenis"], m["jumlah"]) for m in mutasi] == [("koreksi", -15_000), ("koreksi", 5_000), ("saldo_awal", 10_000)]
    assert "oleh ops-ani" in mutasi[0]["keterangan"]
    assert stack.db.ledger_matches_saldo(reseller.id)
    clerk = {"authorization": "Bearer " + issue_staff_token(fast_env()["JWT_SECRET"], "clerk", 10)}
    before = stack.db.money_of(reseller.id)
    assert (await api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json={"jumlah": 1, "keterangan": "coba"}, headers=clerk)).status_code == 403
    for bad in ({"jumlah": 0, "keterangan": "coba"}, {"jumlah": "5000", "keterangan": "coba"}, {"jumlah": 5_000}, {"jumlah": 10**15, "keterangan": "x"}):
        refused = await api.post(f"/api/v1/resellers/{reseller.id}/adjustments", json=bad, headers=admin)
        assert refused.status_code == 422, (bad, refused.text)
    assert stack.db.money_of(reseller.id) == before
    assert (await api.post("/api/v1/resellers/2147483000/adjustments", json={"jumlah": 1, "keterangan": "coba"}, headers=admin)).status_code == 404


async def test_a_purchase_stuck_at_the_provider_can_be_resolved_once(make_stack, admin_token, admin):
    # A private stack: "quiet" then means this purchase's work is done, whatever the shared stack holds.
    stack: LoketStack = make_stack(os.environ["REDIS_URL"])
    async with httpx.AsyncClient(base_url=stack.web_url, timeout=30) as api:
        await _stuck_purchase_resolved_once(api, stack, admin_token, admin)


async def _stuck_purchase_resolved_once(api, stack: LoketStack, admin_token, admin) -> None:
    await stack.configure_sim(pending_check_resolves=False, callback_url="", pending_ms=600_000)
    reseller = await register(api, admin_token, saldo=50_000)
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "087800001234"}, headers=reseller.headers)).json()

    async def stuck() -> bool:
        return (await api.get(f"/status/{purchase['id']}", headers=reseller.headers)).json()["status"] == "proses"

    await wait_until(stuck, timeout=10)
    resolved = await api.post(f"/api/v1/purchases/{purchase['id']}/resolve", json={"status": "gagal", "keterangan": "dicek ke provider: gagal"}, headers=admin)
    assert resolved.status_code == 200 and resolved.json()["data"]["status"] == "gagal"
    before = stack.db.money_of(reseller.id)
    again = await api.post(f"/api/v1/purchases/{purchase['id']}/resolve", json={"status": "sukses", "keterangan": "salah klik"}, headers=admin)
    assert again.status_code == 409
    await wait_quiet(stack)
    assert stack.db.money_of(reseller.id) == before
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 50_000}  # refunded once
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase["id"]) == 1


async def test_deactivated_resellers_and_products_stop_at_once(api, stack: LoketStack, admin_token, admin):
    reseller = await register(api, admin_token, saldo=50_000)
    assert (await api.put(f"/api/v1/resellers/{reseller.id}", json={"aktif": False}, headers=admin)).status_code == 200
    assert (await api.get("/saldo", headers=reseller.headers)).status_code == 401
    assert (await api.put(f"/api/v1/resellers/{reseller.id}", json={"aktif": True}, headers=admin)).status_code == 200
    assert (await api.put("/api/v1/products/2", json={"aktif": False}, headers=admin)).status_code == 200
    try:
        refused = await api.post("/beli", json={"produk_id": 2, "nomor_tujuan": "081244440000"}, headers=reseller.headers)
        assert refused.status_code == 404
        assert 2 not in [p["id"] for p in (await api.get("/produk", headers=reseller.headers)).json()]
    finally:
        assert (await api.put("/api/v1/products/2", json={"aktif": True}, headers=admin)).status_code == 200
    assert (await api.put("/api/v1/products/2", json={}, headers=admin)).status_code == 422
