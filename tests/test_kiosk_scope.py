"""Kiosk tokens act for their own location only, and a staff token can be revoked by its jti."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx

from core.security import issue_staff_token, verify_staff_token
from tests.harness import LoketStack, fast_env, wait_until
from tests.servers import RedisServer
from tests.test_kiosk_flow import kiosk_at, new_location, poll

SECRET = fast_env()["JWT_SECRET"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def jti_of(token: str) -> str:
    claims = verify_staff_token(SECRET, token)
    assert claims is not None and claims.jti
    return claims.jti


async def paid_session(api: httpx.AsyncClient, stack: LoketStack, location_id: int) -> dict:
    created = await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk_at(location_id))
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    if not data["tr_qris_string"]:
        await wait_until(lambda: _has_qr(api, data["tr_external_id"]))
    assert (await stack.pay(data["tr_external_id"])).status_code == 200
    return await poll(api, data["tr_external_id"], ("COMPLETED",))


async def _has_qr(api: httpx.AsyncClient, external_id: str) -> bool:
    return bool((await api.get(f"/api/v1/transactions/external/{external_id}")).json()["data"]["tr_qris_string"])


async def test_a_kiosk_of_one_location_cannot_create_list_count_or_send_photos_at_another(api, stack: LoketStack, admin):
    here, there = await new_location(api, admin), await new_location(api, admin)
    kiosk_here = kiosk_at(here)
    theirs = await paid_session(api, stack, there)
    mine = (await api.post("/api/v1/transactions", json={"location_id": here}, headers=kiosk_here)).json()["data"]
    rows_there = stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", there)

    foreign = await api.post("/api/v1/transactions", json={"location_id": there}, headers=kiosk_here)
    assert foreign.status_code == 403 and foreign.json()["code"] == "wrong_location" and foreign.json()["success"] is False
    assert stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", there) == rows_there

    # Listing and counting show this location's transactions only, whatever the search says.
    listed = (await api.get("/api/v1/transactions", params={"limit": 1000}, headers=kiosk_here)).json()
    assert listed["total"] == 1 and [t["tr_external_id"] for t in listed["data"]] == [mine["tr_external_id"]]
    searched = (await api.get("/api/v1/transactions", params={"search": theirs["tr_external_id"]}, headers=kiosk_here)).json()
    assert searched["total"] == 0 and searched["data"] == []
    assert (await api.get("/api/v1/transactions/count", headers=kiosk_here)).json()["data"]["count"] == 1
    everything = (await api.get("/api/v1/transactions", params={"search": theirs["tr_external_id"]}, headers=admin)).json()
    assert everything["total"] == 1  # an admin token without a location still sees every location

    # The other kiosk's paid session: no photos, no e-mail from here, and it stays usable there.
    body = {"email": "penyerang@jahat.id", "photos": [{"url": "https://evil.test/1.jpg"}]}
    attached = await api.post(f"/api/v1/transactions/{theirs['tr_external_id']}/photos", json=body, headers=kiosk_here)
    assert attached.status_code == 403 and attached.json()["code"] == "wrong_location"
    assert stack.db.value("SELECT COUNT(*) FROM photo_delivery WHERE pd_tr_id = %s", theirs["tr_id"]) == 0
    own = {"email": "pelanggan@mail.id", "photos": [{"url": "https://cdn.test/a.jpg"}]}
    accepted = await api.post(f"/api/v1/transactions/{theirs['tr_external_id']}/photos", json=own, headers=kiosk_at(there))
    assert accepted.status_code == 202, accepted.text
    assert stack.db.value("SELECT pd_email FROM photo_delivery WHERE pd_tr_id = %s", theirs["tr_id"]) == "pelanggan@mail.id"


async def test_a_kiosk_token_without_a_location_acts_on_no_transactions(api, stack: LoketStack, admin, kiosk):
    """Below level 50 a token must name its location; it still reads the master data."""
    location_id = await new_location(api, admin)
    before = stack.db.value("SELECT COUNT(*) FROM qris_transaction")
    for response in (
        await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk),
        await api.get("/api/v1/transactions", headers=kiosk),
        await api.get("/api/v1/transactions/count", headers=kiosk),
        await api.post(
            "/api/v1/transactions/TRX-x/photos",
            json={"email": "a@b.id", "photos": [{"url": "https://c.test/1.jpg"}]},
            headers=kiosk,
        ),
    ):
        assert response.status_code in (403, 404), response.text
        assert response.status_code == 404 or response.json()["code"] == "location_required"
    assert stack.db.value("SELECT COUNT(*) FROM qris_transaction") == before
    assert (await api.get(f"/api/v1/locations/{location_id}", headers=kiosk)).status_code == 200


async def test_a_revoked_token_is_refused_and_only_an_admin_revokes(api, stack: LoketStack, admin):
    location_id = await new_location(api, admin)
    token = issue_staff_token(SECRET, "kiosk-lost", 1, 720 * 3600, location_id=location_id)
    other = kiosk_at(location_id)
    assert (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=bearer(token))).status_code == 201

    by_kiosk = await api.post("/api/v1/staff-tokens/revocations", json={"jti": jti_of(token)}, headers=other)
    assert by_kiosk.status_code == 403
    for bad in ({}, {"jti": ""}, {"jti": "x" * 65}, {"jti": 5}):
        assert (await api.post("/api/v1/staff-tokens/revocations", json=bad, headers=admin)).status_code == 422, bad
    revoked = await api.post(
        "/api/v1/staff-tokens/revocations", json={"jti": jti_of(token), "reason": "kiosk stolen"}, headers=admin
    )
    assert revoked.status_code == 200 and revoked.json()["data"] == {"jti": jti_of(token), "revoked_now": True}
    again = await api.post("/api/v1/staff-tokens/revocations", json={"jti": jti_of(token)}, headers=admin)
    assert again.json()["data"]["revoked_now"] is False

    before = stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", location_id)
    refused = await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    assert (await api.get("/api/v1/transactions", headers=bearer(token))).status_code == 401
    assert stack.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", location_id) == before
    assert (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=other)).status_code == 201


async def test_a_revocation_by_the_operator_command_outlives_a_redis_and_a_web_restart(
    redis_server: RedisServer, make_stack, admin
):
    loket: LoketStack = make_stack(redis_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        location_id = await new_location(api, admin)
        token = issue_staff_token(SECRET, "kiosk-9", 1, 720 * 3600, location_id=location_id)

        async def create() -> int:
            return (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=bearer(token))).status_code

        assert await create() == 201
        env = {**os.environ, **loket.processes.env}
        command = [sys.executable, "-m", "ops.token", "--revoke", token, "--reason", "kiosk lost"]
        done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and f"revoked {jti_of(token)}" in done.stdout, done.stderr
        await wait_until(lambda: _is(create, 401), timeout=10)  # the web reloads its list from the database

        redis_server.stop()
        redis_server.start()
        loket.process("web").kill(signal.SIGKILL)
        loket.restart_web()
        assert await create() == 401
        assert (
            await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=kiosk_at(location_id))
        ).status_code == 201
    expiry = loket.db.value("SELECT expires_at FROM staff_token_revocation WHERE jti = %s", jti_of(token))
    assert expiry is not None  # read from the token: the row is not needed after it


async def _is(call, status: int) -> bool:
    return await call() == status
