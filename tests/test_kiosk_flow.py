"""Kiosk QRIS payments end to end: create -> QR (gateway worker) -> pay (gateway webhook) -> COMPLETED."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from core.security import issue_staff_token
from tests.harness import LoketStack, fast_env, wait_until

TOKEN = fast_env()["XENDIT_CALLBACK_TOKEN"]


_names = iter(range(10**6))


async def new_location(api: httpx.AsyncClient, admin: dict[str, str]) -> int:
    response = await api.post("/api/v1/locations", json={"ml_name": f"Mall Uji {next(_names)}-{id(api)}", "ml_address": "Jl. Uji"}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["data"]["ml_id"]


def kiosk_at(location_id: int) -> dict[str, str]:
    """Headers of the kiosk at this location: role_level 1, scoped to it (web/staff.py)."""
    token = issue_staff_token(fast_env()["JWT_SECRET"], f"kiosk-{location_id}", 1, location_id=location_id)
    return {"authorization": f"Bearer {token}"}


async def poll(api: httpx.AsyncClient, external_id: str, until: tuple[str, ...], timeout: float = 20) -> dict:
    """What a kiosk does: GET the public status every few hundred ms until it ends."""
    seen: dict = {}

    async def ended() -> bool:
        seen.update((await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"])
        return seen["tr_status"] in until

    await wait_until(ended, timeout=timeout, every=0.3)
    return seen


async def test_create_get_qr_pay_and_complete_as_a_kiosk_would(api, stack: LoketStack, admin):
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    created = await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True and body["message"]
    data = body["data"]
    assert re.fullmatch(rf"TRX-{location_id}-\d{{14}}-[0-9A-F]{{8}}", data["tr_external_id"])
    assert data["tr_status"] == "PENDING" and data["tr_amount"] == 40_000
    assert data["tr_qris_string"] and data["tr_qris_string"].startswith("000201")  # the worker answered in time
    assert data["tr_expired_at"] > data["tr_created_at"]

    paid = await stack.pay(data["tr_external_id"])
    assert paid.status_code == 200, paid.text
    done = await poll(api, data["tr_external_id"], ("COMPLETED",))
    assert done["tr_paid_at"] is not None
    assert len(await stack.qr_codes(data["tr_external_id"])) == 1


@pytest.mark.parametrize("webhook_format", ["legacy", "seed"])
async def test_the_legacy_and_seed_webhook_forms_complete_too(api, stack: LoketStack, admin, webhook_format):
    await stack.configure_sim(webhook_format=webhook_format)
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    data = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)).json()["data"]
    assert (await stack.pay(data["tr_external_id"])).status_code == 200
    assert (await poll(api, data["tr_external_id"], ("COMPLETED",)))["tr_paid_at"]


async def test_a_slow_then_failing_gateway_still_delivers_one_qr(api, stack: LoketStack, admin):
    # The first create is made but answered too late; the next fails with 503; then the gateway is back.
    await stack.configure_sim(gateway_timeout_next=1, gateway_timeout_sleep_ms=3000, gateway_fail_next=1)
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    created = await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)
    assert created.status_code == 201
    external_id = created.json()["data"]["tr_external_id"]

    async def qr_arrived() -> bool:
        return bool((await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"]["tr_qris_string"])

    await wait_until(qr_arrived, timeout=20)
    assert len(await stack.qr_codes(external_id)) == 1  # the idempotency-key kept retries to one QR code
    assert (await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"]["tr_status"] == "PENDING"


async def test_a_gateway_that_keeps_failing_ends_failed_and_returns_the_quota_slot(api, stack: LoketStack, admin):
    await stack.configure_sim(gateway_fail_next=1000)
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    price = (await api.post("/api/v1/prices", json={"mp_name": "Promo", "mp_amount": 25_000, "mp_quota": 1, "mp_location_id": location_id}, headers=admin)).json()["data"]
    created = await api.post("/api/v1/transactions", json={"location_id": location_id, "price_id": price["mp_id"]}, headers=kiosk)
    assert created.status_code == 201 and created.json()["data"]["tr_qris_string"] is None
    assert created.json()["data"]["tr_amount"] == 25_000
    # Without its QR the answer is the procedure's row, not read again: the same as stored.
    shown = (await api.get(f"/api/v1/transactions/external/{created.json()['data']['tr_external_id']}")).json()["data"]
    stable = ("tr_id", "tr_external_id", "tr_location_id", "tr_price_id", "tr_amount", "tr_expired_at", "tr_created_at")
    assert {k: created.json()["data"][k] for k in stable} == {k: shown[k] for k in stable}
    failed = await poll(api, created.json()["data"]["tr_external_id"], ("FAILED",), timeout=30)
    assert failed["tr_paid_at"] is None
    assert stack.db.value("SELECT mp_used FROM price WHERE mp_id = %s", price["mp_id"]) == 0


async def test_unpaid_transactions_expire_by_their_timer(api, stack: LoketStack, admin):
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    data = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)).json()["data"]
    expired = await poll(api, data["tr_external_id"], ("EXPIRED", "COMPLETED"), timeout=20)
    assert expired["tr_status"] == "EXPIRED" and expired["tr_paid_at"] is None


async def test_a_payment_after_expiry_does_not_revive_and_is_kept_for_reconciliation(api, stack: LoketStack, admin):
    await stack.configure_sim(allow_expired_payment=True)
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    data = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)).json()["data"]
    await poll(api, data["tr_external_id"], ("EXPIRED",), timeout=20)
    assert (await stack.pay(data["tr_external_id"])).status_code == 200

    async def kept() -> bool:
        events = (await api.get("/api/v1/webhook-events", params={"outcome": "unmatched", "source": "xendit"}, headers=admin)).json()["data"]
        return any(e["reference"] == data["tr_external_id"] for e in events)

    await wait_until(kept, timeout=10)
    final = (await api.get(f"/api/v1/transactions/external/{data['tr_external_id']}")).json()["data"]
    assert final["tr_status"] == "EXPIRED" and final["tr_paid_at"] is None


async def test_a_different_amount_never_completes(api, stack: LoketStack, admin):
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    data = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk)).json()["data"]
    assert (await stack.pay(data["tr_external_id"], amount=1_000)).status_code == 200

    async def handled() -> bool:
        return stack.db.value("SELECT outcome FROM webhook_event WHERE reference = %s", data["tr_external_id"]) == "unmatched"

    await wait_until(handled, timeout=10)
    assert (await api.get(f"/api/v1/transactions/external/{data['tr_external_id']}")).json()["data"]["tr_status"] == "PENDING"


async def test_quota_holds_under_50_concurrent_creates(api, stack: LoketStack, admin):
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    price = (await api.post("/api/v1/prices", json={"mp_name": "Terbatas", "mp_amount": 30_000, "mp_quota": 10}, headers=admin)).json()["data"]
    responses = await asyncio.gather(
        *(api.post("/api/v1/transactions", json={"location_id": location_id, "price_id": price["mp_id"]}, headers=kiosk) for _ in range(50))
    )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 10 and codes.count(409) == 40, codes
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"quota_exhausted"}
    assert stack.db.value("SELECT mp_used FROM price WHERE mp_id = %s", price["mp_id"]) == 10
    assert stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_price_id = %s", price["mp_id"]) == 10
