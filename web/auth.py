"""Who is calling: a reseller by x-api-key, or staff by a bearer JWT."""

from __future__ import annotations

from starlette.requests import Request

from core.security import StaffClaims, hash_api_key, verify_staff_token
from db import raw, resellers
from db.resellers import Reseller
from web import signing
from web.errors import ApiError

MAX_KEY_LENGTH = 128


async def reseller_of(conn: raw.Connection, request: Request) -> Reseller:
    """The reseller whose API key the request carries: 401 otherwise, 429 over the rate limit,
    401 for a missing (when required), stale, wrong or replayed signature.

    The key is hashed and looked up by hash, so no comparison of the secret itself happens here.
    """
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise ApiError(401, "missing_api_key", "header x-api-key is required")
    if len(api_key) > MAX_KEY_LENGTH:
        raise ApiError(401, "invalid_api_key", "API key not recognised")
    settings = request.app.state.settings
    key_hash = hash_api_key(api_key)
    # Before the database: a flood with one key, valid or not, is refused without a query.
    request.app.state.rate_limiter.enforce(key_hash)
    found = await resellers.by_api_key_hash(conn, key_hash)
    if found is None:
        raise ApiError(401, "invalid_api_key", "API key not recognised")
    if found.require_signature or settings.require_request_signature or "x-signature" in request.headers:
        await signing.verify(request, found)
    return found


def staff_of(request: Request) -> StaffClaims | None:
    """The staff member named by a valid bearer token, None without one; 401 for a bad token."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "invalid_token", "Authorization must be 'Bearer <token>'")
    claims = verify_staff_token(request.app.state.settings.jwt_secret, token.strip())
    if claims is None:
        raise ApiError(401, "invalid_token", "staff token invalid or expired")
    return claims
