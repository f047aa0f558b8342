"""Tests of the Digiflazz simulator (sim/), in-process via ASGITransport plus real local servers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.provider_answers import Outcome
from provider.digiflazz import DigiflazzClient, ProviderUnreachable
from sim.app import create_app
from sim.provider import DigiflazzProvider
from sim.settings import Settings

SETTINGS = Settings(callback_url="", pending_ms=200, seed=1234)
SECRET = SETTINGS.ppob_webhook_secret


def body(ref_id: str, customer_no: str = "081200000000", sku: str = "pulsa10", **extra: Any) -> dict[str, Any]:
    """A correctly signed transaction request.

    Args:
        ref_id: buyer reference; customer_no: destination (its last 4 digits pick the behaviour);
        sku: buyer_sku_code; extra: fields to add or override.
    """
    user, key = SETTINGS.ppob_username, SETTINGS.ppob_api_key
    sign = hashlib.md5((user + key + ref_id).encode()).hexdigest()
    return {"username": user, "buyer_sku_code": sku, "customer_no": customer_no, "ref_id": ref_id,
            "sign": sign, **extra}


@dataclass
class Sim:
    """An in-process simulator and a client bound to it."""

    client: httpx.AsyncClient
    provider: DigiflazzProvider

    async def tx(self, payload: dict[str, Any] | bytes) -> httpx.Response:
        """POST /v1/transaction. payload: a JSON object, or raw bytes sent as is."""
        if isinstance(payload, bytes):
            return await self.client.post("/v1/transaction", content=payload)
        return await self.client.post("/v1/transaction", json=payload)

    async def data(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/transaction, expect HTTP 200, return `data`. payload: the request object."""
        resp = await self.tx(payload)
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()["data"]
        return data

    async def config(self, **patch: Any) -> dict[str, Any]:
        """POST /_sim/config. patch: config keys to change."""
        resp = await self.client.post("/_sim/config", json=patch)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    async def records(self) -> list[dict[str, Any]]:
        """GET /_sim/transactions."""
        result: list[dict[str, Any]] = (await self.client.get("/_sim/transactions")).json()
        return result


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_app(SETTINGS)
    provider: DigiflazzProvider = app.state.provider
    provider.callback_retry_delay_s = 0.05
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield Sim(client, provider)
    await provider.aclose()


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free port; yields its base URL.

    Args:
        app: the app to serve.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", loop="asyncio", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Receiver:
    """A callback receiver: records every hit; the first `fail_first` hits get HTTP 500."""

    url: str = ""
    hits: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        rec.hits.append((dict(request.headers), await request.body()))
        if rec.fail_first > 0:
            rec.fail_first -= 1
            return JSONResponse({"error": "try again"}, status_code=500)
        return JSONResponse({"ok": True})

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        rec.url = f"{base}/hook"
        yield rec


async def eventually(check: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll until check() is true. check: sync or async predicate; timeout: seconds before failing."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def verify(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """Check a callback's headers and signature; return its `data`. headers/raw: as received."""
    expected = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature"], expected)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Digiflazz-Hookshot"
    data: dict[str, Any] = json.loads(raw)["data"]
    return data


@pytest.mark.asyncio
async def test_health(sim: Sim) -> None:
    assert (await sim.client.get("/health")).json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_sukses(sim: Sim) -> None:
    data = await sim.data(body("r-ok", "081200000000", "pln50"))
    assert (data["status"], data["rc"], data["message"]) == ("Sukses", "00", "Transaksi Sukses")
    assert len(data["sn"]) == 20 and data["sn"].isdigit()
    assert data["price"] == 50300 and data["ref_id"] == "r-ok" and data["buyer_sku_code"] == "pln50"
    assert set(data) == {"ref_id", "customer_no", "buyer_sku_code", "message", "status", "rc", "sn",
                         "buyer_last_saldo", "price", "tele", "wa"}
    [rec] = await sim.records()
    assert rec["ref_id"] == "r-ok" and rec["status"] == "Sukses" and rec["calls"] == 1 and rec["created_at"]


@pytest.mark.asyncio
async def test_gagal_1232(sim: Sim) -> None:
    data = await sim.data(body("r-fail", "081200001232"))
    assert (data["status"], data["rc"], data["message"], data["sn"]) == ("Gagal", "02", "Transaksi Gagal", "")
    assert len(await sim.records()) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("customer_no", "status", "rc"), [("081200001233", "Sukses", "00"),
                                                           ("081200001234", "Gagal", "02")])
async def test_pending_resolves_on_recheck(sim: Sim, customer_no: str, status: str, rc: str) -> None:
    req = body("r-pend", customer_no, "pulsa20")
    first = await sim.data(req)
    assert (first["status"], first["rc"], first["message"], first["sn"]) == ("Pending", "03", "Transaksi Pending", "")
    assert (await sim.data(req))["status"] == "Pending"  # before pending_ms
    await asyncio.sleep(0.25)
    final = await sim.data(req)
    assert (final["status"], final["rc"]) == (status, rc)
    assert (len(final["sn"]) == 20) == (status == "Sukses")
    [rec] = await sim.records()
    assert rec["calls"] == 3 and rec["status"] == status


