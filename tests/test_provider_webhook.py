"""POST /webhooks/digiflazz: verified, stored once, applied once, never moving a purchase back."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from tests.harness import LoketStack, final_statuses, register, wait_quiet, wait_until

SECRET = "dev-webhook-secret"


def signed(data: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"data": data}).encode()
    signature = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    return raw, {"x-hub-signature": signature, "content-type": "application/json", "x-digiflazz-event": "update"}


def event(ref_id: str, status: str, rc: str, sn: str = "") -> dict:
    return {"ref_id": ref_id, "customer_no": "081234567890", "buyer_sku_code": "pulsa10", "status": status, "rc": rc, "sn": sn, "message": f"Transaksi {status}"}


async def outcomes(stack: LoketStack, reference: str) -> list[str]:
    return [r["outcome"] for r in stack.db.rows("SELECT outcome FROM webhook_event WHERE reference = %s ORDER BY id", reference)]


async def test_signature_is_required_and_checked(api, stack: LoketStack):
    raw, headers = signed(event("LKnothing", "Sukses", "00", "1"))
    before = stack.db.value("SELECT COUNT(*) FROM webhook_event")
    missing = await api.post("/webhooks/digiflazz", content=raw, headers={"content-type": "application/json"})
    assert missing.status_code == 401
    wrong = await api.post("/webhooks/digiflazz", content=raw, headers={**headers, "x-hub-signature": "sha1=" + "0" * 40})
    assert wrong.status_code == 403
    tampered = await api.post("/webhooks/digiflazz", content=raw.replace(b"Sukses", b"Gagal!"), headers=headers)
    assert tampered.status_code == 403
    assert stack.db.value("SELECT COUNT(*) FROM webhook_event") == before


async def test_garbage_with_a_valid_signature_is_400_and_not_stored(api, stack: LoketStack):
    before = stack.db.value("SELECT COUNT(*) FROM webhook_event")
    for raw in (b"not json", b"[]", b'{"data": 5}', b'{"data": {"ref_id": 7, "status": "Sukses", "rc": "00"}}', b'{"data": {"ref_id": "x"}}'):
        signature = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
        response = await api.post("/webhooks/digiflazz", content=raw, headers={"x-hub-signature": signature})
        assert response.status_code == 400, raw
    assert stack.db.value("SELECT COUNT(*) FROM webhook_event") == before


async def test_unknown_reference_is_kept_for_reconciliation(api, stack: LoketStack):
    raw, headers = signed(event("LKdoesnotexist000000000", "Sukses", "00", "999"))
    assert (await api.post("/webhooks/digiflazz", content=raw, headers=headers)).status_code == 200

    async def unmatched() -> bool:
        return await outcomes(stack, "LKdoesnotexist000000000") == ["unmatched"]

    await wait_until(unmatched, timeout=10)


async def test_duplicate_late_and_out_of_order_callbacks_change_nothing(api, stack: LoketStack, admin_token):
    # The provider keeps the purchase Pending and sends no callback of its own: this test is the provider.
    await stack.configure_sim(pending_check_resolves=False, callback_url="", pending_ms=60_000)
    reseller = await register(api, admin_token, saldo=100_000)
    purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "087800001233"}, headers=reseller.headers)).json()
    provider_ref = stack.db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase["id"])

    async def at_provider() -> bool:
        return (await api.get(f"/status/{purchase['id']}", headers=reseller.headers)).json()["status"] == "proses"

    await wait_until(at_provider, timeout=10)

    sukses_raw, headers = signed(event(provider_ref, "Sukses", "00", "SN-REAL-1"))
    three = await asyncio.gather(*(api.post("/webhooks/digiflazz", content=sukses_raw, headers=headers) for _ in range(3)))
    assert [r.status_code for r in three] == [200, 200, 200]
    assert sorted(r.json()["duplicate"] for r in three) == [False, True, True]
    ended = await final_statuses(api, reseller, [purchase["id"]])
    assert ended[purchase["id"]]["status"] == "sukses" and ended[purchase["id"]]["sn"] == "SN-REAL-1"

    # Late and out of order: a Pending, a Gagal, then another Sukses with another serial number.
    # Each differs from the first, so each is stored as an event of its own and reaches the state
    # guard, which is what must keep the first outcome.
    late = (event(provider_ref, "Pending", "03"), event(provider_ref, "Gagal", "02"), event(provider_ref, "Sukses", "00", "SN-LATE-2"))
    for body in late:
        raw, late_headers = signed(body)
        answer = await api.post("/webhooks/digiflazz", content=raw, headers=late_headers)
        assert answer.status_code == 200 and answer.json()["duplicate"] is False
    await wait_quiet(stack)
    assert await outcomes(stack, provider_ref) == ["applied", "ignored", "ignored", "ignored"]
    status = (await api.get(f"/status/{purchase['id']}", headers=reseller.headers)).json()
    assert status["status"] == "sukses" and status["sn"] == "SN-REAL-1"
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s", purchase["id"]) == 1
    assert stack.db.ledger_matches_saldo(reseller.id)


async def test_concurrent_deliveries_are_stored_together_and_each_event_once(api, stack: LoketStack):
    """The web stores the webhooks of the same moment in one transaction (web.webhooks.webhook_intake):
    ten copies of one event and five other events at once store six events, each answered for
    itself, and each is handled."""
    same = event("LKconcurrent0000000001", "Sukses", "00", "SN-1")
    others = [event(f"LKconcurrent000000010{i}", "Gagal", "02") for i in range(5)]
    bodies = [signed(same)] * 10 + [signed(other) for other in others]
    answers = await asyncio.gather(*(api.post("/webhooks/digiflazz", content=raw, headers=headers) for raw, headers in bodies))
    assert [a.status_code for a in answers] == [200] * 15
    assert sorted(a.json()["duplicate"] for a in answers[:10]) == [False] + [True] * 9
    assert [a.json()["duplicate"] for a in answers[10:]] == [False] * 5
    for data in (same, *others):
        assert stack.db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = %s", data["ref_id"]) == 1

    async def all_unmatched() -> bool:
        return all([await outcomes(stack, data["ref_id"]) == ["unmatched"] for data in (same, *others)])

    await wait_until(all_unmatched, timeout=10)
