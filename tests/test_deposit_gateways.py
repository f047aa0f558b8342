"""Deposits through the alternative gateways (DEPOSIT_GATEWAY): Midtrans and Paystack, each with its
own webhook route, signature check, durable inbox and idempotent apply, each in the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os

import httpx
import pytest

from tests.harness import LoketStack, register, wait_quiet, wait_until

MIDTRANS_KEY, PAYSTACK_KEY = "SB-Mid-server-loket", "sk_test_loket"


def midtrans_notification(order_id: str, amount: int, transaction_id: str, status: str = "settlement") -> dict:
    gross, code = f"{amount}.00", "200" if status in ("settlement", "capture") else "202"
    signature = hashlib.sha512(f"{order_id}{code}{gross}{MIDTRANS_KEY}".encode()).hexdigest()
    return {
        "order_id": order_id, "transaction_status": status, "transaction_id": transaction_id, "status_code": code,
        "gross_amount": gross, "signature_key": signature, "payment_type": "qris", "fraud_status": "accept", "currency": "IDR",
    }  # fmt: skip


def paystack_event(reference: str, amount: int, payment_id: int) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"event": "charge.success", "data": {"id": payment_id, "status": "success", "reference": reference, "amount": amount * 100, "currency": "IDR"}}).encode()
    return raw, {"x-paystack-signature": hmac.new(PAYSTACK_KEY.encode(), raw, hashlib.sha512).hexdigest(), "content-type": "application/json"}


async def deposit(api: httpx.AsyncClient, reseller, jumlah: int) -> dict:
    created = (await api.post("/deposit", json={"jumlah": jumlah}, headers=reseller.headers)).json()

    async def has_page() -> bool:
        created.update((await api.get(f"/deposit/{created['id']}", headers=reseller.headers)).json())
        return bool(created["payment_url"])

    await wait_until(has_page, timeout=20)
    return created


async def saldo(api: httpx.AsyncClient, reseller) -> int:
    return (await api.get("/saldo", headers=reseller.headers)).json()["saldo"]


@pytest.mark.parametrize("gateway", ["midtrans", "paystack"])
async def test_deposits_through_the_alternative_gateway(make_stack, admin_token, gateway):
    loket: LoketStack = make_stack(os.environ["REDIS_URL"], extra_env={"DEPOSIT_GATEWAY": gateway})
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api, httpx.AsyncClient(base_url=loket.sim_url) as sim:
        reseller = await register(api, admin_token)
        first = await deposit(api, reseller, 200_000)
        assert first["gateway"] == gateway and first["qris_string"] is None and first["payment_url"].startswith("http")

        # Paid once through the simulator: credited once.
        simulate = f"/midtrans/_simulate/{first['external_id']}" if gateway == "midtrans" else f"/paystack/_simulate/{first['external_id']}"
        assert (await sim.post(simulate, json={})).status_code == 200

        async def credited() -> bool:
            return await saldo(api, reseller) == 200_000

        await wait_until(credited, timeout=20)

        # The paid notification ten times concurrently: credited once.
        second = await deposit(api, reseller, 50_000)
        if gateway == "midtrans":
            # Settled at the gateway, whose status API confirms it, with its notification sent here only.
            await loket.configure_sim(midtrans_callback_url="")
            note = (await sim.post(f"/midtrans/_simulate/{second['external_id']}", json={})).json()
            sends = [api.post("/webhooks/midtrans", json=note) for _ in range(10)]
        else:
            raw, headers = paystack_event(second["external_id"], 50_000, 7002)
            sends = [api.post("/webhooks/paystack", content=raw, headers=headers) for _ in range(10)]
        assert [r.status_code for r in await asyncio.gather(*sends)] == [200] * 10

        async def credited_again() -> bool:
            return await saldo(api, reseller) == 250_000

        await wait_until(credited_again, timeout=20)
        await wait_quiet(loket)
        assert await saldo(api, reseller) == 250_000
        assert loket.db.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = %s", second["id"]) == 1

        # Paid with another amount: not credited, kept for reconciliation.
        third = await deposit(api, reseller, 100_000)
        if gateway == "midtrans":
            wrong = await api.post("/webhooks/midtrans", json=midtrans_notification(third["external_id"], 1_000, "mt-tx-3"))
        else:
            raw, headers = paystack_event(third["external_id"], 1_000, 7003)
            wrong = await api.post("/webhooks/paystack", content=raw, headers=headers)
        assert wrong.status_code == 200

        async def kept() -> bool:
            return loket.db.value("SELECT outcome FROM webhook_event WHERE reference = %s", third["external_id"]) == "unmatched"

        await wait_until(kept, timeout=20)
        assert await saldo(api, reseller) == 250_000

        # Signatures: missing 401, wrong 403, nothing stored.
        events = loket.db.value("SELECT COUNT(*) FROM webhook_event")
        if gateway == "midtrans":
            forged = {**midtrans_notification(third["external_id"], 100_000, "mt-tx-4"), "signature_key": "0" * 128}
            unsigned = {k: v for k, v in forged.items() if k != "signature_key"}
            assert (await api.post("/webhooks/midtrans", json=unsigned)).status_code == 401
            assert (await api.post("/webhooks/midtrans", json=forged)).status_code == 403
        else:
            raw, headers = paystack_event(third["external_id"], 100_000, 7004)
            assert (await api.post("/webhooks/paystack", content=raw)).status_code == 401
            assert (await api.post("/webhooks/paystack", content=raw, headers={"x-paystack-signature": "0" * 128})).status_code == 403
        assert loket.db.value("SELECT COUNT(*) FROM webhook_event") == events
        assert loket.db.ledger_matches_saldo(reseller.id)
