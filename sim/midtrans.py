"""Midtrans Snap + HTTP notification side of the simulator (deposits).

HTTP-agnostic: `sim.app` turns requests into calls on `MidtransGateway`. `WebhookSender` (background
delivery with retries) is shared with `sim.paystack`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from sim.settings import DepositGatewayConfig, Settings

log = logging.getLogger("sim.midtrans")

WIB = timezone(timedelta(hours=7), "WIB")
MERCHANT_ID = "G000000000"
STATUS_CODES = {"settlement": "200", "capture": "200", "pending": "201",
                "deny": "202", "cancel": "202", "expire": "202"}
ACCESS_DENIED: dict[str, Any] = {"error_messages": ["Access denied"]}


@dataclass(frozen=True)
class Webhook:
    """One outbound webhook: the exact bytes are sent on every attempt.

    Attributes:
        url: target.
        body: raw JSON body.
        headers: request headers (content type, signatures).
    """

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class DepositAnswer:
    """A deposit gateway answer.

    Attributes:
        status_code: HTTP status.
        body: JSON body.
        webhook: a webhook to start after the response, if any.
    """

    status_code: int
    body: dict[str, Any]
    webhook: Webhook | None = None


class WebhookSender:
    """Delivers webhooks in background tasks, retrying failures; one per gateway."""

    def __init__(self, name: str, delay_s: Callable[[], float], retries: int = 3) -> None:
        """Create an idle sender.

        Args:
            name: gateway name for log lines.
            delay_s: current pause between attempts, in seconds (read before every retry).
            retries: extra delivery attempts after a failed one.
        """
        self.name = name
        self.delay_s = delay_s
        self.retries = retries
        # Strong references: the event loop only keeps weak ones to running tasks.
        self.tasks: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None

    # async so that Starlette runs it on the event loop, not in its thread pool.
    async def send(self, answer: DepositAnswer) -> None:
        """Start delivering the answer's webhook, if it has one (called after the response).

        Args:
            answer: the response just sent.
        """
        if answer.webhook:
            task = asyncio.get_running_loop().create_task(self._deliver(answer.webhook))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def cancel(self) -> None:
        """Cancel every pending delivery."""
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel deliveries and close the outbound HTTP client."""
        await self.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self, hook: Webhook) -> bool:
        """POST one webhook, retrying failures; True when a 2xx came back."""
        if self._client is None:
            # trust_env=False: proxy variables must not reroute webhooks to a local receiver.
            self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        for attempt in range(1 + self.retries):
            if attempt:
                await asyncio.sleep(self.delay_s())
            try:
                resp = await self._client.post(hook.url, content=hook.body, headers=hook.headers)
            except httpx.HTTPError as exc:
                log.warning("%s webhook to %s failed (attempt %d): %r", self.name, hook.url, attempt + 1, exc)
                continue
            if resp.is_success:
                return True
            log.warning("%s webhook to %s got HTTP %d (attempt %d)", self.name, hook.url, resp.status_code,
                        attempt + 1)
        return False


def problems(exc: ValidationError) -> list[str]:
    """One line per validation error: 'a.b: message'."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object ({} when empty), or None when it is not one."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def gross_amount_string(amount: int | float) -> str:
    """Midtrans' notification form of an amount: a string with two decimals ("150000.00")."""
    return str(Decimal(str(amount)).quantize(Decimal("0.01")))


