"""Request signing: X-Timestamp (unix seconds) and X-Signature = hex HMAC-SHA256 with the
reseller's private key over "{timestamp}.{METHOD}.{path}.{raw body}", where path carries the
query string as sent ("/ledger?limit=5"), so a signed read cannot be replayed with other parameters.

Checked whenever sent; required when the account or the deployment requires it. A timestamp
outside the window is refused, and so is a second use of the same signature inside it. When
Redis cannot say whether a signature was used before, the request is refused (503, Retry-After)
rather than let a replay through: a signed request moves money.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from redis.exceptions import RedisError
from starlette.requests import Request

from db.resellers import Reseller
from web.errors import ApiError
from web.requests import read_body

log = logging.getLogger(__name__)


def expected_signature(private_key: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}.{method}.{path}.".encode() + body
    return hmac.new(private_key.encode(), message, hashlib.sha256).hexdigest()


def signature_required() -> ApiError:
    return ApiError(401, "signature_required", "this account requires X-Timestamp and X-Signature")


async def verify(request: Request, reseller: Reseller) -> None:
    """Raise a 401 unless the request carries a fresh, valid, first-time signature of this reseller."""
    state = request.app.state
    timestamp, signature = request.headers.get("x-timestamp"), request.headers.get("x-signature")
    if not timestamp or not signature:
        raise signature_required()
    # ASCII digits only: str.isdigit() also takes "²" or "١", which int() refuses or reads as a number.
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(time.time() - int(timestamp)) > state.settings.signature_window_seconds:
        raise ApiError(401, "stale_timestamp", f"X-Timestamp must be within {state.settings.signature_window_seconds} s of now")
    body = getattr(request.state, "raw_body", None)
    if body is None:
        body = await read_body(request)
    private_key = state.key_box.open(reseller.private_key_enc)
    query = request.url.query
    expected = expected_signature(private_key, timestamp, request.method, request.url.path + (f"?{query}" if query else ""), body)
    if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
        raise ApiError(401, "bad_signature", "X-Signature does not match this request")
    try:
        first_use = await state.redis.set(f"loket:sig:{expected}", 1, nx=True, ex=state.settings.signature_window_seconds * 2)
    except RedisError:
        log.warning("signed request refused: the replay check cannot reach Redis")
        raise ApiError(503, "replay_check_unavailable", "signed requests cannot be checked for replays now; retry shortly",
                       headers={"retry-after": "5"}) from None  # fmt: skip
    if not first_use:
        raise ApiError(401, "replayed", "this signed request was already received")
