"""Tests of the simulator's Xendit QR Codes gateway (sim/gateway.py), in-process plus real local servers."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.app import create_app
from sim.gateway import XenditGateway
from sim.settings import Settings
from tests.test_sim import eventually, serve

SETTINGS = Settings(callback_url="", xendit_callback_url="", seed=99)
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SETTINGS.xendit_secret_key}:".encode()).decode(),
        "api-version": "2022-07-31"}


def qr_body(reference_id: str = "order-1", **extra: Any) -> dict[str, Any]:
    """A valid v2 DYNAMIC create body.

    Args:
        reference_id: the merchant's reference; extra: fields to add or override (None removes one).
    """
    body = {"reference_id": reference_id, "type": "DYNAMIC", "currency": "IDR", "amount": 25000, **extra}
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Sim:
    """An in-process simulator and a client bound to it."""

    client: httpx.AsyncClient
    gateway: XenditGateway

    async def create(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        """POST /qr_codes with valid credentials. body: the JSON body; key: idempotency-key header, if any."""
        headers = {**AUTH, **({"idempotency-key": key} if key else {})}
        return await self.client.post("/qr_codes", json=body, headers=headers)

    async def qr(self, reference_id: str = "order-1", **extra: Any) -> dict[str, Any]:
        """Create a QR code, expect 201, return it. reference_id, extra: as for qr_body()."""
        resp = await self.create(qr_body(reference_id, **extra))
        assert resp.status_code == 201, resp.text
        created: dict[str, Any] = resp.json()
        return created

    async def pay(self, qr_id: str, **body: Any) -> httpx.Response:
        """POST /qr_codes/{qr_id}/payments/simulate. qr_id: the code; body: e.g. amount=..."""
        return await self.client.post(f"/qr_codes/{qr_id}/payments/simulate", json=body, headers=AUTH)

    async def config(self, **patch: Any) -> dict[str, Any]:
        """POST /_sim/config, expect 200. patch: config keys to change."""
        resp = await self.client.post("/_sim/config", json=patch)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    async def listed(self) -> list[dict[str, Any]]:
        """GET /_sim/qr_codes."""
        result: list[dict[str, Any]] = (await self.client.get("/_sim/qr_codes")).json()
        return result


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_app(SETTINGS)
    gateway: XenditGateway = app.state.gateway
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        sim = Sim(client, gateway)
        await sim.config(webhook_retry_delay_ms=20)
        yield sim
    await gateway.aclose()


@dataclass
class Receiver:
    """A webhook receiver: records every hit; the first `fail_first` hits get HTTP 500."""

    url: str = ""
    hits: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0

    def body(self, index: int = 0) -> dict[str, Any]:
        """One received webhook body, after checking its headers. index: which hit."""
        headers, raw = self.hits[index]
        assert headers["x-callback-token"] == SETTINGS.xendit_callback_token
        assert headers["content-type"] == "application/json"
        result: dict[str, Any] = json.loads(raw)
        return result


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        rec.hits.append((dict(request.headers), await request.body()))
        if rec.fail_first > 0:
            rec.fail_first -= 1
            return JSONResponse({"error": "try again"}, status_code=500)
        return JSONResponse({"ok": True})

    with serve(Starlette(routes=[Route("/xendit", hook, methods=["POST"])])) as base:
        rec.url = f"{base}/xendit"
        yield rec


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"xnd_wrong:").decode(),
                                           "Bearer " + SETTINGS.xendit_secret_key])
async def test_bad_api_key_is_401(sim: Sim, authorization: str | None) -> None:
    headers = {"api-version": "2022-07-31", **({"Authorization": authorization} if authorization else {})}
    for resp in (await sim.client.post("/qr_codes", json=qr_body(), headers=headers),
                 await sim.client.get("/qr_codes/qr_x", headers=headers)):
        assert resp.status_code == 401 and resp.json()["error_code"] == "INVALID_API_KEY"
    assert await sim.listed() == []


@pytest.mark.asyncio
async def test_create_and_get(sim: Sim) -> None:
    resp = await sim.create(qr_body("inv-77", amount=15000, metadata={"order": 7}))
    assert resp.status_code == 201
    qr = resp.json()
    assert qr["id"].startswith("qr_") and qr["reference_id"] == "inv-77" and qr["business_id"]
    assert (qr["type"], qr["currency"], qr["amount"], qr["status"]) == ("DYNAMIC", "IDR", 15000, "ACTIVE")
    assert qr["channel_code"] == "ID_DANA" and qr["metadata"] == {"order": 7}
    assert qr["qr_string"].startswith("000201") and "5405150005802ID" in qr["qr_string"]
    assert "inv-77" in qr["qr_string"]
    for stamp in ("created", "updated", "expires_at"):
        assert qr[stamp].endswith("Z")
    expires = datetime.fromisoformat(qr["expires_at"]) - datetime.fromisoformat(qr["created"])
    assert expires == timedelta(hours=48)  # the default for a DYNAMIC code
    got = await sim.client.get(f"/qr_codes/{qr['id']}", headers=AUTH)
    assert got.status_code == 200 and got.json() == qr
    missing = await sim.client.get("/qr_codes/qr_nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error_code"] == "DATA_NOT_FOUND"


@pytest.mark.asyncio
async def test_idempotency_key_returns_the_same_qr(sim: Sim) -> None:
    first = await sim.create(qr_body("order-i"), key="idem-1")
    again = await sim.create(qr_body("order-i"), key="idem-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = await sim.create(qr_body("order-i"), key="idem-2")
    unkeyed = [(await sim.create(qr_body("order-i"))).json()["id"] for _ in range(2)]
    assert other.status_code == 201 and len({first.json()["id"], other.json()["id"], *unkeyed}) == 4
    assert len(await sim.listed()) == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [
    qr_body(callback_url="https://example.com/cb"),
    qr_body(amount=None),
    qr_body(amount=0),
    qr_body(amount="25000"),
    qr_body(amount=True),
    qr_body(type="ONCE"),
    qr_body(currency="USD"),
    qr_body(reference_id=""),
    qr_body(expires_at="tomorrow"),
    qr_body(channel_code=5),
])
async def test_invalid_create_is_400(sim: Sim, body: dict[str, Any]) -> None:
    resp = await sim.create(body)
    assert resp.status_code == 400 and resp.json()["error_code"] == "API_VALIDATION_ERROR", resp.text
    assert await sim.listed() == []


@pytest.mark.asyncio
async def test_v1_requests_are_refused(sim: Sim) -> None:
    resp = await sim.client.post("/qr_codes", json=qr_body(), headers={"Authorization": AUTH["Authorization"]})
    assert resp.status_code == 400 and "2022-07-31" in resp.json()["message"]
    callback = await sim.create(qr_body(callback_url="https://example.com/cb"))
    assert "callback_url" in callback.json()["message"]


@pytest.mark.asyncio
async def test_static_qr_without_amount(sim: Sim) -> None:
    qr = await sim.qr("stand-1", type="STATIC", amount=None)
    assert qr["amount"] is None and qr["expires_at"] is None and "5802ID" in qr["qr_string"]
    assert (await sim.pay(qr["id"])).status_code == 400  # nothing to default the amount to
    paid = await sim.pay(qr["id"], amount=12000)
    assert paid.status_code == 200 and paid.json()["amount"] == 12000


@pytest.mark.asyncio
async def test_v2_payment_webhook(sim: Sim, receiver: Receiver) -> None:
    await sim.config(xendit_callback_url=receiver.url)
    qr = await sim.qr("order-v2")
    resp = await sim.pay(qr["id"])
    assert resp.status_code == 200
    payment = resp.json()
    assert payment["id"].startswith("qrpy_") and payment["status"] == "SUCCEEDED"
    assert (payment["qr_id"], payment["reference_id"], payment["amount"]) == (qr["id"], "order-v2", 25000)
    await eventually(lambda: len(receiver.hits) == 1)
    hook = receiver.body()
    assert (hook["event"], hook["api_version"], hook["business_id"]) == ("qr.payment", "2022-07-31", qr["business_id"])
    assert hook["data"] == payment
    assert set(payment) >= {"id", "business_id", "currency", "amount", "status", "created", "qr_id", "qr_string",
                            "reference_id", "type", "channel_code", "expires_at", "description", "basket",
                            "metadata", "payment_detail"}
    assert payment["payment_detail"]["source"] == "DANA" and payment["payment_detail"]["receipt_id"]
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 1  # no retries after a 2xx


@pytest.mark.asyncio
async def test_legacy_and_seed_webhooks(sim: Sim, receiver: Receiver) -> None:
    await sim.config(xendit_callback_url=receiver.url, webhook_format="legacy")
    qr = await sim.qr("order-legacy")
    payment = (await sim.pay(qr["id"])).json()
    await eventually(lambda: len(receiver.hits) == 1)
    legacy = receiver.body(0)
    assert (legacy["event"], legacy["id"], legacy["amount"], legacy["status"]) == (
        "qr.payment", payment["id"], 25000, "COMPLETED")
    assert legacy["qr_code"] == {"id": qr["id"], "external_id": "order-legacy", "qr_string": qr["qr_string"],
                                 "type": "DYNAMIC"}
    assert legacy["payment_details"] == {"source": "DANA", "receipt_id": payment["payment_detail"]["receipt_id"]}
    await sim.config(webhook_format="seed")
    await sim.pay(qr["id"])
    await eventually(lambda: len(receiver.hits) == 2)
    assert receiver.body(1) == {"external_id": "order-legacy", "status": "COMPLETED", "xendit_id": qr["id"]}


@pytest.mark.asyncio
async def test_wrong_amount_is_carried(sim: Sim, receiver: Receiver) -> None:
    await sim.config(xendit_callback_url=receiver.url)
    qr = await sim.qr("order-short")
    assert (await sim.pay(qr["id"], amount=20000)).json()["amount"] == 20000
    await eventually(lambda: len(receiver.hits) == 1)
    assert receiver.body()["data"]["amount"] == 20000
    [listed] = await sim.listed()
    assert listed["amount"] == 25000 and [p["amount"] for p in listed["payments"]] == [20000]


@pytest.mark.asyncio
async def test_failed_webhooks_are_retried(sim: Sim, receiver: Receiver) -> None:
    await sim.config(xendit_callback_url=receiver.url)
    receiver.fail_first = 5
    await sim.pay((await sim.qr())["id"])
    await eventually(lambda: len(receiver.hits) == 4)
    assert len({raw for _, raw in receiver.hits}) == 1  # every attempt carries the same bytes
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 4  # one try plus three retries


@pytest.mark.asyncio
async def test_expired_qr_refused_unless_allowed(sim: Sim, receiver: Receiver) -> None:
    await sim.config(xendit_callback_url=receiver.url)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    qr = await sim.qr("order-late", expires_at=past)
    got = (await sim.client.get(f"/qr_codes/{qr['id']}", headers=AUTH)).json()
    assert got["status"] == "INACTIVE"
    refused = await sim.pay(qr["id"])
    assert refused.status_code == 400 and refused.json()["error_code"] == "INACTIVE_QR_CODE"
    await sim.config(allow_expired_payment=True)
    assert (await sim.pay(qr["id"])).status_code == 200
    await eventually(lambda: len(receiver.hits) == 1)
    assert receiver.body()["data"]["reference_id"] == "order-late"
    unknown = await sim.pay("qr_nope")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "DATA_NOT_FOUND"


@pytest.mark.asyncio
async def test_fail_next_gives_503_without_creating(sim: Sim) -> None:
    await sim.config(gateway_fail_next=2)
    for _ in range(2):
        resp = await sim.create(qr_body(), key="idem-503")
        assert resp.status_code == 503 and resp.json()["error_code"] == "SERVICE_UNAVAILABLE"
    assert await sim.listed() == []
    assert (await sim.create(qr_body(), key="idem-503")).status_code == 201
    assert (await sim.client.get("/_sim/config")).json()["gateway_fail_next"] == 0


@pytest.mark.asyncio
async def test_error_rate_and_latency(sim: Sim) -> None:
    qr = await sim.qr()
    await sim.config(gateway_error_rate=1.0)
    assert (await sim.create(qr_body("order-2"))).status_code == 503
    assert (await sim.client.get(f"/qr_codes/{qr['id']}", headers=AUTH)).status_code == 503
    await sim.config(gateway_error_rate=0.0, gateway_latency_ms=150)
    start = time.monotonic()
    assert (await sim.client.get(f"/qr_codes/{qr['id']}", headers=AUTH)).status_code == 200
    assert time.monotonic() - start >= 0.14
    assert len(await sim.listed()) == 1


@pytest.mark.asyncio
async def test_timeout_next_creates_then_hangs() -> None:
    with serve(create_app(SETTINGS)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=0.2) as client:
            patch = {"gateway_timeout_next": 1, "gateway_timeout_sleep_ms": 800}
            assert (await client.post("/_sim/config", json=patch)).is_success
            headers = {**AUTH, "idempotency-key": "idem-hang"}
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/qr_codes", json=qr_body("order-hang"), headers=headers)
            [listed] = (await client.get("/_sim/qr_codes")).json()
            retry = await client.post("/qr_codes", json=qr_body("order-hang"), headers=headers)
            assert retry.status_code == 200 and retry.json()["id"] == listed["id"]
            assert len((await client.get("/_sim/qr_codes")).json()) == 1


@pytest.mark.asyncio
async def test_config_keys(sim: Sim) -> None:
    cfg = (await sim.client.get("/_sim/config")).json()
    assert {"webhook_format", "webhook_retry_delay_ms", "xendit_callback_url", "allow_expired_payment",
            "gateway_latency_ms", "gateway_error_rate", "gateway_fail_next", "gateway_timeout_next",
            "gateway_timeout_sleep_ms", "latency_ms", "callback_url"} <= set(cfg)
    gateway_only = await sim.config(webhook_format="legacy")
    assert gateway_only["webhook_format"] == "legacy" and "latency_ms" not in gateway_only
    both = await sim.config(latency_ms=3, gateway_latency_ms=4)
    assert (both["latency_ms"], both["gateway_latency_ms"]) == (3, 4)
    for bad in ({"webhook_format": "v3"}, {"gateway_error_rate": 2}, {"gateway_nope": 1}):
        resp = await sim.client.post("/_sim/config", json=bad)
        assert resp.status_code == 400, bad
    # A patch with one bad key changes nothing, on either side.
    assert (await sim.client.post("/_sim/config", json={"latency_ms": 9, "webhook_format": "v3"})).status_code == 400
    assert (await sim.client.get("/_sim/config")).json()["latency_ms"] == 3


@pytest.mark.asyncio
async def test_reset_clears_gateway(sim: Sim, receiver: Receiver) -> None:
    receiver.fail_first = 10
    await sim.config(xendit_callback_url=receiver.url, webhook_format="seed", webhook_retry_delay_ms=5000)
    await sim.create(qr_body(), key="idem-reset")
    await sim.pay((await sim.listed())[0]["id"])
    await eventually(lambda: len(receiver.hits) == 1)
    assert sim.gateway._tasks  # waiting to retry
    resp = await sim.client.post("/_sim/reset")
    assert resp.status_code == 200 and resp.json()["config"]["webhook_format"] == "v2"
    assert await sim.listed() == [] and not sim.gateway._tasks
    cfg = (await sim.client.get("/_sim/config")).json()
    assert (cfg["xendit_callback_url"], cfg["webhook_retry_delay_ms"]) == ("", 1000)
    assert (await sim.create(qr_body(), key="idem-reset")).status_code == 201  # the key is forgotten too


def test_settings_from_env() -> None:
    s = Settings.from_env({"XENDIT_SECRET_KEY": "xnd_k", "XENDIT_CALLBACK_TOKEN": "tok",
                           "SIM_XENDIT_CALLBACK_URL": "", "SIM_GATEWAY_LATENCY_MS": "7",
                           "SIM_GATEWAY_ERROR_RATE": "0.5"})
    assert (s.xendit_secret_key, s.xendit_callback_token, s.xendit_callback_url) == ("xnd_k", "tok", "")
    assert (s.gateway_latency_ms, s.gateway_error_rate) == (7, 0.5)
    d = Settings()
    assert (d.xendit_secret_key, d.xendit_callback_token) == ("xnd_development_loket", "dev-callback-token")
    assert d.xendit_callback_url == "http://127.0.0.1:8000/api/v1/webhooks/xendit"


@pytest.mark.asyncio
async def test_a_qr_codes_payments_are_listed_newest_first(sim: Sim) -> None:
    qr = await sim.qr("order-list")
    assert (await sim.client.get(f"/qr_codes/{qr['id']}/payments", headers=AUTH)).json()["data"] == []
    first = (await sim.pay(qr["id"], amount=1000)).json()
    second = (await sim.pay(qr["id"])).json()
    listed = (await sim.client.get(f"/qr_codes/{qr['id']}/payments", headers=AUTH)).json()
    assert [p["id"] for p in listed["data"]] == [second["id"], first["id"]] and listed["has_more"] is False
    assert [p["amount"] for p in listed["data"]] == [qr["amount"], 1000] and {p["status"] for p in listed["data"]} == {"SUCCEEDED"}
    assert (await sim.client.get("/qr_codes/qr_nope/payments", headers=AUTH)).status_code == 404
    assert (await sim.client.get(f"/qr_codes/{qr['id']}/payments")).status_code == 401
    await sim.config(gateway_payments_down=True)
    assert (await sim.client.get(f"/qr_codes/{qr['id']}/payments", headers=AUTH)).status_code == 503
