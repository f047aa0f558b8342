"""Kiosk webhooks against each other and against expiry; photos; the masters; bad input."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os

import httpx
import pytest
from redis.asyncio import Redis

from core.security import ResponseCipher
from domain import photos
from tests.harness import LoketStack, fast_env, wait_quiet, wait_until
from tests.test_kiosk_flow import kiosk_at, new_location, poll
from workers.enqueue import push

TOKEN = {"x-callback-token": fast_env()["XENDIT_CALLBACK_TOKEN"]}


async def poll_qr(api: httpx.AsyncClient, external_id: str) -> dict:
    found: dict = {}

    async def ready() -> bool:
        found.update((await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"])
        return bool(found["tr_qris_string"])

    await wait_until(ready, timeout=20)
    return found


def v2_payment(external_id: str, qr_id: str, amount: int, payment_id: str) -> dict:
    return {
        "event": "qr.payment",
        "api_version": "2022-07-31",
        "business_id": "biz",
        "created": "2026-11-22T10:00:00Z",
        "data": {"id": payment_id, "qr_id": qr_id, "reference_id": external_id, "amount": amount, "currency": "IDR", "status": "SUCCEEDED"},
    }


async def create_with_qr(api: httpx.AsyncClient, stack: LoketStack, admin, **body) -> dict:
    """A transaction at a new location, made by that location's kiosk, with its QR code."""
    location_id = await new_location(api, admin)
    data = (await api.post("/api/v1/transactions", json={"location_id": location_id, **body}, headers=kiosk_at(location_id))).json()["data"]
    if not data["tr_qris_string"]:  # a busy worker may answer after the create's wait: poll as a kiosk does
        data = await poll_qr(api, data["tr_external_id"])
    data["qr_id"] = stack.db.value("SELECT tr_xendit_id FROM qris_transaction WHERE tr_id = %s", data["tr_id"])
    return data


async def test_the_same_payment_five_times_concurrently_completes_once(make_stack, admin):
    # A private stack: "quiet" then means this payment's work is done, whatever the shared stack still holds.
    stack: LoketStack = make_stack(os.environ["REDIS_URL"])
    async with httpx.AsyncClient(base_url=stack.web_url, timeout=30) as api:
        await _same_payment_five_times(api, stack, admin)


