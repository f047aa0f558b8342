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

import aiohttp

from provider.xendit import GatewayUnavailable, PaymentEvent, gateway_post


@dataclass(frozen=True)
class PaymentLink:
    reference: str
    url: str


class MidtransClient:
    """Snap transactions. base_url: https://app.midtrans.com or the simulator's /midtrans."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, server_key: str, timeout: float) -> None:
        self._http, self._url = http, base_url.rstrip("/") + "/snap/v1/transactions"
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5))
        self._headers = {"authorization": "Basic " + base64.b64encode(f"{server_key}:".encode()).decode(), "accept": "application/json"}

    async def create(self, order_id: str, amount: int) -> PaymentLink:
        body = {"transaction_details": {"order_id": order_id, "gross_amount": amount}, "enabled_payments": ["other_qris"]}
        data = await gateway_post(self._http, self._url, body, self._headers, self._timeout)
        try:
            return PaymentLink(reference=str(data["token"]), url=str(data["redirect_url"]))
        except KeyError as error:
            raise GatewayUnavailable("unreadable answer") from error


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


def parse_midtrans(body: Any) -> PaymentEvent | None:
    """A Midtrans notification as a payment event; None for a state that decides nothing (pending)."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    fields = {name: body.get(name) for name in ("order_id", "transaction_status", "transaction_id", "gross_amount", "status_code", "signature_key")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value or len(value) > 200:
            raise ValueError(f"{name} must be a non-empty string")
    status = fields["transaction_status"]
    if status == "capture" and body.get("fraud_status") not in (None, "accept"):
        status = "deny"
    kind = _MIDTRANS_KINDS.get(status)
    if kind is None:
        return None
    amount = float(fields["gross_amount"])
    return PaymentEvent(kind, fields["order_id"], amount, fields["transaction_id"], None, f"midtrans:{fields['transaction_id']}:{status}")


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