@pytest.mark.asyncio
async def test_pending_check_resolves_false_keeps_pending(sim: Sim) -> None:
    await sim.config(pending_check_resolves=False, pending_ms=50)
    req = body("r-hold", "081200001233")
    assert (await sim.data(req))["status"] == "Pending"
    await asyncio.sleep(0.1)
    assert (await sim.data(req))["rc"] == "03"
    # The record itself did resolve; only status checks keep hiding it.
    assert (await sim.client.get("/_sim/transactions/r-hold")).json()["status"] == "Sukses"


@pytest.mark.asyncio
async def test_same_ref_id_is_idempotent(sim: Sim) -> None:
    req = body("r-same", "081200005555")
    first, second = await sim.data(req), await sim.data(req)
    assert first == second
    [rec] = await sim.records()
    assert rec["calls"] == 2 and rec["sn"] == first["sn"]


@pytest.mark.asyncio
async def test_changed_body_same_ref_id_is_rc49(sim: Sim) -> None:
    original = await sim.data(body("r-dup", "081200005555"))
    for changed in (body("r-dup", "081200006666"), body("r-dup", "081200005555", "xld10")):
        data = await sim.data(changed)
        assert (data["status"], data["rc"], data["message"]) == ("Gagal", "49", "Ref ID tidak unik")
    [rec] = await sim.records()
    assert rec["customer_no"] == "081200005555" and rec["sn"] == original["sn"] and rec["status"] == "Sukses"


@pytest.mark.asyncio
@pytest.mark.parametrize(("payload", "rc"), [
    (b"{not json", "40"),
    (b"[1, 2]", "40"),
    ({k: v for k, v in body("r-x").items() if k != "sign"}, "40"),
    (body("r-x", testing="yes"), "40"),
    (body("r-x", username="someone-else"), "42"),
    (body("r-x", sign="0" * 32), "41"),
    (body("r-x", sign=body("r-x")["sign"].upper()), "41"),
    (body("r-x", sku="pulsa999"), "43"),
])
async def test_rejections_record_nothing(sim: Sim, payload: dict[str, Any] | bytes, rc: str) -> None:
    resp = await sim.tx(payload)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert (data["status"], data["rc"]) == ("Gagal", rc)
    if rc == "41":
        assert data["message"] == "Signature tidak valid"
    assert await sim.records() == []


@pytest.mark.asyncio
async def test_fail_next_gives_503_without_record(sim: Sim) -> None:
    await sim.config(fail_next=2)
    for _ in range(2):
        resp = await sim.tx(body("r-503"))
        assert resp.status_code == 503 and resp.json() == {"message": "Service Unavailable"}
    assert await sim.records() == []
    assert (await sim.data(body("r-503")))["status"] == "Sukses"
    assert (await sim.client.get("/_sim/config")).json()["fail_next"] == 0


@pytest.mark.asyncio
async def test_error_rate_one_always_503(sim: Sim) -> None:
    await sim.config(error_rate=1.0)
    assert (await sim.tx(body("r-err"))).status_code == 503
    assert await sim.records() == []


@pytest.mark.asyncio
async def test_latency(sim: Sim) -> None:
    await sim.config(latency_ms=150)
    start = time.monotonic()
    await sim.data(body("r-slow"))
    assert time.monotonic() - start >= 0.14


@pytest.mark.asyncio
async def test_timeout_next_records_then_hangs() -> None:
    with serve(create_app(SETTINGS)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=0.2) as client:
            assert (await client.post("/_sim/config", json={"timeout_next": 1, "timeout_sleep_ms": 800})).is_success
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v1/transaction", json=body("r-hang"))
            rec = (await client.get("/_sim/transactions/r-hang")).json()
            assert rec["status"] == "Sukses" and rec["calls"] == 1
            # The retry (a status check) answers at once with the recorded transaction.
            retry = (await client.post("/v1/transaction", json=body("r-hang"))).json()["data"]
            assert retry["sn"] == rec["sn"]
            assert (await client.get("/_sim/transactions/r-hang")).json()["calls"] == 2


