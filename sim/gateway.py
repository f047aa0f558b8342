"""Xendit QR Codes (QRIS, api-version 2022-07-31) side of the simulator: QR codes, payments, faults, webhooks.

HTTP-agnostic: `sim.app` turns requests into calls on `XenditGateway`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from sim.settings import GatewayConfig, Settings

log = logging.getLogger("sim.gateway")

API_VERSION = "2022-07-31"
DEFAULT_CHANNEL = "ID_DANA"
DEFAULT_DYNAMIC_TTL = timedelta(hours=48)
PAYER_NAME = "Budi"
SERVICE_UNAVAILABLE: dict[str, Any] = {"error_code": "SERVICE_UNAVAILABLE", "message": "Service Unavailable"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status_code: int, error_code: str, message: str) -> Answer:
    return Answer(status_code, {"error_code": error_code, "message": message})


def _amount_ok(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def emv_qr_string(qr_type: str, amount: int | float | None, reference_id: str, business_id: str) -> str:
    """An EMV/QRIS-shaped payload carrying the amount (tag 54) and the reference (tag 62.05).

    Args:
        qr_type: "DYNAMIC" or "STATIC"; picks the point-of-initiation method (12 or 11).
        amount: the fixed amount, or None for a static QR the payer types an amount into.
        reference_id: the merchant's reference.
        business_id: identifies the merchant in the merchant-account tag.
    """
    parts = [
        _tlv("00", "01"), _tlv("01", "12" if qr_type == "DYNAMIC" else "11"),
        _tlv("26", _tlv("00", "ID.CO.XENDIT.WWW") + _tlv("01", business_id[:15])),
        _tlv("51", _tlv("00", "ID.CO.QRIS.WWW") + _tlv("02", "ID1020000000001") + _tlv("03", "UMI")),
        _tlv("52", "5999"), _tlv("53", "360"),
    ]
    if amount is not None:
        parts.append(_tlv("54", str(int(amount)) if float(amount).is_integer() else f"{amount:.2f}"))
    # EMV lengths have two digits, so a reference longer than 95 characters cannot fit whole.
    parts += [_tlv("58", "ID"), _tlv("59", "LOKET SIM"), _tlv("60", "JAKARTA"),
              _tlv("62", _tlv("05", reference_id[:95])), "6304"]
    payload = "".join(parts)
    # crc_hqx seeded with 0xFFFF is CRC-16/CCITT-FALSE, the checksum EMV puts in tag 63.
    return f"{payload}{binascii.crc_hqx(payload.encode(), 0xFFFF):04X}"


class CreateBody(BaseModel):
    """A v2 create-QR body; other fields are kept in model_extra (and ignored, except callback_url).

    Attributes:
        amount: required for DYNAMIC; optional for STATIC (then the payer types it).
        expires_at: ISO 8601; past times are accepted so tests can create an already expired code.
    """

    model_config = ConfigDict(extra="allow")

    reference_id: StrictStr = Field(min_length=1, max_length=255)
    type: Literal["DYNAMIC", "STATIC"]
    currency: Literal["IDR"]
    amount: StrictInt | StrictFloat | None = None
    expires_at: datetime | None = None
    channel_code: StrictStr | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check_amount(self) -> Self:
        if (self.amount is not None or self.type == "DYNAMIC") and not _amount_ok(self.amount):
            raise ValueError("amount must be a positive number (required for DYNAMIC)")
        return self


@dataclass
class QrCode:
    """One created QR code and the payments made to it.

    Attributes:
        obj: the API object; its status is recomputed from expires_at on every view.
        expires_at: when the code stops accepting payments; None means never.
        payments: v2 payment objects, oldest first.
    """

    obj: dict[str, Any]
    expires_at: datetime | None
    payments: list[dict[str, Any]] = field(default_factory=list)

    def expired(self) -> bool:
        """True once expires_at has passed."""
        return self.expires_at is not None and datetime.now(UTC) > self.expires_at

    def view(self) -> dict[str, Any]:
        """The API object (create and get responses)."""
        return {**self.obj, "status": "INACTIVE" if self.expired() else "ACTIVE"}

    def summary(self) -> dict[str, Any]:
        """The admin view of this code."""
        view = self.view()
        return {**{k: view[k] for k in ("id", "reference_id", "amount", "status", "created")},
                "payments": [{"id": p["id"], "amount": p["amount"]} for p in self.payments]}


def webhook_body(payment: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The payment webhook body.

    Args:
        payment: the v2 payment object to announce.
        fmt: "v2" (api-version 2022-07-31), "legacy" (QR Codes v1) or "seed".
    """
    if fmt == "seed":
        return {"external_id": payment["reference_id"], "status": "COMPLETED", "xendit_id": payment["qr_id"]}
    if fmt == "legacy":
        detail = payment["payment_detail"]
        return {"event": "qr.payment", "id": payment["id"], "amount": payment["amount"],
                "created": payment["created"], "status": "COMPLETED",
                "qr_code": {"id": payment["qr_id"], "external_id": payment["reference_id"],
                            "qr_string": payment["qr_string"], "type": payment["type"]},
                "payment_details": {"source": detail["source"], "receipt_id": detail["receipt_id"]}}
    return {"event": "qr.payment", "api_version": API_VERSION, "business_id": payment["business_id"],
            "created": payment["created"], "data": payment}