async def _same_payment_five_times(api: httpx.AsyncClient, stack: LoketStack, admin) -> None:
    data = await create_with_qr(api, stack, admin)
    event = v2_payment(data["tr_external_id"], data["qr_id"], 40_000, "qrpy_five")
    answers = await asyncio.gather(*(api.post("/api/v1/webhooks/xendit", json=event, headers=TOKEN) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True, True]
    first = await poll(api, data["tr_external_id"], ("COMPLETED",))
    await wait_quiet(stack)
    assert (await api.post("/api/v1/webhooks/xendit", json=event, headers=TOKEN)).json()["duplicate"] is True
    again = (await api.get(f"/api/v1/transactions/external/{data['tr_external_id']}")).json()["data"]
    assert again["tr_paid_at"] == first["tr_paid_at"]  # paid_at is set once
    assert stack.db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = %s", data["tr_external_id"]) == 1


@pytest.mark.parametrize("order", list(itertools.permutations(["v2", "legacy", "seed", "expired"])), ids=lambda o: "-".join(o))
async def test_every_order_of_payment_forms_and_expiry_gives_one_outcome(api, stack: LoketStack, admin, order):
    """Three forms of one payment and the gateway's EXPIRED, in every order, applied by parallel workers:
    whichever decisive event is applied first wins, and everything after it changes nothing."""
    data = await create_with_qr(api, stack, admin)
    external_id, qr_id = data["tr_external_id"], data["qr_id"]
    # Paid at the gateway, which confirms the seed form's payment; its webhooks are the test's.
    await stack.configure_sim(xendit_callback_url="")
    payment_id = (await stack.pay(external_id)).json()["id"]
    bodies = {
        "v2": v2_payment(external_id, qr_id, 40_000, payment_id),
        "legacy": {"event": "qr.payment", "id": payment_id, "amount": 40_000, "status": "COMPLETED", "qr_code": {"id": qr_id, "external_id": external_id}},
        "seed": {"external_id": external_id, "status": "COMPLETED", "xendit_id": qr_id},
        "expired": {"external_id": external_id, "status": "EXPIRED", "xendit_id": qr_id},
    }
    for name in order:
        assert (await api.post("/api/v1/webhooks/xendit", json=bodies[name], headers=TOKEN)).status_code == 200

    async def all_handled() -> bool:
        outcomes = [r["outcome"] for r in stack.db.rows("SELECT outcome FROM webhook_event WHERE reference = %s", external_id)]
        return len(outcomes) == 4 and "received" not in outcomes

    await wait_until(all_handled, timeout=15)
    final = (await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"]
    outcomes = {r["event_key"]: r["outcome"] for r in stack.db.rows("SELECT event_key, outcome FROM webhook_event WHERE reference = %s", external_id)}
    assert sorted(outcomes.values()).count("applied") == 1
    if final["tr_status"] == "COMPLETED":
        assert final["tr_paid_at"] is not None
        assert sorted(outcomes.values()) == ["applied", "ignored", "ignored", "ignored"]
    else:
        assert final["tr_status"] == "EXPIRED" and final["tr_paid_at"] is None
        assert sorted(outcomes.values()) == ["applied", "unmatched", "unmatched", "unmatched"]  # to reconcile


async def test_payments_racing_the_expiry_timer_end_one_way_each(api, stack: LoketStack, admin):
    """Both orders happen, by construction: two sessions are paid long before their expiry (the
    timer comes second and changes nothing), two are paid only once they have expired (the timer
    came first: the money is kept to reconcile), and two are paid at the very edge (either way,
    but one way each, with the quota counting only the paid ones)."""
    location_id = await new_location(api, admin)
    kiosk = kiosk_at(location_id)
    price = (await api.post("/api/v1/prices", json={"mp_name": "Race", "mp_amount": 40_000, "mp_quota": 20}, headers=admin)).json()["data"]
    created = [
        (await api.post("/api/v1/transactions", json={"location_id": location_id, "price_id": price["mp_id"]}, headers=kiosk)).json()["data"]
        for _ in range(6)
    ]
    paid_early, paid_late, paid_at_edge = created[:2], created[2:4], created[4:]

    async def pay(data: dict) -> None:
        qr_id = stack.db.value("SELECT tr_xendit_id FROM qris_transaction WHERE tr_id = %s", data["tr_id"])
        event = v2_payment(data["tr_external_id"], qr_id, 40_000, f"qrpy_race_{data['tr_id']}")
        assert (await api.post("/api/v1/webhooks/xendit", json=event, headers=TOKEN)).status_code == 200

    for data in paid_early:
        await pay(data)
        assert (await poll(api, data["tr_external_id"], ("COMPLETED", "EXPIRED")))["tr_status"] == "COMPLETED"
    edge = stack.db.value("SELECT MAX(tr_expired_at) FROM qris_transaction WHERE tr_id IN %s", [d["tr_id"] for d in paid_at_edge])
    now = stack.db.value("SELECT UTC_TIMESTAMP(6)")
    await asyncio.sleep(max(0.0, (edge - now).total_seconds() - 0.1))
    await asyncio.gather(*(pay(data) for data in paid_at_edge))
    for data in paid_late:
        assert (await poll(api, data["tr_external_id"], ("COMPLETED", "EXPIRED")))["tr_status"] == "EXPIRED"
        await pay(data)
    await wait_quiet(stack)
    # Every timer has fired by now: each session's expiry plus the sweeper's interval has passed.
    last = stack.db.value("SELECT MAX(tr_expired_at) FROM qris_transaction WHERE tr_price_id = %s", price["mp_id"])
    await wait_until(lambda: asyncio.sleep(0, stack.db.value("SELECT UTC_TIMESTAMP(6) > %s + INTERVAL 2 SECOND", last)), timeout=15)
    await wait_quiet(stack)

    ended = {d["tr_id"]: (await api.get(f"/api/v1/transactions/external/{d['tr_external_id']}")).json()["data"] for d in created}
    outcome = {d["tr_id"]: stack.db.value("SELECT outcome FROM webhook_event WHERE reference = %s", d["tr_external_id"]) for d in created}
    for data in paid_early:
        assert ended[data["tr_id"]]["tr_status"] == "COMPLETED" and outcome[data["tr_id"]] == "applied"
    for data in paid_late:
        assert ended[data["tr_id"]]["tr_status"] == "EXPIRED" and outcome[data["tr_id"]] == "unmatched"  # money to reconcile, never lost
    for data in paid_at_edge:
        final = ended[data["tr_id"]]
        if final["tr_status"] == "COMPLETED":
            assert final["tr_paid_at"] is not None and outcome[data["tr_id"]] == "applied"
        else:
            assert final["tr_status"] == "EXPIRED" and final["tr_paid_at"] is None and outcome[data["tr_id"]] == "unmatched"
    completed = sum(final["tr_status"] == "COMPLETED" for final in ended.values())
    assert stack.db.value("SELECT mp_used FROM price WHERE mp_id = %s", price["mp_id"]) == completed


async def test_photos_are_emailed_with_the_gallery_link_and_purged_later(api, stack: LoketStack, admin, mailbox):
    data = await create_with_qr(api, stack, admin)
    external_id, kiosk = data["tr_external_id"], kiosk_at(data["tr_location_id"])
    early = await api.post(f"/api/v1/transactions/{external_id}/photos", json={"email": "a@b.id", "photos": [{"url": "https://cdn.test/1.jpg"}]}, headers=kiosk)
    assert early.status_code == 409 and early.json()["code"] == "not_paid"
    await stack.pay(external_id)
    await poll(api, external_id, ("COMPLETED",))
    photos = [{"url": f"https://cdn.test/{external_id}/{i}.jpg"} for i in range(12)]
    before = len(mailbox.messages)
    accepted = await api.post(f"/api/v1/transactions/{external_id}/photos", json={"email": "pelanggan@mail.id", "photos": photos}, headers=kiosk)
    assert accepted.status_code == 202, accepted.text
    twice = await api.post(f"/api/v1/transactions/{external_id}/photos", json={"email": "pelanggan@mail.id", "photos": photos}, headers=kiosk)
    assert twice.status_code == 409

    messages = await asyncio.to_thread(mailbox.wait_for, before + 1, 15)
    [mail] = [m for m in messages[before:] if m["To"] == "pelanggan@mail.id"]
    assert f"https://galeri.loket.test/{external_id}" in mail.get_payload(decode=True).decode()

    async def sent() -> bool:
        return (await api.get(f"/api/v1/transactions/{external_id}/photos")).json().get("email_sent_at") is not None

    await wait_until(sent, timeout=10)
    gallery = (await api.get(f"/api/v1/transactions/{external_id}/photos")).json()
    assert gallery["photo_count"] == 12 and gallery["photos"] == photos and gallery["expiry_date"] > gallery["email_sent_at"]

    # Fourteen days pass (PHOTO_RETENTION_DAYS); the clock's purge removes the links.
    stack.db.rows("UPDATE photo_delivery SET pd_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE pd_tr_id = %s", data["tr_id"])

    async def purged() -> bool:
        return (await api.get(f"/api/v1/transactions/{external_id}/photos")).status_code == 410

    await wait_until(purged, timeout=10)
    assert stack.db.value("SELECT JSON_LENGTH(pd_photos) FROM photo_delivery WHERE pd_tr_id = %s", data["tr_id"]) == 0


async def test_copies_of_a_photo_job_that_run_together_send_one_email(api, stack: LoketStack, admin, mailbox):
    """The relay's push of a job whose retry waits, or a message redelivered after a worker was
    lost, can run beside the first copy: the e-mail still goes once."""
    data = await create_with_qr(api, stack, admin)
    external_id, kiosk = data["tr_external_id"], kiosk_at(data["tr_location_id"])
    await stack.pay(external_id)
    await poll(api, external_id, ("COMPLETED",))
    email = f"sekali-{data['tr_id']}@mail.id"
    before = len(mailbox.messages)
    mailbox.delay_seconds = 1.0  # each send takes a second, so the copies overlap
    redis = Redis.from_url(stack.processes.env["REDIS_URL"])
    try:
        body = {"email": email, "photos": [{"url": "https://cdn.test/sekali.jpg"}]}
        assert (await api.post(f"/api/v1/transactions/{external_id}/photos", json=body, headers=kiosk)).status_code == 202
        await push(redis, [photos.send_job(data["tr_id"])] * 2)  # two more copies, at once

        async def sent() -> bool:
            return (await api.get(f"/api/v1/transactions/{external_id}/photos")).json().get("email_sent_at") is not None

        await wait_until(sent, timeout=15)
        await wait_quiet(stack)  # every copy has run: what another would have sent has arrived
    finally:
        mailbox.delay_seconds = 0.0
        await redis.aclose()
    assert [m["To"] for m in mailbox.messages[before:]].count(email) == 1
    assert stack.db.value("SELECT COUNT(*) FROM outbox WHERE job_key = %s", photos.send_job(data["tr_id"]).job_key) == 0


async def test_locations_and_prices_crud_with_roles(api, stack: LoketStack, admin, kiosk):
    name = f"Mall CRUD {id(stack)}"
    assert (await api.post("/api/v1/locations", json={"ml_name": name}, headers=kiosk)).status_code == 403
    assert (await api.post("/api/v1/locations", json={"ml_name": name})).status_code == 401
    created = await api.post("/api/v1/locations", json={"ml_name": name, "ml_address": "Jl. A"}, headers=admin)
    assert created.status_code == 201
    location_id = created.json()["data"]["ml_id"]
    assert (await api.post("/api/v1/locations", json={"ml_name": name}, headers=admin)).status_code == 409
    listed = (await api.get("/api/v1/locations", params={"search": "CRUD", "limit": 1}, headers=kiosk)).json()
    assert listed["success"] and listed["total"] >= 1 and listed["size"] == 1 and listed["page"] == 1
    changed = await api.put(f"/api/v1/locations/{location_id}", json={"ml_address": "Jl. B"}, headers=admin)
    assert changed.json()["data"] == {**created.json()["data"], "ml_address": "Jl. B"}

    for bad in ({"mp_name": "Nol", "mp_amount": 0}, {"mp_name": "Neg", "mp_amount": -5}, {"mp_name": "Str", "mp_amount": "40000"}):
        assert (await api.post("/api/v1/prices", json=bad, headers=admin)).status_code == 422
    assert (await api.post("/api/v1/prices", json={"mp_name": "X", "mp_amount": 1, "mp_location_id": 2**31 - 1}, headers=admin)).status_code == 422
    price = (await api.post("/api/v1/prices", json={"mp_name": "Lokal", "mp_amount": 35_000, "mp_location_id": location_id, "mp_quota": 1}, headers=admin)).json()["data"]
    other = await new_location(api, admin)
    wrong_place = await api.post("/api/v1/transactions", json={"location_id": other, "price_id": price["mp_id"]}, headers=kiosk_at(other))
    assert wrong_place.status_code == 422
    taken = await api.post("/api/v1/transactions", json={"location_id": location_id, "price_id": price["mp_id"]}, headers=kiosk_at(location_id))
    assert taken.status_code == 201
    assert (await api.put(f"/api/v1/prices/{price['mp_id']}", json={"mp_quota": 0}, headers=admin)).status_code == 422
    assert (await api.delete(f"/api/v1/locations/{location_id}", headers=admin)).status_code == 409  # it has transactions
    assert (await api.delete(f"/api/v1/locations/{other}", headers=admin)).status_code == 200
    assert (await api.get(f"/api/v1/locations/{other}", headers=kiosk)).status_code == 404


async def test_bad_tokens_bodies_and_ids_are_4xx_and_change_nothing(api, stack: LoketStack, admin):
    kiosk = kiosk_at(2**31 - 1)  # of a location that does not exist
    before = stack.db.value("SELECT COUNT(*) FROM qris_transaction"), stack.db.value("SELECT COUNT(*) FROM webhook_event")
    assert (await api.post("/api/v1/transactions", json={"location_id": 1})).status_code == 401
    assert (await api.post("/api/v1/transactions", json={"location_id": 1}, headers={"authorization": "Bearer nope"})).status_code == 401
    for body in (b"{", b"[]", b'{"location_id": "1"}', b'{"location_id": 0}', b'{"location_id": 1e99}', b'{"location_id": 1, "price_id": -1}'):
        response = await api.post("/api/v1/transactions", content=body, headers={**kiosk, "content-type": "application/json"})
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["success"] is False
    assert (await api.post("/api/v1/transactions", json={"location_id": 2**31 - 1}, headers=kiosk)).status_code == 404
    assert (await api.get("/api/v1/transactions/external/TRX-nope")).status_code == 404
    assert (await api.get("/api/v1/transactions/external/" + "x" * 300)).status_code == 404
    assert (await api.get("/api/v1/transactions/TRX-nope/photos")).status_code == 404
    assert (await api.get("/api/v1/transactions", params={"limit": 0}, headers=kiosk)).status_code == 422
    assert (await api.get("/api/v1/transactions", params={"limit": 1001}, headers=kiosk)).status_code == 422
    assert (await api.get("/api/v1/transactions/count", params={"status": "PAID"}, headers=kiosk)).status_code == 422

    event = v2_payment("TRX-1-20260101000000-AAAAAAAA", "qr_x", 40_000, "qrpy_bad")
    assert (await api.post("/api/v1/webhooks/xendit", json=event)).status_code == 401
    assert (await api.post("/api/v1/webhooks/xendit", json=event, headers={"x-callback-token": "wrong"})).status_code == 403
    for garbage in (b"nope", b"[]", b'{"event": "qr.payment", "data": {"status": "SUCCEEDED"}}', b'{"external_id": "x", "status": "MAYBE"}'):
        response = await api.post("/api/v1/webhooks/xendit", content=garbage, headers={**TOKEN, "content-type": "application/json"})
        assert response.status_code == 400, garbage
    after = stack.db.value("SELECT COUNT(*) FROM qris_transaction"), stack.db.value("SELECT COUNT(*) FROM webhook_event")
    assert after == before


async def test_counts_and_listing_by_status(api, stack: LoketStack, admin):
    total = (await api.get("/api/v1/transactions/count", headers=admin)).json()["data"]["count"]
    pending_or_done = (await api.get("/api/v1/transactions/count", params={"status": "COMPLETED,PENDING"}, headers=admin)).json()["data"]["count"]
    assert total == stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id IS NOT NULL")
    assert pending_or_done == stack.db.value(
        "SELECT COUNT(*) FROM qris_transaction WHERE tr_status IN ('COMPLETED', 'PENDING') AND tr_location_id IS NOT NULL"
    )
    listed = (await api.get("/api/v1/transactions", params={"status": "COMPLETED", "limit": 5}, headers=admin)).json()
    assert all(t["tr_status"] == "COMPLETED" and t["location"]["ml_name"] for t in listed["data"])


def test_public_responses_can_be_encrypted_with_a_fresh_nonce_each_time():
    cipher = ResponseCipher(base64.b64encode(bytes(range(32))).decode())
    payload = json.dumps({"success": True, "data": {"tr_status": "COMPLETED"}}).encode()
    first, second = cipher.seal(payload), cipher.seal(payload)
    assert first != second  # a fresh nonce per response
    assert base64.b64decode(first)[:12] != base64.b64decode(second)[:12]
    assert cipher.open(first) == payload == cipher.open(second)


async def test_public_answers_are_encrypted_when_the_deployment_says_so(make_stack, admin):
    key = base64.b64encode(bytes(range(32))).decode()
    loket: LoketStack = make_stack(os.environ["REDIS_URL"], extra_env={"RESPONSE_ENCRYPTION_KEY": key})
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        location_id = await new_location(api, admin)
        created = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk_at(location_id))).json()["data"]
        first = (await api.get(f"/api/v1/transactions/external/{created['tr_external_id']}")).json()
        second = (await api.get(f"/api/v1/transactions/external/{created['tr_external_id']}")).json()
    assert set(first) == {"data"} and first["data"] != second["data"]  # a fresh nonce each time
    plain = json.loads(ResponseCipher(key).open(first["data"]))
    assert plain["success"] is True and plain["data"]["tr_external_id"] == created["tr_external_id"]
