"""Limits per client address and per reseller (web.abuse): key spraying, registration bursts,
public lookups, deposits; the client address and when a proxy's header is believed."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import time

import httpx
import pytest
from starlette.requests import Request

from core.settings import SettingsError, get_settings
from tests.harness import LoketStack, register
from tests.test_kiosk_flow import new_location
from web.abuse import AbuseLimits, KnownKeys, client_address

LOW = {
    "ADDRESS_KEY_ATTEMPTS_PER_MINUTE": "10",
    "REGISTRATIONS_PER_MINUTE": "3",
    "PUBLIC_LOOKUPS_PER_MINUTE": "5",
    "DEPOSITS_PER_MINUTE": "2",
}


@pytest.fixture
async def limited(make_stack) -> LoketStack:
    """A stack with low limits, and a test that runs inside one minute's window (the counts are per minute)."""
    loket = make_stack(os.environ["REDIS_URL"], extra_env=LOW)
    await asyncio.sleep(max(0.0, 20 - (60 - time.time() % 60)))
    return loket


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429 and response.json()["code"] == "rate_limited", response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_spraying_random_keys_from_one_address_meets_a_429_after_a_few_lookups(limited: LoketStack, admin_token):
    async with httpx.AsyncClient(base_url=limited.web_url, timeout=30) as api:
        reseller = await register(api, admin_token)
        assert (await api.get("/saldo", headers=reseller.headers)).status_code == 200  # a key that works, known from now on
        answers: list[httpx.Response] = []
        for _ in range(20):  # 400 random keys, 20 at a time
            answers += await asyncio.gather(*(api.get("/saldo", headers={"x-api-key": secrets.token_hex(32)}) for _ in range(20)))
        codes = [a.status_code for a in answers]
        # Each 401 is one lookup; every 429 was refused before the database. The address's ten
        # failures may be overshot only by the first batch already in flight when they were counted.
        assert 10 <= codes.count(401) <= 20 and codes.count(401) + codes.count(429) == 400, codes
        for refused in (a for a in answers if a.status_code == 429):
            assert_limited(refused)
        # Spoofing a proxy's header does not make another client: no proxy is trusted here.
        spoofed = await api.get("/saldo", headers={"x-api-key": secrets.token_hex(32), "x-forwarded-for": "203.0.113.9"})
        assert_limited(spoofed)
        # The reseller whose key works keeps working from the same address.
        assert (await api.get("/saldo", headers=reseller.headers)).status_code == 200
        assert (await api.get("/riwayat", headers=reseller.headers)).status_code == 200


async def test_many_new_valid_keys_from_one_address_are_never_refused(limited: LoketStack, admin_token):
    """An aggregator with more resellers behind one address than the allowance of unknown keys:
    each first request with a valid key is answered, however many come at once."""
    async with httpx.AsyncClient(base_url=limited.web_url, timeout=30) as api:
        resellers = [await register(api, admin_token, saldo=100_000) for _ in range(25)]
        answers = await asyncio.gather(*(api.get("/saldo", headers=r.headers) for r in resellers))
        assert [a.status_code for a in answers] == [200] * 25, [a.text for a in answers if a.status_code != 200]
        first_buys = await asyncio.gather(
            *(api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"08129999{n:04d}"}, headers=r.headers) for n, r in enumerate(resellers))
        )
        assert [a.status_code for a in first_buys] == [200] * 25


async def test_a_burst_of_registrations_from_one_address_is_capped(limited: LoketStack, admin_token):
    async with httpx.AsyncClient(base_url=limited.web_url, timeout=30) as api:
        tag = secrets.token_hex(4)
        bodies = [{"nama": "Toko", "email": f"burst{tag}{i}@uji.id"} for i in range(40)]
        answers = await asyncio.gather(*(api.post("/register", json=body) for body in bodies))
        codes = [a.status_code for a in answers]
        assert codes.count(200) == 3 and codes.count(429) == 37, codes
        for refused in (a for a in answers if a.status_code == 429):
            assert_limited(refused)
        assert limited.db.value("SELECT COUNT(*) FROM reseller WHERE email LIKE %s", f"burst{tag}%") == 3
        await register(api, admin_token)  # an admin's registrations are not counted


async def test_a_burst_of_public_lookups_from_one_address_is_capped(limited: LoketStack, admin):
    async with httpx.AsyncClient(base_url=limited.web_url, timeout=30) as api:
        location_id = await new_location(api, admin)
        created = (await api.post("/api/v1/transactions", json={"location_id": location_id}, headers=admin)).json()["data"]
        path = f"/api/v1/transactions/external/{created['tr_external_id']}"
        codes = [(await api.get(path)).status_code for _ in range(5)]
        assert codes == [200] * 5
        assert_limited(await api.get(path))
        assert_limited(await api.get(f"/api/v1/transactions/{created['tr_external_id']}/photos"))  # the same allowance
        assert_limited(await api.get("/api/v1/transactions/external/TRX-unknown"))  # guessing ids counts too


async def test_deposits_of_one_reseller_are_capped(limited: LoketStack, admin_token):
    async with httpx.AsyncClient(base_url=limited.web_url, timeout=30) as api:
        reseller = await register(api, admin_token)
        first = [await api.post("/deposit", json={"jumlah": 10_000}, headers=reseller.headers) for _ in range(2)]
        assert [r.status_code for r in first] == [201, 201], [r.text for r in first]
        assert_limited(await api.post("/deposit", json={"jumlah": 10_000}, headers=reseller.headers))
        assert limited.db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_reseller_id = %s", reseller.id) == 2
        other = await register(api, admin_token)
        assert (await api.post("/deposit", json={"jumlah": 10_000}, headers=other.headers)).status_code == 201  # per reseller


def request_from(peer: str, trusted: str, forwarded: str | None = None) -> Request:
    limits = AbuseLimits(None, None, None, None, KnownKeys(1), tuple(ipaddress.ip_network(t) for t in trusted.split(",") if t))  # type: ignore[arg-type]

    class App:
        class state:
            abuse_limits = limits

    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return Request({"type": "http", "client": (peer, 50000), "headers": headers, "app": App})


def test_a_proxy_header_counts_only_from_a_trusted_proxy_and_only_as_far_as_the_proxies_go():
    assert client_address(request_from("198.51.100.7", "")) == "198.51.100.7"
    assert client_address(request_from("198.51.100.7", "", "203.0.113.9")) == "198.51.100.7"  # nobody trusted
    assert client_address(request_from("198.51.100.7", "10.0.0.0/8", "203.0.113.9")) == "198.51.100.7"  # not from the proxy
    assert client_address(request_from("10.0.0.5", "10.0.0.0/8", "203.0.113.9")) == "203.0.113.9"
    # What the client wrote itself is left of what the proxy appended: the right-most untrusted hop counts.
    assert client_address(request_from("10.0.0.5", "10.0.0.0/8", "1.1.1.1, 203.0.113.9, 10.0.0.6")) == "203.0.113.9"
    assert client_address(request_from("10.0.0.5", "10.0.0.0/8", "garbage")) == "10.0.0.5"
    assert client_address(request_from("10.0.0.5", "10.0.0.0/8")) == "10.0.0.5"
    assert client_address(request_from("::1", "::1", "2001:db8::1")) == "2001:db8::1"


@pytest.mark.parametrize(
    "name, value",
    [("TRUSTED_PROXIES", "10.0.0.1,proxy.internal"), ("REGISTRATIONS_PER_MINUTE", "-1"), ("PUBLIC_LOOKUPS_PER_MINUTE", "many")],
)
def test_a_bad_limit_setting_is_refused_at_start_up_by_its_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=name):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
