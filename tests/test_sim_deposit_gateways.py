"""Tests of the simulator's Midtrans (sim/midtrans.py) and Paystack (sim/paystack.py) deposit gateways."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.app import create_app
from sim.midtrans import MidtransGateway
from sim.paystack import PaystackGateway
from sim.settings import Settings
from tests.test_sim import eventually, serve

SETTINGS = Settings(callback_url="", xendit_callback_url="", midtrans_callback_url="", paystack_callback_url="",
                    seed=7)
SERVER_KEY = SETTINGS.midtrans_server_key
SECRET_KEY = SETTINGS.paystack_secret_key
MIDTRANS_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}
PAYSTACK_AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}


def snap_body(order_id: str = "dep-1", gross_amount: Any = 150000, **extra: Any) -> dict[str, Any]:
    """A valid Snap create body. order_id, gross_amount: transaction_details; extra: other top-level fields."""
    return {"transaction_details": {"order_id": order_id, "gross_amount": gross_amount},
            "customer_details": {"first_name": "Budi"}, **extra}


def init_body(**extra: Any) -> dict[str, Any]:
    """A valid Paystack initialize body. extra: fields to add or override (None removes one)."""
    body = {"email": "budi@example.com", "amount": 500000, **extra}
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Sim:
    """An in-process simulator and a client bound to it."""

    client: httpx.AsyncClient
    midtrans: MidtransGateway
    paystack: PaystackGateway

    async def snap(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        """POST /midtrans/snap/v1/transactions. body: JSON; headers: defaults to valid auth."""
        return await self.client.post("/midtrans/snap/v1/transactions", json=body,
                                      headers=MIDTRANS_AUTH if headers is None else headers)

    async def init(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        """POST /paystack/transaction/initialize. body: JSON; headers: defaults to valid auth."""
        return await self.client.post("/paystack/transaction/initialize", json=body,
                                      headers=PAYSTACK_AUTH if headers is None else headers)

    async def config(self, **patch: Any) -> dict[str, Any]:
        """POST /_sim/config, expect 200. patch: config keys to change."""
        resp = await self.client.post("/_sim/config", json=patch)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    async def listed(self) -> dict[str, list[dict[str, Any]]]:
        """GET /_sim/deposit_gateways."""
        result: dict[str, list[dict[str, Any]]] = (await self.client.get("/_sim/deposit_gateways")).json()
        return result


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_app(SETTINGS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        sim = Sim(client, app.state.midtrans, app.state.paystack)
        await sim.config(deposit_webhook_retry_delay_ms=20)
        yield sim
    await sim.midtrans.aclose()
    await sim.paystack.aclose()


@dataclass
class Receiver:
    """A webhook receiver with /midtrans and /paystack: records every hit; the first `fail_first` get HTTP 500."""

    base: str = ""
    hits: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0

    def of(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        """The hits on one path ("/midtrans" or "/paystack"), oldest first."""
        return [(headers, raw) for hit_path, headers, raw in self.hits if hit_path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        rec.hits.append((request.url.path, dict(request.headers), await request.body()))
        if rec.fail_first > 0:
            rec.fail_first -= 1
            return JSONResponse({"error": "try again"}, status_code=500)
        return JSONResponse({"ok": True})

    routes = [Route("/midtrans", hook, methods=["POST"]), Route("/paystack", hook, methods=["POST"])]
    with serve(Starlette(routes=routes)) as base:
        rec.base = base
        yield rec


def midtrans_signature_ok(note: dict[str, Any]) -> bool:
    """Check signature_key = sha512(order_id + status_code + gross_amount + server_key), computed here."""
    raw = (note["order_id"] + note["status_code"] + note["gross_amount"] + SERVER_KEY).encode()
    return hmac.compare_digest(note["signature_key"], hashlib.sha512(raw).hexdigest())


def paystack_signature_ok(headers: dict[str, str], raw: bytes) -> bool:
    """Check x-paystack-signature = hex HMAC-SHA512(secret key, raw body), computed here."""
    expected = hmac.new(SECRET_KEY.encode(), raw, hashlib.sha512).hexdigest()
    return hmac.compare_digest(headers["x-paystack-signature"], expected)


# --- Midtrans ---


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"SB-Mid-server-wrong:").decode(),
                                           "Basic " + base64.b64encode(SERVER_KEY.encode()).decode(),
                                           "Bearer " + SERVER_KEY])
async def test_midtrans_bad_key_is_401(sim: Sim, authorization: str | None) -> None:
    resp = await sim.snap(snap_body(), {"Authorization": authorization} if authorization else {})
    assert resp.status_code == 401 and resp.json() == {"error_messages": ["Access denied"]}
    assert (await sim.listed())["midtrans"] == []


@pytest.mark.asyncio
async def test_midtrans_create_and_duplicate(sim: Sim) -> None:
    resp = await sim.snap(snap_body("dep-1", 150000))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert set(created) == {"token", "redirect_url"}
    assert created["redirect_url"] == f"http://sim/midtrans/snap/v2/vtweb/{created['token']}"
    assert len(created["token"]) == 36  # a uuid
    dup = await sim.snap(snap_body("dep-1", 99000))
    assert dup.status_code == 400
    assert dup.json() == {"error_messages": ["transaction_details.order_id sudah digunakan"]}
    [order] = (await sim.listed())["midtrans"]
    assert (order["order_id"], order["gross_amount"], order["token"]) == ("dep-1", 150000, created["token"])


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [
    {}, {"transaction_details": {"gross_amount": 1000}}, {"transaction_details": {"order_id": "x"}},
    snap_body("x" * 51), snap_body(""), snap_body(gross_amount=0), snap_body(gross_amount=-5),
    snap_body(gross_amount="1000"), snap_body(gross_amount=1000.5), snap_body(gross_amount=True),
    snap_body(order_id=12),
])
async def test_midtrans_invalid_create_is_400(sim: Sim, body: dict[str, Any]) -> None:
    resp = await sim.snap(body)
    assert resp.status_code == 400 and resp.json()["error_messages"], resp.text
    assert (await sim.listed())["midtrans"] == []
    assert (await sim.client.post("/midtrans/snap/v1/transactions", content=b"{nope",
                                  headers=MIDTRANS_AUTH)).status_code == 400


@pytest.mark.asyncio
async def test_midtrans_notification_is_signed(sim: Sim, receiver: Receiver) -> None:
    await sim.config(midtrans_callback_url=f"{receiver.base}/midtrans")
    assert (await sim.snap(snap_body("dep-sig", 150000))).status_code == 201
    resp = await sim.client.post("/midtrans/_simulate/dep-sig", json={})
    assert resp.status_code == 200
    sent = resp.json()
    await eventually(lambda: len(receiver.of("/midtrans")) == 1)
    [(headers, raw)] = receiver.of("/midtrans")
    assert headers["content-type"] == "application/json"
    note = json.loads(raw)
    assert note == sent
    assert set(note) == {"transaction_time", "transaction_status", "transaction_id", "status_message",
                         "status_code", "signature_key", "payment_type", "order_id", "merchant_id",
                         "gross_amount", "fraud_status", "currency"}
    assert (note["order_id"], note["transaction_status"], note["status_code"]) == ("dep-sig", "settlement", "200")
    assert (note["gross_amount"], note["fraud_status"], note["currency"]) == ("150000.00", "accept", "IDR")
    assert (note["payment_type"], note["merchant_id"]) == ("qris", "G000000000")
    assert midtrans_signature_ok(note)
    expected = hashlib.sha512(f"dep-sig200150000.00{SERVER_KEY}".encode()).hexdigest()
    assert note["signature_key"] == expected
    await asyncio.sleep(0.1)
    assert len(receiver.of("/midtrans")) == 1  # no retries after a 2xx


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "code"), [("capture", "200"), ("pending", "201"), ("deny", "202"),
                                              ("cancel", "202"), ("expire", "202")])
async def test_midtrans_statuses(sim: Sim, status: str, code: str) -> None:
    await sim.snap(snap_body("dep-st", 20000))
    note = (await sim.client.post("/midtrans/_simulate/dep-st", json={"transaction_status": status})).json()
    assert (note["transaction_status"], note["status_code"]) == (status, code) and midtrans_signature_ok(note)
    [order] = (await sim.listed())["midtrans"]
    assert order["status"] == status and order["notifications"] == [note]


@pytest.mark.asyncio
async def test_midtrans_wrong_amount_and_one_transaction_id(sim: Sim, receiver: Receiver) -> None:
    await sim.config(midtrans_callback_url=f"{receiver.base}/midtrans")
    await sim.snap(snap_body("dep-short", 150000))
    first = (await sim.client.post("/midtrans/_simulate/dep-short",
                                   json={"gross_amount": 100000, "fraud_status": "challenge"})).json()
    second = (await sim.client.post("/midtrans/_simulate/dep-short", json={"gross_amount": 12.5})).json()
    await eventually(lambda: len(receiver.of("/midtrans")) == 2)
    notes = sorted((json.loads(raw) for _, raw in receiver.of("/midtrans")), key=lambda n: n["gross_amount"])
    assert [n["gross_amount"] for n in notes] == ["100000.00", "12.50"]
    assert all(midtrans_signature_ok(n) for n in notes)
    assert first["fraud_status"] == "challenge" and first["transaction_id"] == second["transaction_id"]
    [order] = (await sim.listed())["midtrans"]
    assert order["gross_amount"] == 150000  # the order keeps its own amount


@pytest.mark.asyncio
async def test_midtrans_simulate_errors(sim: Sim) -> None:
    missing = await sim.client.post("/midtrans/_simulate/dep-nope", json={})
    assert missing.status_code == 404 and missing.json()["error_messages"]
    await sim.snap(snap_body("dep-e"))
    for bad in ({"transaction_status": "paid"}, {"gross_amount": 0}, {"gross_amount": "1000"}, {"nope": 1}, [1]):
        resp = await sim.client.post("/midtrans/_simulate/dep-e", json=bad)
        assert resp.status_code == 400, bad
    # No callback URL configured: the notification is still answered, nothing is sent.
    assert (await sim.client.post("/midtrans/_simulate/dep-e")).status_code == 200
    assert not sim.midtrans.sender.tasks


# --- Paystack ---


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", [None, "Bearer sk_test_wrong", f"Basic {SECRET_KEY}", SECRET_KEY])
async def test_paystack_bad_key_is_401(sim: Sim, authorization: str | None) -> None:
    resp = await sim.init(init_body(), {"Authorization": authorization} if authorization else {})
    assert resp.status_code == 401 and resp.json() == {"status": False, "message": "Invalid key"}
    assert (await sim.listed())["paystack"] == []


@pytest.mark.asyncio
async def test_paystack_initialize_and_duplicate(sim: Sim) -> None:
    resp = await sim.init(init_body(reference="dep-ps-1", currency="NGN"))
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert (got["status"], got["message"]) == (True, "Authorization URL created")
    data = got["data"]
    assert data["reference"] == "dep-ps-1" and data["access_code"]
    assert data["authorization_url"] == f"http://sim/paystack/checkout/{data['access_code']}"
    dup = await sim.init(init_body(reference="dep-ps-1"))
    assert dup.status_code == 400 and dup.json() == {"status": False, "message": "Duplicate Transaction Reference"}
    generated = (await sim.init(init_body())).json()["data"]
    assert generated["reference"] and generated["reference"] != "dep-ps-1"
    listed = (await sim.listed())["paystack"]
    assert [(t["reference"], t["amount"]) for t in listed] == [("dep-ps-1", 500000), (generated["reference"], 500000)]


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [
    init_body(email=None), init_body(amount=None), init_body(amount=0), init_body(amount="500000"),
    init_body(amount=100.5), init_body(email="not-an-email"), init_body(reference=""), init_body(currency="idr"),
])
async def test_paystack_invalid_initialize_is_400(sim: Sim, body: dict[str, Any]) -> None:
    resp = await sim.init(body)
    assert resp.status_code == 400 and resp.json()["status"] is False, resp.text
    assert (await sim.listed())["paystack"] == []


@pytest.mark.asyncio
async def test_paystack_webhook_is_signed(sim: Sim, receiver: Receiver) -> None:
    await sim.config(paystack_callback_url=f"{receiver.base}/paystack")
    await sim.init(init_body(reference="dep-ps-sig", currency="NGN"))
    resp = await sim.client.post("/paystack/_simulate/dep-ps-sig")
    assert resp.status_code == 200
    await eventually(lambda: len(receiver.of("/paystack")) == 1)
    [(headers, raw)] = receiver.of("/paystack")
    assert headers["content-type"] == "application/json"
    assert paystack_signature_ok(headers, raw)
    event = json.loads(raw)
    assert event == resp.json()
    assert event["event"] == "charge.success"
    data = event["data"]
    assert isinstance(data["id"], int) and data["reference"] == "dep-ps-sig"
    assert (data["domain"], data["status"], data["channel"], data["gateway_response"]) == (
        "test", "success", "card", "Successful")
    assert (data["amount"], data["currency"], data["customer"]) == (500000, "NGN", {"email": "budi@example.com"})
    assert data["paid_at"] and data["created_at"]
    tampered = raw.replace(b"500000", b"500001")
    assert not paystack_signature_ok(headers, tampered)


@pytest.mark.asyncio
async def test_paystack_wrong_amount_and_errors(sim: Sim, receiver: Receiver) -> None:
    await sim.config(paystack_callback_url=f"{receiver.base}/paystack")
    await sim.init(init_body(reference="dep-ps-short"))
    assert (await sim.client.post("/paystack/_simulate/dep-ps-short", json={"amount": 400000})).status_code == 200
    await eventually(lambda: len(receiver.of("/paystack")) == 1)
    [(headers, raw)] = receiver.of("/paystack")
    assert paystack_signature_ok(headers, raw) and json.loads(raw)["data"]["amount"] == 400000
    [tx] = (await sim.listed())["paystack"]
    assert tx["amount"] == 500000 and tx["status"] == "success"
    missing = await sim.client.post("/paystack/_simulate/dep-ps-nope", json={})
    assert missing.status_code == 404 and missing.json()["status"] is False
    for bad in ({"amount": 0}, {"amount": "1"}, {"amount": 1.5}, {"nope": 1}):
        assert (await sim.client.post("/paystack/_simulate/dep-ps-short", json=bad)).status_code == 400, bad


# --- shared ---


@pytest.mark.asyncio
async def test_failed_deliveries_are_retried(sim: Sim, receiver: Receiver) -> None:
    await sim.config(midtrans_callback_url=f"{receiver.base}/midtrans",
                     paystack_callback_url=f"{receiver.base}/paystack")
    await sim.snap(snap_body("dep-r"))
    await sim.init(init_body(reference="dep-ps-r"))
    receiver.fail_first = 10
    await sim.client.post("/midtrans/_simulate/dep-r")
    await sim.client.post("/paystack/_simulate/dep-ps-r")
    await eventually(lambda: len(receiver.hits) == 8)
    for path in ("/midtrans", "/paystack"):
        hits = receiver.of(path)
        assert len(hits) == 4 and len({raw for _, raw in hits}) == 1  # same bytes every attempt
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 8  # one try plus three retries each


@pytest.mark.asyncio
async def test_config_keys(sim: Sim) -> None:
    cfg = (await sim.client.get("/_sim/config")).json()
    assert {"deposit_webhook_retry_delay_ms", "midtrans_callback_url", "paystack_callback_url",
            "webhook_retry_delay_ms", "latency_ms"} <= set(cfg)
    only = await sim.config(midtrans_callback_url="http://x/m")
    assert only["midtrans_callback_url"] == "http://x/m" and "latency_ms" not in only
    assert sim.paystack.config.midtrans_callback_url == "http://x/m"  # one shared config
    for bad in ({"deposit_webhook_retry_delay_ms": -1}, {"paystack_callback_url": 5}, {"deposit_nope": 1},
                {"latency_ms": 9, "deposit_webhook_retry_delay_ms": "x"}):
        assert (await sim.client.post("/_sim/config", json=bad)).status_code == 400, bad
    assert (await sim.client.get("/_sim/config")).json()["latency_ms"] == 0


@pytest.mark.asyncio
async def test_reset_clears_deposit_gateways(sim: Sim, receiver: Receiver) -> None:
    receiver.fail_first = 10
    await sim.config(midtrans_callback_url=f"{receiver.base}/midtrans",
                     paystack_callback_url=f"{receiver.base}/paystack", deposit_webhook_retry_delay_ms=5000)
    await sim.snap(snap_body("dep-x"))
    await sim.init(init_body(reference="dep-ps-x"))
    await sim.client.post("/midtrans/_simulate/dep-x")
    await sim.client.post("/paystack/_simulate/dep-ps-x")
    await eventually(lambda: len(receiver.hits) == 2)
    assert sim.midtrans.sender.tasks and sim.paystack.sender.tasks  # waiting to retry
    resp = await sim.client.post("/_sim/reset")
    assert resp.status_code == 200
    assert resp.json()["config"]["deposit_webhook_retry_delay_ms"] == 1000
    assert await sim.listed() == {"midtrans": [], "paystack": []}
    assert not sim.midtrans.sender.tasks and not sim.paystack.sender.tasks
    cfg = (await sim.client.get("/_sim/config")).json()
    assert (cfg["midtrans_callback_url"], cfg["paystack_callback_url"]) == ("", "")
    # Forgotten: the same order id and reference can be used again.
    assert (await sim.snap(snap_body("dep-x"))).status_code == 201
    assert (await sim.init(init_body(reference="dep-ps-x"))).status_code == 200


def test_settings_from_env() -> None:
    s = Settings.from_env({"MIDTRANS_SERVER_KEY": "SB-k", "SIM_MIDTRANS_CALLBACK_URL": "",
                           "PAYSTACK_SECRET_KEY": "sk_k", "SIM_PAYSTACK_CALLBACK_URL": "http://x/p"})
    assert (s.midtrans_server_key, s.midtrans_callback_url) == ("SB-k", "")
    assert (s.paystack_secret_key, s.paystack_callback_url) == ("sk_k", "http://x/p")
    d = Settings()
    assert (d.midtrans_server_key, d.midtrans_callback_url) == (
        "SB-Mid-server-loket", "http://127.0.0.1:8000/webhooks/midtrans")
    assert (d.paystack_secret_key, d.paystack_callback_url) == (
        "sk_test_loket", "http://127.0.0.1:8000/webhooks/paystack")


@pytest.mark.asyncio
async def test_midtrans_status_api_reports_the_orders_state(sim: Sim) -> None:
    await sim.snap(snap_body("dep-status", 25000))
    status = (await sim.client.get("/midtrans/v2/dep-status/status", headers=MIDTRANS_AUTH)).json()
    assert (status["transaction_status"], status["status_code"], status["gross_amount"]) == ("pending", "201", "25000.00")
    note = (await sim.client.post("/midtrans/_simulate/dep-status", json={})).json()
    by_transaction = (await sim.client.get(f"/midtrans/v2/{note['transaction_id']}/status", headers=MIDTRANS_AUTH)).json()
    assert (by_transaction["order_id"], by_transaction["transaction_status"], by_transaction["status_code"]) == ("dep-status", "settlement", "200")
    missing = await sim.client.get("/midtrans/v2/nope/status", headers=MIDTRANS_AUTH)
    assert missing.status_code == 404 and missing.json()["status_code"] == "404"
    assert (await sim.client.get("/midtrans/v2/dep-status/status")).status_code == 401
    await sim.config(midtrans_status_down=True)
    assert (await sim.client.get("/midtrans/v2/dep-status/status", headers=MIDTRANS_AUTH)).status_code == 503