@dataclass(frozen=True)
class Answer:
    """A gateway answer.

    Attributes:
        status_code: HTTP status.
        body: JSON body.
        webhook: (url, JSON body) of a webhook to start after the response, if any.
    """

    status_code: int
    body: dict[str, Any]
    webhook: tuple[str, bytes] | None = None


class XenditGateway:
    """In-memory Xendit QR Codes API. One instance per app; never shared."""

    def __init__(self, settings: Settings, *, webhook_retries: int = 3) -> None:
        """Create an empty gateway.

        Args:
            settings: environment settings (secret key, callback token, config defaults, seed).
            webhook_retries: extra delivery attempts after a failed webhook.
        """
        self.settings = settings
        self.webhook_retries = webhook_retries
        self.config = GatewayConfig.from_settings(settings)
        self.qr_codes: dict[str, QrCode] = {}
        self.idempotency: dict[str, str] = {}
        # Stable per secret key, the way a real account keeps its business id.
        self.business_id = hashlib.sha256(settings.xendit_secret_key.encode()).hexdigest()[:24]
        self._rng = random.Random(settings.seed)
        # Strong references: the event loop only keeps weak ones to running tasks.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None

    async def reset(self) -> None:
        """Forget all QR codes and idempotency keys, cancel webhooks, restore config and random seed."""
        await self._cancel_tasks()
        self.qr_codes.clear()
        self.idempotency.clear()
        self.config = GatewayConfig.from_settings(self.settings)
        self._rng.seed(self.settings.seed)

    async def aclose(self) -> None:
        """Cancel background tasks and close the outbound HTTP client (app shutdown)."""
        await self._cancel_tasks()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def create_qr(self, headers: Mapping[str, str], raw: bytes) -> Answer:
        """Answer one POST /qr_codes.

        Args:
            headers: request headers (case-insensitive): authorization, api-version, idempotency-key.
            raw: the request body as received.
        """
        if (early := await self._gate(headers)) is not None:
            return early
        if self._take("gateway_fail_next") or self._chance(self.config.gateway_error_rate):
            return Answer(503, SERVICE_UNAVAILABLE)
        hang = self._take("gateway_timeout_next")
        answer = self._create(headers, raw)
        if hang:
            await asyncio.sleep(self.config.gateway_timeout_sleep_ms / 1000)
        return answer

    async def get_qr(self, headers: Mapping[str, str], qr_id: str) -> Answer:
        """Answer one GET /qr_codes/{qr_id}.

        Args:
            headers: request headers (authorization is checked).
            qr_id: the QR code's id.
        """
        found = await self._read(headers, qr_id, down=False)
        return found if isinstance(found, Answer) else Answer(200, found.view())

    async def list_payments(self, headers: Mapping[str, str], qr_id: str) -> Answer:
        """Answer one GET /qr_codes/{qr_id}/payments: the code's payments, newest first.

        Args:
            headers: request headers (authorization is checked).
            qr_id: the QR code's id.
        """
        found = await self._read(headers, qr_id, down=self.config.gateway_payments_down)
        if isinstance(found, Answer):
            return found
        return Answer(200, {"data": list(reversed(found.payments)), "has_more": False, "links": []})

    async def _read(self, headers: Mapping[str, str], qr_id: str, *, down: bool) -> QrCode | Answer:
        """The QR code a read names, or the answer that ends the read: the key refused, the
        read API down (or the error rate's 503), no such code."""
        if (early := await self._gate(headers)) is not None:
            return early
        if down or self._chance(self.config.gateway_error_rate):
            return Answer(503, SERVICE_UNAVAILABLE)
        qr = self.qr_codes.get(qr_id)
        return qr if qr else _error(404, "DATA_NOT_FOUND", "QR code not found")

    async def simulate_payment(self, headers: Mapping[str, str], qr_id: str, raw: bytes) -> Answer:
        """Answer one POST /qr_codes/{qr_id}/payments/simulate: pay the code, queue the webhook.

        Args:
            headers: request headers (authorization is checked).
            qr_id: the QR code to pay.
            raw: optional JSON body {"amount": number}; the code's own amount when absent.
        """
        if (early := await self._gate(headers)) is not None:
            return early
        qr = self.qr_codes.get(qr_id)
        if qr is None:
            return _error(404, "DATA_NOT_FOUND", "QR code not found")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "API_VALIDATION_ERROR", "body must be a JSON object")
        amount = body.get("amount", qr.obj["amount"])
        if not _amount_ok(amount):
            return _error(400, "API_VALIDATION_ERROR", "amount must be a positive number")
        if qr.expired() and not self.config.allow_expired_payment:
            return _error(400, "INACTIVE_QR_CODE", "QR code is expired and cannot be paid")
        obj = qr.obj
        pay = {"id": f"qrpy_{self._uuid()}", "business_id": obj["business_id"], "currency": obj["currency"],
               "amount": amount, "status": "SUCCEEDED", "created": _iso(datetime.now(UTC)), "qr_id": obj["id"],
               **{k: obj[k] for k in ("qr_string", "reference_id", "type", "channel_code", "expires_at")},
               "description": None, "basket": None, "metadata": obj["metadata"],
               "payment_detail": {"receipt_id": str(self._rng.randrange(10**11, 10**12)),
                                  "source": obj["channel_code"].removeprefix("ID_"), "name": PAYER_NAME,
                                  "account_details": None}}
        qr.payments.append(pay)
        url = self.config.xendit_callback_url
        hook = (url, json.dumps(webhook_body(pay, self.config.webhook_format)).encode()) if url else None
        return Answer(200, pay, webhook=hook)

    # async so that Starlette runs it on the event loop, not in its thread pool.
    async def send_webhook(self, answer: Answer) -> None:
        """Start delivering the answer's webhook, if it has one (called after the response).

        Args:
            answer: the response just sent.
        """
        if answer.webhook:
            task = asyncio.get_running_loop().create_task(self._deliver(*answer.webhook))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _gate(self, headers: Mapping[str, str]) -> Answer | None:
        """Latency, then the API key check; an answer means stop there."""
        if self.config.gateway_latency_ms:
            await asyncio.sleep(self.config.gateway_latency_ms / 1000)
        expected = "Basic " + base64.b64encode(f"{self.settings.xendit_secret_key}:".encode()).decode()
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
            return _error(401, "INVALID_API_KEY", "API key is invalid")
        return None

    def _take(self, counter: str) -> bool:
        left: int = getattr(self.config, counter)
        if left > 0:
            setattr(self.config, counter, left - 1)
        return left > 0

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _create(self, headers: Mapping[str, str], raw: bytes) -> Answer:
        key = headers.get("idempotency-key")
        if key and key in self.idempotency:
            return Answer(200, self.qr_codes[self.idempotency[key]].view())
        if headers.get("api-version") != API_VERSION:
            return _error(400, "API_VALIDATION_ERROR", f"the simulator only implements api-version {API_VERSION}")
        try:
            body = CreateBody.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return _error(400, "API_VALIDATION_ERROR", problems)
        if "callback_url" in (body.model_extra or {}):
            return _error(400, "API_VALIDATION_ERROR", "callback_url is not allowed in this API version; "
                          "set the callback URL in the Dashboard")
        created = datetime.now(UTC)
        expires_at = body.expires_at
        if expires_at is None and body.type == "DYNAMIC":
            expires_at = created + DEFAULT_DYNAMIC_TTL
        elif expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        qr_id = f"qr_{self._uuid()}"
        qr_string = emv_qr_string(body.type, body.amount, body.reference_id, self.business_id)
        self.qr_codes[qr_id] = qr = QrCode({
            "id": qr_id, "reference_id": body.reference_id, "business_id": self.business_id, "type": body.type,
            "currency": body.currency, "amount": body.amount, "channel_code": body.channel_code or DEFAULT_CHANNEL,
            "status": "ACTIVE", "qr_string": qr_string, "expires_at": _iso(expires_at) if expires_at else None,
            "metadata": body.metadata, "created": _iso(created), "updated": _iso(created)}, expires_at)
        if key:
            self.idempotency[key] = qr_id
        return Answer(201, qr.view())

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, url: str, body: bytes) -> bool:
        """POST one webhook, retrying failures; True when a 2xx came back.

        Args:
            url: webhook target.
            body: the JSON body, identical on every attempt.
        """
        headers = {"Content-Type": "application/json", "x-callback-token": self.settings.xendit_callback_token}
        if self._client is None:
            # trust_env=False: proxy variables must not reroute webhooks to a local receiver.
            self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        for attempt in range(1 + self.webhook_retries):
            if attempt:
                await asyncio.sleep(self.config.webhook_retry_delay_ms / 1000)
            try:
                resp = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("webhook to %s failed (attempt %d): %r", url, attempt + 1, exc)
                continue
            if resp.is_success:
                return True
            log.warning("webhook to %s got HTTP %d (attempt %d)", url, resp.status_code, attempt + 1)
        return False
