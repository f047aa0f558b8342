"""Signed requests, replays, per-key rate limits and body limits."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator

import httpx
import pytest
import redis as sync_redis

from tests.harness import LoketStack, final_statuses, register
from web.signing import expected_signature


def signed_headers(reseller, method: str, path: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {**reseller.headers, "x-timestamp": ts, "x-signature": expected_signature(reseller.private_key, ts, method, path, body)}


async def test_a_signed_request_is_accepted_and_a_tampered_or_replayed_one_refused(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=100_000)
    body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211110001", "ref_id": "SIG-1"}).encode()
    headers = {**signed_headers(reseller, "POST", "/beli", body), "content-type": "application/json"}
    accepted = await api.post("/beli", content=body, headers=headers)
    assert accepted.status_code == 200
    await final_statuses(api, reseller, [accepted.json()["id"]])  # so that only a refused request could change the money

    before = stack.db.money_of(reseller.id)
    replay = await api.post("/beli", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    tampered = body.replace(b"0001", b"0002")
    fresh = {**signed_headers(reseller, "POST", "/beli", body), "content-type": "application/json"}
    assert (await api.post("/beli", content=tampered, headers=fresh)).json()["code"] == "bad_signature"
    stale_body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211110003"}).encode()
    stale = {**signed_headers(reseller, "POST", "/beli", stale_body, int(time.time()) - 301), "content-type": "application/json"}
    assert (await api.post("/beli", content=stale_body, headers=stale)).json()["code"] == "stale_timestamp"
    other_path = {**signed_headers(reseller, "POST", "/generate-key", b""), "content-type": "application/json"}
    assert (await api.post("/beli", content=body, headers=other_path)).status_code == 401
    assert stack.db.money_of(reseller.id) == before
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 1
    assert (await api.get("/saldo", headers=reseller.headers)).json() == {"saldo": 88_000}


async def test_an_account_can_require_signatures(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=0)
    stack.db.rows("UPDATE reseller SET require_signature = TRUE WHERE id = %s", reseller.id)
    unsigned = await api.get("/saldo", headers=reseller.headers)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "signature_required"
    assert (await api.get("/saldo", headers=signed_headers(reseller, "GET", "/saldo", b""))).json() == {"saldo": 0}


async def test_an_account_that_requires_signatures_buys_nothing_unsigned(api, stack: LoketStack, admin_token):
    reseller = await register(api, admin_token, saldo=50_000)
    stack.db.rows("UPDATE reseller SET require_signature = TRUE WHERE id = %s", reseller.id)
    body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211110009", "ref_id": "REQ-SIG"}).encode()
    json_type = {"content-type": "application/json"}
    unsigned = await api.post("/beli", content=body, headers={**reseller.headers, **json_type})
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "signature_required"
    assert stack.db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller.id) == 0
    assert stack.db.value("SELECT saldo FROM reseller WHERE id = %s", reseller.id) == 50_000
    signed_at = int(time.time())
    signed = await api.post("/beli", content=body, headers={**signed_headers(reseller, "POST", "/beli", body, signed_at), **json_type})
    assert signed.status_code == 200 and signed.json()["saldo"] == 38_000
    # Its purchases are not read unsigned either (GET /status reads the account and the purchase in one statement).
    path = f"/status/{signed.json()['id']}"
    unsigned_read = await api.get(path, headers=reseller.headers)
    assert unsigned_read.status_code == 401 and unsigned_read.json()["code"] == "signature_required"
    assert (await api.get(path, headers=signed_headers(reseller, "GET", path, b""))).json()["ref_id"] == "REQ-SIG"
    # The same order signed afresh (another second than the first, whose signature is a replay): the
    # same purchase back, nothing debited twice.
    again = await api.post("/beli", content=body, headers={**signed_headers(reseller, "POST", "/beli", body, signed_at - 1), **json_type})
    assert again.status_code == 200 and again.json()["id"] == signed.json()["id"] and again.json()["saldo"] == 38_000


@pytest.fixture
def limited_stack(make_stack) -> Iterator[LoketStack]:
    # Keys under the stack's own namespace, which the session deletes at its end.
    yield make_stack(os.environ["REDIS_URL"], extra_env={"RATE_LIMIT_PER_MINUTE": "20"})


async def test_the_rate_limit_answers_429_with_retry_after_and_recovers(limited_stack: LoketStack, admin_token):
    await asyncio.sleep(max(0.0, 10 - (60 - time.time() % 60)))  # the whole test in one minute's window
    async with httpx.AsyncClient(base_url=limited_stack.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=0)
        other = await register(api, admin_token, saldo=0)
        answers = [await api.get("/saldo", headers=reseller.headers) for _ in range(25)]
        assert [a.status_code for a in answers].count(200) == 20
        limited = answers[-1]
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert (await api.get("/saldo", headers=other.headers)).status_code == 200  # per key
        # The window ends: move this key's counter as the next minute would. The web hears of it
        # when it next settles its counts with Redis (web/rate_limit.py), within a request or two.
        await asyncio.sleep(0.3)  # the counts have reached Redis
        client = sync_redis.Redis.from_url(limited_stack.processes.env["REDIS_URL"])
        for key in client.scan_iter(f"{limited_stack.processes.env['REDIS_NAMESPACE']}:loket:rl:*"):
            client.delete(key)
        codes = []
        while len(codes) < 20 and 200 not in codes:
            await asyncio.sleep(0.1)
            codes.append((await api.get("/saldo", headers=reseller.headers)).status_code)
        assert codes[-1] == 200 and len(codes) <= 3, codes


async def test_a_flood_of_wrong_keys_is_limited_too_before_the_database(limited_stack: LoketStack):
    await asyncio.sleep(max(0.0, 10 - (60 - time.time() % 60)))  # the whole test in one minute's window
    async with httpx.AsyncClient(base_url=limited_stack.web_url, timeout=30) as api:
        codes = [(await api.get("/saldo", headers={"x-api-key": "f" * 64})).status_code for _ in range(22)]
        assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]


async def test_the_signature_covers_the_query_string(api, stack: LoketStack, admin_token):
    """GET /status?ref_id=…: a signature made for one ref_id does not read another."""
    reseller = await register(api, admin_token, saldo=100_000)
    for ref in ("Q-A", "Q-B"):
        body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211119999", "ref_id": ref}).encode()
        bought = await api.post("/beli", content=body, headers={**signed_headers(reseller, "POST", "/beli", body), "content-type": "application/json"})
        assert bought.status_code == 200, bought.text
    headers = signed_headers(reseller, "GET", "/status?ref_id=Q-A", b"")
    swapped = await api.get("/status", params={"ref_id": "Q-B"}, headers=headers)
    assert swapped.status_code == 401 and swapped.json()["code"] == "bad_signature"
    read = await api.get("/status", params={"ref_id": "Q-A"}, headers=headers)
    assert read.status_code == 200 and read.json()["ref_id"] == "Q-A"
    without_query = signed_headers(reseller, "GET", "/status", b"", int(time.time()) - 1)
    assert (await api.get("/status", params={"ref_id": "Q-A"}, headers=without_query)).json()["code"] == "bad_signature"


async def test_a_signed_order_is_refused_while_the_replay_check_cannot_reach_redis(redis_server, make_stack, admin_token):
    loket: LoketStack = make_stack(redis_server.url)
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=100_000)
        before = loket.db.money_of(reseller.id)
        redis_server.stop()
        body = json.dumps({"produk_id": 1, "nomor_tujuan": "081211118888", "ref_id": "NO-REDIS"}).encode()
        answer = await api.post("/beli", content=body, headers={**signed_headers(reseller, "POST", "/beli", body), "content-type": "application/json"})
        assert answer.status_code == 503 and answer.json()["code"] == "replay_check_unavailable", answer.text
        assert int(answer.headers["retry-after"]) > 0
        assert loket.db.money_of(reseller.id) == before
        redis_server.start()
