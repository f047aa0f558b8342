"""Webhooks in: verify, store durably (once), answer fast; a worker applies them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from core.security import hmac_sha1_hex, same_secret
from domain import webhook_events
from web.errors import ApiError
from web.requests import read_body
from workers.enqueue import push_after_commit


def _digiflazz_data(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_event", "body must be {\"data\": {...}}")
    for field in ("ref_id", "status", "rc"):
        if not isinstance(data.get(field), str) or not data[field] or len(data[field]) > 64:
            raise ApiError(400, "invalid_event", f"data.{field} must be a non-empty string")
    return body


async def digiflazz(request: Request) -> JSONResponse:
    raw = await read_body(request)
    secret = request.app.state.settings.ppob_webhook_secret
    signature = request.headers.get("x-hub-signature")
    if not signature:
        raise ApiError(401, "missing_signature", "header X-Hub-Signature is required")
    if not same_secret(signature, "sha1=" + hmac_sha1_hex(secret, raw)):
        raise ApiError(403, "bad_signature", "X-Hub-Signature does not match the body")
    body = _digiflazz_data(raw)
    data = body["data"]
    # Digiflazz sends no event id: the same ref_id reporting the same result is the same event.
    identity = "|".join(str(data.get(k) or "") for k in ("ref_id", "status", "rc", "sn"))
    state = request.app.state
    async with state.engine.begin() as conn:
        job = await webhook_events.receive(
            conn,
            source="digiflazz",
            event_key=hashlib.sha256(identity.encode()).hexdigest(),
            reference=data["ref_id"],
            payload=body,
            lease_seconds=state.settings.outbox_lease_seconds,
        )
    if job is not None:
        await push_after_commit(state.redis, [job])
    return JSONResponse({"received": True, "duplicate": job is None})
