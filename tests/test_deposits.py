"""Deposits by QRIS: paid once, credited once; ten concurrent deliveries credit once; a wrong amount never."""

from __future__ import annotations

import asyncio

from tests.harness import LoketStack, fast_env, register, wait_quiet, wait_until

TOKEN = {"x-callback-token": fast_env()["XENDIT_CALLBACK_TOKEN"]}


def payment(deposit: dict, qr_id: str, amount: int, payment_id: str) -> dict:
    data = {"id": payment_id, "qr_id": qr_id, "reference_id": deposit["external_id"], "amount": amount, "currency": "IDR", "status": "SUCCEEDED"}
    return {"event": "qr.payment", "api_version": "2022-07-31", "data": data}


async def new_deposit(api, reseller, jumlah: int) -> dict:
    response = await api.post("/deposit", json={"jumlah": jumlah}, headers=reseller.headers)
    assert response.status_code == 201, response.text
    deposit = response.json()
    assert deposit["status"] == "PENDING" and deposit["external_id"].startswith(f"DEP-{reseller.id}-"), deposit

    async def qr_ready() -> bool:  # the answer may come before the gateway's QR; then the client polls
        deposit.update((await api.get(f"/deposit/{deposit['id']}", headers=reseller.headers)).json())
        return bool(deposit["qris_string"])

    await wait_until(qr_ready, timeout=15)
    return deposit


async def test_a_deposit_paid_once_is_credited_once(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)
    deposit = await new_deposit(api, reseller, 150_000)
    assert (await stack.pay(deposit["external_id"])).status_code == 200

    async def credited() -> bool:
        return (await api.get(f"/deposit/{deposit['id']}", headers=reseller.headers)).json()["status"] == "COMPLETED"

    await wait_until(credited, timeout=15)
    await wait_quiet(stack)
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 150_000}
    [entry] = (await api.get("/mutasi", headers=reseller.headers)).json()
    assert (entry["jenis"], entry["jumlah"], entry["saldo_akhir"]) == ("deposit", 150_000, 150_000)
    assert [d["id"] for d in (await api.get("/deposit", headers=reseller.headers)).json()] == [deposit["id"]]
    other = await register(api, admin_token)
    assert (await api.get(f"/deposit/{deposit['id']}", headers=other.headers)).status_code == 404
    assert (await api.get(f"/api/v1/transactions/external/{deposit['external_id']}")).status_code == 404


async def test_the_paid_webhook_ten_times_concurrently_credits_once(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)
    deposit = await new_deposit(api, reseller, 75_000)
    qr_id = stack.db.value("SELECT tr_xendit_id FROM qris_transaction WHERE tr_id = %s", deposit["id"])
    event = payment(deposit, qr_id, 75_000, f"qrpy_dep_{deposit['id']}")
    answers = await asyncio.gather(*(api.post("/api/v1/webhooks/xendit", json=event, headers=TOKEN) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10

    async def credited() -> bool:
        return (await api.get("/saldo", headers=reseller.headers)).json()["saldo"] == 75_000

    await wait_until(credited, timeout=15)
    await wait_quiet(stack)
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 75_000}
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = %s", deposit["id"]) == 1
    assert stack.db.ledger_matches_saldo(reseller.id)


async def test_a_deposit_paid_with_another_amount_is_not_credited(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)
    deposit = await new_deposit(api, reseller, 100_000)
    assert (await stack.pay(deposit["external_id"], amount=10_000)).status_code == 200

    async def handled() -> bool:
        return stack.db.value("SELECT outcome FROM webhook_event WHERE reference = %s", deposit["external_id"]) == "unmatched"

    await wait_until(handled, timeout=15)
    assert (await api.get(f"/deposit/{deposit['id']}", headers=reseller.headers)).json()["status"] == "PENDING"
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 0}
    before = stack.db.money_of(reseller.id)
    for bad in ({"jumlah": 5_000}, {"jumlah": "100000"}, {"jumlah": 10**12}, {}):
        assert (await api.post("/deposit", json=bad, headers=reseller.headers)).status_code == 422
    assert stack.db.money_of(reseller.id) == before