def signature_key(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """sha512(order_id + status_code + gross_amount + server_key), lowercase hex."""
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


class _TransactionDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    order_id: StrictStr = Field(min_length=1, max_length=50)
    gross_amount: StrictInt = Field(gt=0)


class SnapBody(BaseModel):
    """A Snap create-transaction body; other fields (item_details, customer_details, ...) are ignored."""

    model_config = ConfigDict(extra="allow")

    transaction_details: _TransactionDetails


class SimulateBody(BaseModel):
    """A /midtrans/_simulate/{order_id} body."""

    model_config = ConfigDict(extra="forbid")

    transaction_status: Literal["settlement", "capture", "pending", "deny", "cancel", "expire"] = "settlement"
    gross_amount: StrictInt | StrictFloat | None = None
    fraud_status: StrictStr = "accept"


@dataclass
class Order:
    """One Snap transaction and the notifications sent about it."""

    order_id: str
    gross_amount: int
    token: str
    transaction_id: str
    created: str
    status: str = "pending"
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The admin view of this order."""
        return {"order_id": self.order_id, "gross_amount": self.gross_amount, "token": self.token,
                "transaction_id": self.transaction_id, "status": self.status, "created": self.created,
                "notifications": list(self.notifications)}


class MidtransGateway:
    """In-memory Midtrans Snap API. One instance per app; never shared."""

    def __init__(self, settings: Settings, *, webhook_retries: int = 3) -> None:
        """Create an empty gateway.

        Args:
            settings: environment settings (server key, config defaults, seed).
            webhook_retries: extra delivery attempts after a failed notification.
        """
        self.settings = settings
        self.config = DepositGatewayConfig.from_settings(settings)
        self.orders: dict[str, Order] = {}
        self._rng = random.Random(settings.seed)
        self.sender = WebhookSender("midtrans", lambda: self.config.deposit_webhook_retry_delay_ms / 1000,
                                    webhook_retries)

    async def reset(self) -> None:
        """Forget all orders, cancel notifications, restore config and random seed."""
        await self.sender.cancel()
        self.orders.clear()
        self.config = DepositGatewayConfig.from_settings(self.settings)
        self._rng.seed(self.settings.seed)

    async def aclose(self) -> None:
        """Cancel background tasks and close the outbound HTTP client (app shutdown)."""
        await self.sender.aclose()

    def create_transaction(self, headers: Mapping[str, str], raw: bytes, base_url: str) -> DepositAnswer:
        """Answer one POST /midtrans/snap/v1/transactions.

        Args:
            headers: request headers (authorization is checked).
            raw: the request body as received.
            base_url: the simulator's base URL, for redirect_url.
        """
        if not self._authorized(headers):
            return DepositAnswer(401, ACCESS_DENIED)
        try:
            body = SnapBody.model_validate_json(raw)
        except ValidationError as exc:
            return DepositAnswer(400, {"error_messages": problems(exc)})
        details = body.transaction_details
        if details.order_id in self.orders:
            return DepositAnswer(400, {"error_messages": ["transaction_details.order_id sudah digunakan"]})
        token = str(self._uuid())
        self.orders[details.order_id] = Order(details.order_id, details.gross_amount, token, str(self._uuid()),
                                              datetime.now(UTC).isoformat(timespec="milliseconds"))
        redirect = f"{base_url.rstrip('/')}/midtrans/snap/v2/vtweb/{token}"
        return DepositAnswer(201, {"token": token, "redirect_url": redirect})

    def status(self, headers: Mapping[str, str], order_id: str) -> DepositAnswer:
        """Answer one GET /midtrans/v2/{order_id}/status (the transaction_id works as well): the
        order's latest status object, as its last notification told it.

        Args:
            headers: request headers (authorization is checked).
            order_id: the order's id or its transaction_id.
        """
        if not self._authorized(headers):
            return DepositAnswer(401, {"status_code": "401", "status_message": "Access denied", **ACCESS_DENIED})
        if self.config.midtrans_status_down:
            return DepositAnswer(503, {"status_code": "503", "status_message": "Service unavailable"})
        order = self.orders.get(order_id) or next((o for o in self.orders.values() if o.transaction_id == order_id), None)
        if order is None:
            return DepositAnswer(404, {"status_code": "404", "status_message": "Transaction doesn't exist."})
        last = order.notifications[-1] if order.notifications else {}
        status = order.status
        return DepositAnswer(200, {
            "status_code": STATUS_CODES[status],
            "status_message": "Success, transaction is found",
            "transaction_id": order.transaction_id,
            "order_id": order.order_id,
            "gross_amount": last.get("gross_amount", gross_amount_string(order.gross_amount)),
            "payment_type": "qris",
            "transaction_time": last.get("transaction_time", order.created),
            "transaction_status": status,
            "fraud_status": last.get("fraud_status", "accept"),
            "merchant_id": MERCHANT_ID,
            "currency": "IDR",
        })  # fmt: skip

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.settings.midtrans_server_key}:".encode()).decode()
        return hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode())

    def simulate(self, order_id: str, raw: bytes) -> DepositAnswer:
        """Answer one POST /midtrans/_simulate/{order_id}: build the notification and queue it.

        Args:
            order_id: the order to notify about.
            raw: optional JSON body {transaction_status, gross_amount, fraud_status}.
        """
        order = self.orders.get(order_id)
        if order is None:
            return DepositAnswer(404, {"error_messages": ["Transaction doesn't exist."]})
        body = json_object(raw)
        if body is None:
            return DepositAnswer(400, {"error_messages": ["body must be a JSON object"]})
        try:
            sim = SimulateBody.model_validate(body)
        except ValidationError as exc:
            return DepositAnswer(400, {"error_messages": problems(exc)})
        amount = order.gross_amount if sim.gross_amount is None else sim.gross_amount
        if not math.isfinite(amount) or amount <= 0:
            return DepositAnswer(400, {"error_messages": ["gross_amount must be a positive number"]})
        status_code = STATUS_CODES[sim.transaction_status]
        gross = gross_amount_string(amount)
        note = {
            "transaction_time": datetime.now(WIB).strftime("%Y-%m-%d %H:%M:%S"),
            "transaction_status": sim.transaction_status,
            "transaction_id": order.transaction_id,
            "status_message": "midtrans payment notification",
            "status_code": status_code,
            "signature_key": signature_key(order_id, status_code, gross, self.settings.midtrans_server_key),
            "payment_type": "qris",
            "order_id": order_id,
            "merchant_id": MERCHANT_ID,
            "gross_amount": gross,
            "fraud_status": sim.fraud_status,
            "currency": "IDR",
        }
        order.status = sim.transaction_status
        order.notifications.append(note)
        url = self.config.midtrans_callback_url
        hook = Webhook(url, json.dumps(note).encode(), {"Content-Type": "application/json"}) if url else None
        return DepositAnswer(200, note, webhook=hook)

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)
