"""Reseller callbacks go to public addresses only: a callback URL cannot make Loket call its own
internal services (SSRF). The suite's other stacks allow private addresses (their receivers are on
127.0.0.1); the stack here runs with the production default."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.outbound import PublicOnlyResolver, refused_callback_url
from tests.harness import LoketStack, final_statuses, register, sole_delivery_when
from tests.receiver import Receiver

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
]
ALLOWED = ["https://toko.example/hook", "http://api.toko-pulsa.co.id:8443/callback?x=1", "http://8.8.8.8/hook", "https://[2606:4700::1111]/"]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_into_private_networks_are_refused(url: str):
    assert refused_callback_url(url) is not None


@pytest.mark.parametrize("url", ALLOWED)
def test_public_urls_are_allowed(url: str):
    assert refused_callback_url(url) is None


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
        assert receiver.of("legacy") == []
