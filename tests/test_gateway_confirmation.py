"""A payment notification is a hint; the gateway's read API is the record. Midtrans signs
order_id, status_code and gross_amount but not transaction_status, and Xendit's seed form names
no amount: before either credits, the gateway is asked (Midtrans' status API, the QR code's
payments at Xendit). Down, the event waits and is applied once the gateway answers again."""

from __future__ import annotations

import asyncio
import os

import httpx

from tests.harness import LoketStack, fast_env, register, wait_quiet, wait_until
from tests.test_deposit_gateways import deposit, midtrans_notification, saldo
from tests.test_deposits import new_deposit

TOKEN = {"x-callback-token": fast_env()["XENDIT_CALLBACK_TOKEN"]}


def outcomes(loket: LoketStack, reference: str) -> list[str]:
    return [r["outcome"] for r in loket.db.rows("SELECT outcome FROM webhook_event WHERE reference = %s ORDER BY id", reference)]


async def handled(loket: LoketStack, reference: str, count: int = 1) -> list[str]:
    """The outcomes of the events naming reference, once `count` of them are no longer received."""

    async def done() -> bool:
        found = outcomes(loket, reference)
        return len(found) >= count and "received" not in found

    await wait_until(done, timeout=20)
    return outcomes(loket, reference)


async def test_midtrans_credits_only_what_its_status_api_confirms(make_stack, admin_token):
    loket: LoketStack = make_stack(os.environ["REDIS_URL"], extra_env={"DEPOSIT_GATEWAY": "midtrans"})
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api, httpx.AsyncClient(base_url=loket.sim_url) as sim:
        reseller = await register(api, admin_token)
        await loket.configure_sim(midtrans_callback_url="")  # the test delivers each notification itself

        # A genuine, signed pending notification with transaction_status rewritten to settlement:
        # its status_code (201, signed) says pending, so it credits nothing.
        forged_deposit = await deposit(api, reseller, 120_000)
        pending = (await sim.post(f"/midtrans/_simulate/{forged_deposit['external_id']}", json={"transaction_status": "pending"})).json()
        assert pending["status_code"] == "201"
        before = loket.db.money_of(reseller.id)
        forged = {**pending, "transaction_status": "settlement", "fraud_status": "accept"}
        assert (await api.post("/webhooks/midtrans", json=forged)).status_code == 200
        assert await handled(loket, forged_deposit["external_id"]) == ["ignored"]

        # Signed as settled (with the server key), while Midtrans says the order is pending: the
        # status API decides, and it is not credited either.
        signed = midtrans_notification(forged_deposit["external_id"], 120_000, "mt-forged")
        assert (await api.post("/webhooks/midtrans", json=signed)).status_code == 200
        assert await handled(loket, forged_deposit["external_id"], 2) == ["ignored", "ignored"]
        note = loket.db.value("SELECT note FROM webhook_event WHERE reference = %s ORDER BY id DESC LIMIT 1", forged_deposit["external_id"])
        assert "Midtrans reports pending (201)" in note
        await wait_quiet(loket)
        assert loket.db.money_of(reseller.id) == before
        assert loket.db.value("SELECT tr_status FROM qris_transaction WHERE tr_id = %s", forged_deposit["id"]) == "PENDING"

        # Then genuinely settled (the forgery took nothing of its place): credited once, though
        # its notification arrives three times.
        paid = forged_deposit
        settled = (await sim.post(f"/midtrans/_simulate/{paid['external_id']}", json={})).json()
        answers = await asyncio.gather(*(api.post("/webhooks/midtrans", json=settled) for _ in range(3)))
        assert [a.status_code for a in answers] == [200] * 3
        assert await handled(loket, paid["external_id"], 3) == ["ignored", "ignored", "applied"]
        await wait_quiet(loket)
        assert await saldo(api, reseller) == 120_000
        assert loket.db.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = %s", paid["id"]) == 1

        # The status API down: the settlement waits, applied neither nor dropped, until it answers.
        later = await deposit(api, reseller, 30_000)
        settled = (await sim.post(f"/midtrans/_simulate/{later['external_id']}", json={})).json()
        await loket.configure_sim(midtrans_status_down=True)
        assert (await api.post("/webhooks/midtrans", json=settled)).status_code == 200
        await asyncio.sleep(3)  # several tries of the event, each refused an answer
        assert outcomes(loket, later["external_id"]) == ["received"]
        assert await saldo(api, reseller) == 120_000
        assert loket.db.value("SELECT tr_status FROM qris_transaction WHERE tr_id = %s", later["id"]) == "PENDING"
        await loket.configure_sim(midtrans_status_down=False)
        assert await handled(loket, later["external_id"]) == ["applied"]
        await wait_quiet(loket)
        assert await saldo(api, reseller) == 150_000
        assert loket.db.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = %s", later["id"]) == 1
        assert loket.db.ledger_matches_saldo(reseller.id)


