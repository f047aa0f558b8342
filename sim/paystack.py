"""Paystack transaction initialize + charge.success webhook side of the simulator (deposits).

HTTP-agnostic: `sim.app` turns requests into calls on `PaystackGateway`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from sim.midtrans import DepositAnswer, Webhook, WebhookSender, json_object, problems
from sim.settings import DepositGatewayConfig, Settings

INVALID_KEY: dict[str, Any] = {"status": False, "message": "Invalid key"}
_ALNUM = string.ascii_lowercase + string.digits


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fail(status_code: int, message: str) -> DepositAnswer:
    return DepositAnswer(status_code, {"status": False, "message": message})


def signature(secret_key: str, raw: bytes) -> str:
    """The x-paystack-signature header: hex HMAC-SHA512 of the raw body keyed by the secret key."""
    return hmac.new(secret_key.encode(), raw, hashlib.sha512).hexdigest()


class InitializeBody(BaseModel):
    """A /transaction/initialize body; other fields (callback_url, metadata, channels, ...) are ignored."""

    model_config = ConfigDict(extra="allow")

    email: StrictStr = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    amount: StrictInt = Field(gt=0)
    reference: StrictStr | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9.=_-]+$")
    currency: StrictStr = Field("NGN", pattern=r"^[A-Z]{3}$")


class SimulateBody(BaseModel):
    """A /paystack/_simulate/{reference} body."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(None, gt=0)


@dataclass
class Transaction:
    """One initialized transaction and the charge events sent about it."""

    id: int
    reference: str
    access_code: str
    email: str
    amount: int
    currency: str
    created_at: str
    status: str = "abandoned"
    events: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The admin view of this transaction."""
        return {"id": self.id, "reference": self.reference, "access_code": self.access_code, "email": self.email,
                "amount": self.amount, "currency": self.currency, "status": self.status,
                "created_at": self.created_at, "events": list(self.events)}


class PaystackGateway:
    """In-memory Paystack Transactions API. One instance per app; never shared."""

    def __init__(self, settings: Settings, *, webhook_retries: int = 3) -> None:
        """Create an empty gateway.

        Args:
            settings: environment settings (secret key, config defaults, seed).
            webhook_retries: extra delivery attempts after a failed webhook.
        """
        self.settings = settings
        self.config = DepositGatewayConfig.from_settings(settings)
        self.transactions: dict[str, Transaction] = {}
        self._rng = random.Random(settings.seed)
        self.sender = WebhookSender("paystack", lambda: self.config.deposit_webhook_retry_delay_ms / 1000,
                                    webhook_retries)

    async def reset(self) -> None:
        """Forget all transactions, cancel webhooks, restore config and random seed."""
        await self.sender.cancel()
        self.transactions.clear()
        self.config = DepositGatewayConfig.from_settings(self.settings)
        self._rng.seed(self.settings.seed)

    async def aclose(self) -> None:
        """Cancel background tasks and close the outbound HTTP client (app shutdown)."""
        await self.sender.aclose()

    def initialize(self, headers: Mapping[str, str], raw: bytes, base_url: str) -> DepositAnswer:
        """Answer one POST /paystack/transaction/initialize.

        Args:
            headers: request headers (authorization is checked).
            raw: the request body as received.
            base_url: the simulator's base URL, for authorization_url.
        """
        expected = f"Bearer {self.settings.paystack_secret_key}"
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
            return DepositAnswer(401, INVALID_KEY)
        try:
            body = InitializeBody.model_validate_json(raw)
        except ValidationError as exc:
            return _fail(400, "; ".join(problems(exc)))
        reference = body.reference
        if reference is None:
            reference = self._token(10)
            while reference in self.transactions:
                reference = self._token(10)
        elif reference in self.transactions:
            return _fail(400, "Duplicate Transaction Reference")
        access_code = self._token(15)
        self.transactions[reference] = Transaction(
            self._rng.randrange(10**9, 10**10), reference, access_code, body.email, body.amount, body.currency,
            _iso(datetime.now(UTC)))
        url = f"{base_url.rstrip('/')}/paystack/checkout/{access_code}"
        return DepositAnswer(200, {"status": True, "message": "Authorization URL created",
                                   "data": {"authorization_url": url, "access_code": access_code,
                                            "reference": reference}})

    def simulate(self, reference: str, raw: bytes) -> DepositAnswer:
        """Answer one POST /paystack/_simulate/{reference}: build the charge.success event and queue it.

        Args:
            reference: the transaction to charge.
            raw: optional JSON body {"amount": int}; the initialized amount when absent.
        """
        tx = self.transactions.get(reference)
        if tx is None:
            return _fail(404, "Transaction reference not found")
        body = json_object(raw)
        if body is None:
            return _fail(400, "body must be a JSON object")
        try:
            sim = SimulateBody.model_validate(body)
        except ValidationError as exc:
            return _fail(400, "; ".join(problems(exc)))
        event = {"event": "charge.success",
                 "data": {"id": tx.id, "domain": "test", "status": "success", "reference": reference,
                          "amount": tx.amount if sim.amount is None else sim.amount, "currency": tx.currency,
                          "channel": "card", "gateway_response": "Successful", "paid_at": _iso(datetime.now(UTC)),
                          "created_at": tx.created_at, "customer": {"email": tx.email}}}
        tx.status = "success"
        tx.events.append(event)
        url = self.config.paystack_callback_url
        hook = None
        if url:
            raw_event = json.dumps(event, separators=(",", ":")).encode()
            hook = Webhook(url, raw_event, {"Content-Type": "application/json",
                                            "x-paystack-signature": signature(self.settings.paystack_secret_key,
                                                                              raw_event)})
        return DepositAnswer(200, event, webhook=hook)

    def _token(self, length: int) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(length))
