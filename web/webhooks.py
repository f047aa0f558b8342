"""Webhooks in: verify, store durably (once), answer fast; a worker applies them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request

from core import metrics
from core.security import hmac_sha1_hex, same_secret
from domain import webhook_events
from provider.payment_links import midtrans_signature, parse_midtrans, parse_paystack, paystack_signature
from provider.xendit import parse_payment_webhook
from web.errors import ApiError
from web.json_response import JSONResponse
from web.requests import read_body


def _json(raw_body: bytes) -> Any:
    """The body read as JSON, or a 400. Nesting too deep for the parser (its RecursionError) is
    a 400 too: Midtrans signs fields inside the body, so it is read before any check."""
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON (or is nested too deeply)") from None


def _digiflazz_data(raw_body: bytes) -> dict[str, Any]:
    body = _json(raw_body)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_event", "body must be {\"data\": {...}}")
    for field in ("ref_id", "status", "rc"):
        if not isinstance(data.get(field), str) or not data[field] or len(data[field]) > 64:
            raise ApiError(400, "invalid_event", f"data.{field} must be a non-empty string")
    return body


async def _store(request: Request, source: str, identity: str, reference: str | None, payload: dict[str, Any]) -> JSONResponse:
    """Store a verified event once and hand it to a worker; the 2xx comes after the COMMIT."""
    state = request.app.state
    event = webhook_events.IncomingEvent(source, hashlib.sha256(identity.encode()).hexdigest(), reference, payload)
    job = await state.webhook_intake(event)  # stored, and its apply job pushed, with the events of the same moment
    metrics.webhooks_received.labels(source, "stored" if job else "duplicate").inc()
    return JSONResponse({"received": True, "duplicate": job is None})


async def digiflazz(request: Request) -> JSONResponse:
    raw_body = await read_body(request)
    secret = request.app.state.settings.ppob_webhook_secret.get_secret_value()
    signature = request.headers.get("x-hub-signature")
    if not signature:
        raise ApiError(401, "missing_signature", "header X-Hub-Signature is required")
    if not same_secret(signature, "sha1=" + hmac_sha1_hex(secret, raw_body)):
        raise ApiError(403, "bad_signature", "X-Hub-Signature does not match the body")
    body = _digiflazz_data(raw_body)
    data = body["data"]
    # Digiflazz sends no event id: the same ref_id reporting the same result is the same event.
    identity = "|".join(str(data.get(k) or "") for k in ("ref_id", "status", "rc", "sn"))
    return await _store(request, "digiflazz", identity, data["ref_id"], body)


async def xendit(request: Request) -> JSONResponse:
    """Xendit's QR payment webhook (v2, legacy) or the seed's body; x-callback-token is a shared token."""
    raw_body = await read_body(request)
    token = request.headers.get("x-callback-token")
    if not token:
        raise ApiError(401, "missing_token", "header x-callback-token is required")
    if not same_secret(token, request.app.state.settings.xendit_callback_token.get_secret_value()):
        raise ApiError(403, "bad_token", "x-callback-token is not valid")
    body = _json(raw_body)
    try:
        payment = parse_payment_webhook(body)
    except ValueError as error:
        raise ApiError(400, "invalid_event", f"not a QR payment event: {error}") from None
    return await _store(request, "xendit", payment.event_key, payment.reference, body)


def _json_object(raw_body: bytes) -> dict[str, Any]:
    body = _json(raw_body)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_event", "body must be a JSON object")
    return body


def _configured(request: Request, gateway: str) -> None:
    """A gateway without a key here has no webhooks: a signature under an empty key proves nothing."""
    if not request.app.state.settings.gateway_configured(gateway):
        raise ApiError(404, "gateway_not_configured", f"{gateway} is not configured on this deployment")


async def midtrans(request: Request) -> JSONResponse:
    """Midtrans HTTP notification: signature_key = SHA512(order_id + status_code + gross_amount + server key)."""
    _configured(request, "midtrans")
    body = _json_object(await read_body(request))
    signed = [body.get(k) for k in ("order_id", "status_code", "gross_amount")]
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in signed):
        raise ApiError(400, "invalid_event", "order_id, status_code and gross_amount must be strings")
    signature = body.get("signature_key")
    if not isinstance(signature, str) or not signature:
        raise ApiError(401, "missing_signature", "signature_key is required")
    order_id, status_code, gross_amount = (str(v) for v in signed)
    expected = midtrans_signature(order_id, status_code, gross_amount, request.app.state.settings.midtrans_server_key.get_secret_value())
    if not same_secret(signature, expected):
        raise ApiError(403, "bad_signature", "signature_key does not match")
    try:
        payment = parse_midtrans(body)
    except ValueError as error:
        raise ApiError(400, "invalid_event", str(error)) from None
    # With the signed status_code: a notification whose transaction_status was rewritten is another
    # event than the genuine one of that state, which it must not stand in for as its duplicate.
    identity = payment.event_key if payment else f"midtrans:{body.get('transaction_id')}:{body.get('transaction_status')}:{signed[1]}"
    return await _store(request, "midtrans", identity, signed[0], body)


async def paystack(request: Request) -> JSONResponse:
    """Paystack event: x-paystack-signature = hex HMAC-SHA512(secret key, raw body)."""
    _configured(request, "paystack")
    raw_body = await read_body(request)
    signature = request.headers.get("x-paystack-signature")
    if not signature:
        raise ApiError(401, "missing_signature", "header x-paystack-signature is required")
    if not same_secret(signature, paystack_signature(raw_body, request.app.state.settings.paystack_secret_key.get_secret_value())):
        raise ApiError(403, "bad_signature", "x-paystack-signature does not match the body")
    body = _json_object(raw_body)
    try:
        payment = parse_paystack(body)
    except ValueError as error:
        raise ApiError(400, "invalid_event", str(error)) from None
    data = body["data"]
    identity = payment.event_key if payment else f"paystack:{body['event']}:{data.get('id')}"
    return await _store(request, "paystack", identity, str(data.get("reference") or "")[:64] or None, body)
