"""Reseller callbacks go to public addresses only: a callback URL cannot make Loket call its own
internal services (SSRF). The suite's other stacks allow private addresses (their receivers are on
127.0.0.1); the stack here runs with the production default."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import httpx
import pytest

from core.outbound import PublicOnlyResolver, callback_connector, is_public_address, refused_callback_url, refused_connection
from jobs.callbacks import outcome_of
from tests.harness import LoketStack, final_statuses, register, sole_delivery_when
from tests.receiver import Receiver

# Hosts that name a non-public address in a form a naive check takes for a public name or
# address: fullwidth, circled and ideographic-full-stop digits (which yarl, as aiohttp, turns
# into 127.0.0.1), IPv6 forms that carry an IPv4 address, site-local IPv6, 192.0.0.0/24, and
# the shorthand IPv4 forms the system resolver reads as addresses.
DISGUISED_HOSTS = [
    "１２７.0.0.1",
    "①②⑦.0.0.1",
    "127。0。0.1",
    "１６９.２５４.１６９.２５４",
    "[::127.0.0.1]",
    "[::ffff:0:127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::1]",
    "[fec0::1]",
    "192.0.0.1",
    "192.0.0.9",
    "127.1",
    "0x7f.0.0.1",
]

REFUSED = [
    "http://127.0.0.1:9191/metrics",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8000/",
    "http://[::1]:8000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://localhost:8000/hook",
    "http://db.internal/hook",
    "http://printer.local/hook",
    "http://intranet/hook",
    "http://user:secret@toko.example/hook",
    "ftp://toko.example/hook",
    "http://toko.example:99999/hook",
    "http://[fe80::1%25eth0]/hook",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo, to the client 192.0.2.45
    *(f"http://{host}:8000/hook" for host in DISGUISED_HOSTS),
]
ALLOWED = [
    "https://toko.example/hook",
    "http://api.toko-pulsa.co.id:8443/callback?x=1",
    "http://8.8.8.8/hook",
    "https://[2606:4700::1111]/",
    "https://tokó.id/hook",  # an international name: IDNA-encoded, a public name still
    "http://[2002:808:808::1]/hook",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_into_private_networks_are_refused(url: str):
    assert refused_callback_url(url) is not None


@pytest.mark.parametrize("url", ALLOWED)
def test_public_urls_are_allowed(url: str):
    assert refused_callback_url(url) is None


@pytest.mark.parametrize("address", ["::7f00:1", "::ffff:0:7f00:1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", "fec0::1", "192.0.0.8", "::ffff:10.0.0.1"])
def test_addresses_that_lead_to_private_ones_are_not_public(address: str):
    assert not is_public_address(address)


async def test_a_name_that_resolves_to_loopback_is_refused_at_connection_time():
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="non-public"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    server = hooks.start()
    yield hooks
    server.should_exit = True


async def receiver_is_up(receiver: Receiver) -> None:
    """That the receiver records what reaches it: without this, "it received nothing" would
    also hold for a receiver that never started."""
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(receiver.url("probe"), content=b"{}")).status_code == 200
    assert len(receiver.of("probe")) == 1


@pytest.mark.parametrize("url", ["{receiver}", "http://localhost:{port}/hook/x"])
async def test_the_callback_client_refuses_a_non_public_address_when_it_connects(receiver: Receiver, url: str):
    """The last check, on the address each connection goes to: it holds for an IP literal,
    which aiohttp connects to without asking the resolver, whatever the URL check let by."""
    await receiver_is_up(receiver)
    target = url.format(receiver=receiver.url("x"), port=receiver.port)
    async with aiohttp.ClientSession(connector=callback_connector(allow_private_networks=False)) as client:
        with pytest.raises(aiohttp.ClientError) as refused:
            await client.post(target, data=b"{}")
    assert refused_connection(refused.value) and outcome_of(refused.value) == "refused: not a public address"
    assert receiver.of("x") == []


async def test_with_the_production_default_private_callbacks_are_refused_and_never_called(
    redis_server, make_stack, admin_token, receiver: Receiver
):
    loket: LoketStack = make_stack(redis_server.url, extra_env={"CALLBACK_ALLOW_PRIVATE_NETWORKS": "false"})
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        admin = {"authorization": f"Bearer {admin_token}"}
        before = loket.db.value("SELECT COUNT(*) FROM reseller")
        refused = await api.post("/register", json={"nama": "Toko", "email": "ssrf@uji.id", "callback_url": receiver.url("x")}, headers=admin)
        assert refused.status_code == 422 and refused.json()["detail"].startswith("callback_url: ")
        assert loket.db.value("SELECT COUNT(*) FROM reseller") == before

        reseller = await register(api, admin_token, saldo=100_000)
        for url in ("http://169.254.169.254/latest/meta-data/", "http://localhost:9191/metrics"):
            answer = await api.put("/callback", json={"callback_url": url}, headers=reseller.headers)
            assert answer.status_code == 422, answer.text
        assert loket.db.value("SELECT callback_url FROM reseller WHERE id = %s", reseller.id) is None
        assert (await api.put("/callback", json={"callback_url": "https://toko.example/hook"}, headers=reseller.headers)).status_code == 200

        # A URL stored before the rule (or by hand): each delivery attempt checks it again.
        loket.db.rows("UPDATE reseller SET callback_url = %s WHERE id = %s", receiver.url("legacy"), reseller.id)
        purchase = (await api.post("/beli", json={"produk_id": 1, "nomor_tujuan": "081234560001"}, headers=reseller.headers)).json()
        await final_statuses(api, reseller, [purchase["id"]])

        delivery = await sole_delivery_when(api, reseller, lambda d: d["attempts"] >= 1)
        assert delivery["status"] == "pending" and delivery["attempt_log"][0]["error"].startswith("refused: 127.0.0.1 is not a public address")
        await receiver_is_up(receiver)
        assert receiver.of("legacy") == []


async def test_disguised_private_hosts_are_refused_when_set_and_when_delivered(redis_server, make_stack, admin_token, receiver: Receiver):
    loket: LoketStack = make_stack(redis_server.url, extra_env={"CALLBACK_ALLOW_PRIVATE_NETWORKS": "false"})
    urls = {f"h{i}": f"http://{host}:{receiver.port}/hook/h{i}" for i, host in enumerate(DISGUISED_HOSTS)}
    async with httpx.AsyncClient(base_url=loket.web_url, timeout=30) as api:
        reseller = await register(api, admin_token, saldo=1_000_000)
        assert (await api.put("/callback", json={"callback_url": "https://toko.example/hook"}, headers=reseller.headers)).status_code == 200
        for url in urls.values():
            answer = await api.put("/callback", json={"callback_url": url}, headers=reseller.headers)
            assert answer.status_code == 422 and answer.json()["detail"].startswith("callback_url: ") and "not a public address" in answer.json()["detail"], (url, answer.text)
        assert loket.db.value("SELECT callback_url FROM reseller WHERE id = %s", reseller.id) == "https://toko.example/hook"

        # Stored before the rule (or by hand): refused at each delivery, and nothing reaches the receiver.
        owners = {}
        for name, url in urls.items():
            owner = await register(api, admin_token, saldo=100_000)
            loket.db.rows("UPDATE reseller SET callback_url = %s WHERE id = %s", url, owner.id)
            owners[name] = owner
        purchases = await asyncio.gather(*(
            api.post("/beli", json={"produk_id": 1, "nomor_tujuan": f"08123456{i:04d}"}, headers=owner.headers) for i, owner in enumerate(owners.values())
        ))  # fmt: skip
        for owner, purchase in zip(owners.values(), purchases, strict=True):
            await final_statuses(api, owner, [purchase.json()["id"]])
        for name, owner in owners.items():
            delivery = await sole_delivery_when(api, owner, lambda d: d["attempts"] >= 1)
            assert delivery["attempt_log"][0]["error"].startswith("refused: ") and "not a public address" in delivery["attempt_log"][0]["error"], (urls[name], delivery)
        await receiver_is_up(receiver)
        assert [r.name for r in receiver.received] == ["probe"]

