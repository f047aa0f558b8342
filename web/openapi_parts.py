"""The parts of the OpenAPI description that no pydantic model states: the security schemes, and
the webhook bodies, which are read as raw bytes (their signatures cover them) and checked by hand
in web/webhooks.py and provider/; these schemas describe what those checks accept."""

from __future__ import annotations

from typing import Any

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "resellerKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "the reseller's API key from /register. A request may also be signed (required for accounts with "
        "require_signature): X-Timestamp (unix seconds) and X-Signature, the hex HMAC-SHA256 with the private key "
        "over '{timestamp}.{METHOD}.{path}.{raw body}' (web/signing.py)",
    },
    "staffToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 staff token with role_level: 1 reads, 50 (admin) writes",
    },
    "xenditCallbackToken": {
        "type": "apiKey",
        "in": "header",
        "name": "x-callback-token",
        "description": "Xendit's shared callback token",
    },
    "digiflazzSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Hub-Signature",
        "description": "sha1=<hex HMAC-SHA1 of the raw body, keyed with PPOB_WEBHOOK_SECRET>",
    },
    "paystackSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "x-paystack-signature",
        "description": "hex HMAC-SHA512 of the raw body, keyed with PAYSTACK_SECRET_KEY",
    },
}

_TEXT64 = {"type": "string", "minLength": 1, "maxLength": 64}
DIGIFLAZZ_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Digiflazz's transaction update",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["ref_id", "status", "rc"],
            "properties": {
                "ref_id": _TEXT64,
                "status": _TEXT64,
                "rc": _TEXT64,
                "sn": {"type": "string"},
                "message": {"type": "string"},
            },
        }
    },
}
MIDTRANS_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Midtrans HTTP notification; signature_key = SHA512(order_id + status_code + gross_amount + server key)",
    "required": ["order_id", "status_code", "gross_amount", "signature_key", "transaction_status", "transaction_id"],
    "properties": {name: {"type": "string"} for name in ("order_id", "status_code", "gross_amount", "signature_key", "transaction_status", "transaction_id")},
}

PAYSTACK_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Paystack event (charge.success); x-paystack-signature = hex HMAC-SHA512(secret key, raw body)",
    "required": ["event", "data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "object", "required": ["id", "reference", "amount"]}},
}

XENDIT_EVENT: dict[str, Any] = {
    "description": "Xendit's QR payment webhook: v2 `qr.payment`, its legacy form, or the simulator's seed form",
    "anyOf": [
        {"type": "object", "required": ["event", "data"], "properties": {
            "event": {"const": "qr.payment"},
            "data": {"type": "object", "required": ["id", "reference_id", "status", "amount"], "properties": {
                "id": _TEXT64, "reference_id": _TEXT64, "qr_id": {"type": "string"},
                "status": {"enum": ["SUCCEEDED", "FAILED"]}, "amount": {"type": "number"},
            }},
        }},
        {"type": "object", "required": ["event", "id", "status", "amount", "qr_code"], "properties": {
            "event": {"const": "qr.payment"}, "id": _TEXT64, "status": {"const": "COMPLETED"}, "amount": {"type": "number"},
            "qr_code": {"type": "object", "required": ["external_id"], "properties": {"id": {"type": "string"}, "external_id": _TEXT64}},
        }},
        {"type": "object", "required": ["external_id", "status"], "properties": {
            "external_id": _TEXT64, "status": {"enum": ["COMPLETED", "PAID", "SUCCEEDED", "FAILED", "EXPIRED"]},
            "xendit_id": _TEXT64, "amount": {"type": "number"},
        }},
    ],
}  # fmt: skip

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "the request's id: the caller's own X-Request-ID when it sent one, else a new one; "
        "the logs and the jobs the request enqueued carry it",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "seconds to wait before trying again (a rate limit, or a dependency that is down)",
        "schema": {"type": "integer", "minimum": 0},
    },
}


def callback_operation(event_schema: dict[str, Any]) -> dict[str, Any]:
    """The reseller callback (jobs/callbacks.py): what Loket sends to a reseller's callback URL."""
    return {
        "post": {
            "operationId": "callback_transaksi_selesai",
            "summary": "A purchase ended (sukses or gagal); sent to the reseller's callback URL",
            "description": "Sent until the endpoint answers 2xx, with backoff, each attempt listed by GET "
            "/callback/deliveries. Check X-Loket-Signature before trusting the body, and treat "
            "X-Loket-Delivery as the idempotency key: a delivery may arrive more than once.",
            "tags": ["reseller"],
            "parameters": [
                {"name": "X-Loket-Delivery", "in": "header", "required": True, "schema": {"type": "string"},
                 "description": "the delivery's id, the same on every attempt"},
                {"name": "X-Loket-Timestamp", "in": "header", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                 "description": "unix seconds when this attempt was signed"},
                {"name": "X-Loket-Signature", "in": "header", "required": True, "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                 "description": "sha256=<hex HMAC-SHA256 with the reseller's private key over '{timestamp}.{raw body}'>"},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": event_schema}}},
            "responses": {"2XX": {"description": "received; any other answer, or none within 10 s, is retried"}},
        }
    }  # fmt: skip
