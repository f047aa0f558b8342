"""Midtrans Snap and Paystack: the two alternative deposit gateways (a payment page, not a QR string).

Each has a create call (made by a worker, like Xendit's) and a signed notification (webhooks
in), read into the same provider.xendit.PaymentEvent so one apply path serves all three.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from provider.xendit import GatewayRejected, GatewayUnavailable, PaymentEvent, gateway_get, gateway_post


@dataclass(frozen=True)
class PaymentLink:
    reference: str
    url: str


class MidtransClient:
    """Snap transactions and their status. base_url: https://app.midtrans.com (Snap; the status API
    is on api.midtrans.com, sandbox likewise) or the simulator's /midtrans (both)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, server_key: str, timeout: float) -> None:
        self._http, self._url = http, base_url.rstrip("/") + "/snap/v1/transactions"
        self._api = _core_api_url(base_url.rstrip("/"))
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5))
        self._headers = {"authorization": "Basic " + base64.b64encode(f"{server_key}:".encode()).decode(), "accept": "application/json"}

    async def create(self, order_id: str, amount: int) -> PaymentLink:
        body = {"transaction_details": {"order_id": order_id, "gross_amount": amount}, "enabled_payments": ["other_qris"]}
        data = await gateway_post(self._http, self._url, body, self._headers, self._timeout)
        try:
            return PaymentLink(reference=str(data["token"]), url=str(data["redirect_url"]))
        except KeyError as error:
            raise GatewayUnavailable("unreadable answer") from error


    async def status(self, order_id: str) -> dict[str, Any] | None:
        """The transaction's status object (GET /v2/{order_id}/status), the gateway's own word on
        it, whatever a notification said; None when Midtrans knows no such transaction. Raises
        GatewayUnavailable."""
        url = f"{self._api}/v2/{quote(order_id, safe='')}/status"
        try:
            data = await gateway_get(self._http, url, self._headers, self._timeout)
        except GatewayRejected as error:
            if str(error).startswith("HTTP 404"):
                return None
            raise GatewayUnavailable(str(error)) from error
        # Midtrans answers an unknown transaction with HTTP 200 and status_code 404 in the body.
        return None if data.get("status_code") == "404" else data


def _core_api_url(base_url: str) -> str:
    """Midtrans' core API (the status API) beside its Snap host: app.[sandbox.]midtrans.com ->
    api.[sandbox.]midtrans.com; any other base URL (the simulator) serves both."""
    parts = urlsplit(base_url)
    if parts.hostname and parts.hostname.startswith("app.") and parts.hostname.endswith("midtrans.com"):
        return urlunsplit(parts._replace(netloc="api." + parts.netloc.removeprefix("app.")))
    return base_url


def confirms_credit(status: dict[str, Any] | None, amount: int) -> str | None:
    """Why Midtrans' status object does not confirm a credit of amount, or None when it does:
    status_code 200 with settlement, or capture whose fraud check accepted it, of that amount."""
    if status is None:
        return "Midtrans knows no such transaction"
    state, code = status.get("transaction_status"), status.get("status_code")
    if code != "200" or state not in ("settlement", "capture") or (state == "capture" and status.get("fraud_status") != "accept"):
        return f"Midtrans reports {state} ({code}), not a settled payment"
    try:
        paid = float(status.get("gross_amount"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "Midtrans reports no readable gross_amount"
    if paid != amount:
        return f"Midtrans reports {paid:g} paid, expected {amount}"
    return None


class PaystackClient:
    """Transaction initialize. base_url: https://api.paystack.co or the simulator's /paystack."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, secret_key: str, timeout: float) -> None:
        self._http, self._url = http, base_url.rstrip("/") + "/transaction/initialize"
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5))
        self._headers = {"authorization": f"Bearer {secret_key}"}

    async def create(self, reference: str, amount: int, email: str) -> PaymentLink:
        """amount in rupiah; Paystack counts in the smallest unit (x100)."""
        body = {"email": email, "amount": amount * 100, "reference": reference, "currency": "IDR"}
        data = await gateway_post(self._http, self._url, body, self._headers, self._timeout)
        try:
            return PaymentLink(reference=str(data["data"]["reference"]), url=str(data["data"]["authorization_url"]))
        except (KeyError, TypeError) as error:
            raise GatewayUnavailable("unreadable answer") from error


def midtrans_signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


_MIDTRANS_KINDS = {"settlement": "paid", "capture": "paid", "deny": "failed", "cancel": "failed", "failure": "failed", "expire": "expired"}
_MIDTRANS_CODES = {"paid": "200", "failed": "202", "expired": "202"}


def parse_midtrans(body: Any) -> PaymentEvent | None:
    """A Midtrans notification as a payment event; None for a state that decides nothing (pending)."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    fields = {name: body.get(name) for name in ("order_id", "transaction_status", "transaction_id", "gross_amount", "status_code", "signature_key")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value or len(value) > 200:
            raise ValueError(f"{name} must be a non-empty string")
    strings = {name: str(value) for name, value in fields.items()}  # each checked above
    status = strings["transaction_status"]
    if status == "capture" and body.get("fraud_status") != "accept":
        status = "deny"
    kind = _MIDTRANS_KINDS.get(status)
    # The signature binds status_code but not transaction_status: a state counts only with the
    # code Midtrans gives it (200 paid, 202 denied, cancelled or expired), so a signed pending
    # notification (201) with its transaction_status rewritten decides nothing.
    if kind is None or strings["status_code"] != _MIDTRANS_CODES[kind]:
        return None
    amount = float(strings["gross_amount"])
    transaction = strings["transaction_id"]
    return PaymentEvent(kind, strings["order_id"], amount, transaction, None, f"midtrans:{transaction}:{status}")


def paystack_signature(raw: bytes, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), raw, hashlib.sha512).hexdigest()


def parse_paystack(body: Any) -> PaymentEvent | None:
    """A Paystack event as a payment event; None for events other than charge.success."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict) or not isinstance(body.get("event"), str):
        raise ValueError("body must be {event, data}")
    if body["event"] != "charge.success":
        return None
    data = body["data"]
    reference, amount, payment_id = data.get("reference"), data.get("amount"), data.get("id")
    if not isinstance(reference, str) or not reference or len(reference) > 64:
        raise ValueError("data.reference must be a string")
    if isinstance(amount, bool) or not isinstance(amount, int) or isinstance(payment_id, bool) or not isinstance(payment_id, (int, str)):
        raise ValueError("data.amount and data.id are required")
    if data.get("status") != "success":
        return None
    return PaymentEvent("paid", reference, amount / 100, str(payment_id), None, f"paystack:{payment_id}")
