"""The Xendit QR Codes (QRIS) client and the reading of its payment webhooks.

Outcomes of a create call:
- a QR code (201, or 200 for an idempotency-key Xendit has seen);
- GatewayRejected: a 4xx that retrying cannot fix (validation, auth);
- GatewayUnavailable: not answered or 5xx/429; safe to retry, because every attempt carries the
  same idempotency-key and so can never create a second QR code for one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from core import metrics


class GatewayRejected(Exception):
    """The gateway refused the request; the same request will be refused again."""


class GatewayUnavailable(Exception):
    """The gateway did not answer usefully; try again later."""


@dataclass(frozen=True)
class QrCode:
    """What a gateway gives to pay with: a QRIS string, or (other deposit gateways) a payment page."""

    id: str
    qr_string: str | None
    url: str | None


class XenditClient:
    """One per process; `http` is shared and closed by its owner.

    base_url: https://api.xendit.co, or the simulator's http://127.0.0.1:8100.
    secret_key: the Xendit secret API key (Basic auth user, empty password).
    api_version: the `api-version` header; 2022-07-31 selects the v2 QR Codes API.
    timeout: seconds before a call counts as unavailable.
    """

    def __init__(self, http: aiohttp.ClientSession, base_url: str, secret_key: str, api_version: str, timeout: float) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/qr_codes"
        self._headers = {
            "authorization": "Basic " + base64.b64encode(f"{secret_key}:".encode()).decode(),
            "api-version": api_version,
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))

    async def create_qr(self, reference_id: str, amount: int, expires_at: dt.datetime) -> QrCode:
        """Create a DYNAMIC IDR QR code; expires_at is UTC."""
        body = {
            "reference_id": reference_id,
            "type": "DYNAMIC",
            "currency": "IDR",
            "amount": amount,
            "expires_at": expires_at.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        headers = {**self._headers, "idempotency-key": reference_id}
        data = await gateway_post(self._http, self._url, body, headers, self._timeout)
        try:
            return QrCode(id=str(data["id"]), qr_string=str(data["qr_string"]), url=data.get("qr_url"))
        except KeyError as error:
            raise GatewayUnavailable("unreadable answer") from error

    async def payments(self, qr_id: str) -> list[dict[str, Any]]:
        """The payments made to a QR code (GET /qr_codes/{qr_id}/payments), the gateway's own
        record of what was paid. Raises GatewayUnavailable."""
        try:
            data = await gateway_get(self._http, f"{self._url}/{quote(qr_id, safe='')}/payments", self._headers, self._timeout)
        except GatewayRejected as error:
            if str(error).startswith("HTTP 404"):
                return []  # a code the gateway does not know was paid nothing
            raise GatewayUnavailable(str(error)) from error  # our key or request: retried until fixed
        payments = data.get("data")
        if not isinstance(payments, list) or not all(isinstance(p, dict) for p in payments):
            raise GatewayUnavailable("unreadable answer")
        return payments


def paid_in_full(payments: list[dict[str, Any]], amount: int) -> dict[str, Any] | None:
    """The succeeded payment of exactly this amount among a QR code's payments, or None."""
    for payment in payments:
        paid = payment.get("amount")
        if payment.get("status") == "SUCCEEDED" and isinstance(paid, (int, float)) and not isinstance(paid, bool) and paid == amount:
            return payment
    return None


async def gateway_post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str], timeout: aiohttp.ClientTimeout
) -> dict[str, Any]:
    """POST to a payment gateway (Xendit, Midtrans, Paystack) and read its JSON answer, timed by
    outcome in loket_gateway_call_seconds. Raises GatewayRejected (4xx) or GatewayUnavailable."""
    return await _gateway_call(http, "POST", url, body, headers, timeout)


async def gateway_get(http: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout) -> dict[str, Any]:
    """GET from a payment gateway (a status or payments read), as gateway_post."""
    return await _gateway_call(http, "GET", url, None, headers, timeout)


async def _gateway_call(
    http: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str], timeout: aiohttp.ClientTimeout
) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = "unavailable"
    try:
        try:
            async with http.request(method, url, json=body, headers=headers, timeout=timeout) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise GatewayUnavailable(type(error).__name__) from error
        if status >= 500 or status == 429:
            raise GatewayUnavailable(f"HTTP {status}")
        if status >= 400:
            outcome = "rejected"
            raise GatewayRejected(f"HTTP {status}: {raw[:200].decode(errors='replace')}")
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise GatewayUnavailable("unreadable answer") from error
        if not isinstance(data, dict):
            raise GatewayUnavailable("unreadable answer")
        outcome = "created" if method == "POST" else "answered"
        return data
    finally:
        metrics.gateway_calls.labels(outcome).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class PaymentEvent:
    """What a Xendit webhook says, whatever its form.

    kind: paid, failed or expired. reference: our external id. amount: what was paid (None when
    the form carries no amount). event_key: unique per event, for the inbox.
    """

    kind: str
    reference: str
    amount: float | None
    payment_id: str | None
    qr_id: str | None
    event_key: str


_SEED_KINDS = {"COMPLETED": "paid", "PAID": "paid", "SUCCEEDED": "paid", "FAILED": "failed", "EXPIRED": "expired"}


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError(f"{name} must be a non-empty string of at most 64 characters")
    return value


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("amount must be a number")
    return float(value)


def parse_payment_webhook(body: Any) -> PaymentEvent:
    """Read the seed's body, Xendit's v2 `qr.payment` event, or its legacy form; ValueError otherwise."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    data = body.get("data")
    if body.get("event") == "qr.payment" and isinstance(data, dict):
        status = data.get("status")
        kind = "paid" if status == "SUCCEEDED" else "failed" if status == "FAILED" else None
        if kind is None:
            raise ValueError(f"unsupported payment status {status!r}")
        payment_id = _text(data.get("id"), "data.id")
        return PaymentEvent(kind, _text(data.get("reference_id"), "data.reference_id"), _amount(data.get("amount")), payment_id, data.get("qr_id"), f"v2:{payment_id}")
    qr_code = body.get("qr_code")
    if body.get("event") == "qr.payment" and isinstance(qr_code, dict):
        if body.get("status") != "COMPLETED":
            raise ValueError(f"unsupported payment status {body.get('status')!r}")
        payment_id = _text(body.get("id"), "id")
        return PaymentEvent("paid", _text(qr_code.get("external_id"), "qr_code.external_id"), _amount(body.get("amount")), payment_id, qr_code.get("id"), f"legacy:{payment_id}")
    if "external_id" in body:
        reference = _text(body.get("external_id"), "external_id")
        status = body.get("status")
        if not isinstance(status, str) or status not in _SEED_KINDS:
            raise ValueError("status must be one of " + ", ".join(_SEED_KINDS))
        xendit_id = body.get("xendit_id")
        if xendit_id is not None:
            xendit_id = _text(xendit_id, "xendit_id")
        amount = _amount(body["amount"]) if body.get("amount") is not None else None
        return PaymentEvent(_SEED_KINDS[status], reference, amount, None, xendit_id, f"seed:{reference}:{status}:{xendit_id or ''}")
    raise ValueError("not a QR payment event")