@pytest.mark.asyncio
async def test_config_and_reset(sim: Sim) -> None:
    bad = await sim.client.post("/_sim/config", json={"latency_ms": 5, "nope": 1})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    assert (await sim.client.post("/_sim/config", json={"error_rate": 3})).status_code == 400
    assert (await sim.client.post("/_sim/config", content=b"[]")).status_code == 400
    cfg = await sim.config(latency_ms=5, callback_on_create=True)
    assert cfg["latency_ms"] == 5 and cfg["callback_on_create"] is True
    assert set(cfg) == {"latency_ms", "error_rate", "timeout_rate", "timeout_sleep_ms", "fail_next",
                        "timeout_next", "pending_ms", "pending_check_resolves", "callback_url",
                        "callback_on_create"}
    await sim.config(callback_on_create=False)
    await sim.data(body("r-1", "081200001233"))
    assert len(sim.provider._tasks) == 1
    assert (await sim.client.post("/_sim/reset")).status_code == 200
    assert await sim.records() == [] and not sim.provider._tasks
    assert (await sim.client.get("/_sim/config")).json()["latency_ms"] == 0
    assert (await sim.client.get("/_sim/transactions/r-1")).status_code == 404


@pytest.mark.asyncio
async def test_seeded_sn_is_reproducible(sim: Sim) -> None:
    first = (await sim.data(body("r-seed")))["sn"]
    await sim.client.post("/_sim/reset")
    assert (await sim.data(body("r-seed")))["sn"] == first


@pytest.mark.asyncio
async def test_update_callback_is_signed_and_delivered(sim: Sim, receiver: Receiver) -> None:
    await sim.config(callback_url=receiver.url)
    sent = await sim.data(body("r-cb", "081200001233"))
    assert sent["status"] == "Pending" and receiver.hits == []
    await eventually(lambda: len(receiver.hits) == 1)
    headers, raw = receiver.hits[0]
    assert headers["x-digiflazz-event"] == "update"
    data = verify(headers, raw)
    assert (data["ref_id"], data["status"], data["rc"], data["price"]) == ("r-cb", "Sukses", "00", 10150)
    assert len(data["sn"]) == 20
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 1  # delivered once, no retries after a 2xx


@pytest.mark.asyncio
async def test_request_cb_url_wins_and_failures_are_retried(sim: Sim, receiver: Receiver) -> None:
    await sim.config(callback_url="http://127.0.0.1:9/nowhere", pending_ms=50)
    receiver.fail_first = 2
    await sim.data(body("r-retry", "081200001234", cb_url=receiver.url))
    await eventually(lambda: len(receiver.hits) == 3)
    raws = {raw for _, raw in receiver.hits}
    assert len(raws) == 1  # every attempt carries the same bytes
    assert verify(*receiver.hits[-1])["status"] == "Gagal"
    await asyncio.sleep(0.2)
    assert len(receiver.hits) == 3


@pytest.mark.asyncio
async def test_callback_on_create(sim: Sim, receiver: Receiver) -> None:
    await sim.config(callback_url=receiver.url, callback_on_create=True)
    sent = await sim.data(body("r-create"))
    await eventually(lambda: len(receiver.hits) == 1)
    headers, raw = receiver.hits[0]
    assert headers["x-digiflazz-event"] == "create"
    assert verify(headers, raw) == sent


@pytest.mark.asyncio
async def test_no_callback_for_final_records_by_default(sim: Sim, receiver: Receiver) -> None:
    await sim.config(callback_url=receiver.url)
    await sim.data(body("r-final"))
    await sim.data(body("r-final-fail", "081200001232"))
    await asyncio.sleep(0.2)
    assert receiver.hits == []


def test_settings_from_env() -> None:
    s = Settings.from_env({"SIM_PORT": "9001", "SIM_CALLBACK_URL": "", "SIM_ERROR_RATE": "0.25",
                           "SIM_SEED": "42", "PPOB_USERNAME": "u"})
    assert (s.port, s.callback_url, s.error_rate, s.seed, s.ppob_username) == (9001, "", 0.25, 42, "u")
    assert Settings.from_env({}) == Settings()
    assert Settings().callback_url == "http://127.0.0.1:8000/webhooks/digiflazz"


@pytest.mark.asyncio
async def test_loket_client_tries_an_unreachable_provider_three_times_then_gives_up() -> None:
    """provider.digiflazz against this simulator over HTTP: 503s are retried 0.2 and 0.4 s apart;
    a third 503 is ProviderUnreachable, and no order was made by it."""
    app = create_app(SETTINGS)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as control:
            client = DigiflazzClient(f"{url}/v1", SETTINGS.ppob_username, SETTINGS.ppob_api_key, timeout=5)
            await control.post("/_sim/config", json={"fail_next": 2})
            started = time.monotonic()
            answer = await client.topup("r-retried", "pulsa10", "081200000000")
            assert answer.outcome is Outcome.SUKSES
            assert time.monotonic() - started >= 0.6  # waited 0.2 s, then 0.4 s
            await control.post("/_sim/config", json={"fail_next": 3})
            with pytest.raises(ProviderUnreachable):
                await client.topup("r-unreachable", "pulsa10", "081200000000")
            assert (await control.get("/_sim/config")).json()["fail_next"] == 0  # three tries took the three 503s
            assert [r["ref_id"] for r in (await control.get("/_sim/transactions")).json()] == ["r-retried"]
            await client.close()
    await app.state.provider.aclose()