async def test_a_seed_form_payment_completes_only_what_xendit_reports_paid_in_full(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)

    # Nothing paid at the gateway: the seed form's word alone completes nothing.
    unpaid = await new_deposit(api, reseller, 60_000)
    qr_id = stack.db.value("SELECT tr_xendit_id FROM qris_transaction WHERE tr_id = %s", unpaid["id"])
    before = stack.db.money_of(reseller.id)
    seed = {"external_id": unpaid["external_id"], "status": "COMPLETED", "xendit_id": qr_id}
    assert (await api.post("/api/v1/webhooks/xendit", json=seed, headers=TOKEN)).status_code == 200
    assert await handled(stack, unpaid["external_id"]) == ["ignored"]

    # Paid short at the gateway (its seed webhook names no amount): not completed either.
    await stack.configure_sim(webhook_format="seed")
    short = await new_deposit(api, reseller, 60_000)
    assert (await stack.pay(short["external_id"], amount=10_000)).status_code == 200
    assert await handled(stack, short["external_id"]) == ["ignored"]
    await wait_quiet(stack)
    after = stack.db.money_of(reseller.id)
    assert (after["account"], after["ledger"]) == (before["account"], before["ledger"])
    statuses = stack.db.rows("SELECT tr_status FROM qris_transaction WHERE tr_id IN (%s, %s)", unpaid["id"], short["id"])
    assert [r["tr_status"] for r in statuses] == ["PENDING", "PENDING"]
    assert await saldo(api, reseller) == 0

    # Paid in full: completed and credited once, with the gateway's payment id.
    full = await new_deposit(api, reseller, 60_000)
    assert (await stack.pay(full["external_id"])).status_code == 200
    assert await handled(stack, full["external_id"]) == ["applied"]
    await wait_quiet(stack)
    assert await saldo(api, reseller) == 60_000
    assert stack.db.value("SELECT tr_payment_id FROM qris_transaction WHERE tr_id = %s", full["id"]).startswith("qrpy_")


async def test_a_seed_form_payment_waits_while_xendit_cannot_confirm_it(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token)
    await stack.configure_sim(webhook_format="seed")
    paid = await new_deposit(api, reseller, 45_000)
    await stack.configure_sim(gateway_payments_down=True)
    assert (await stack.pay(paid["external_id"])).status_code == 200
    await wait_until(lambda: asyncio.sleep(0, bool(outcomes(stack, paid["external_id"]))), timeout=15)
    await asyncio.sleep(3)  # several tries, each refused an answer
    assert outcomes(stack, paid["external_id"]) == ["received"]
    assert stack.db.value("SELECT tr_status FROM qris_transaction WHERE tr_id = %s", paid["id"]) == "PENDING"
    assert await saldo(api, reseller) == 0
    await stack.configure_sim(gateway_payments_down=False)
    assert await handled(stack, paid["external_id"]) == ["applied"]
    await wait_quiet(stack)
    assert await saldo(api, reseller) == 45_000
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = %s", paid["id"]) == 1
