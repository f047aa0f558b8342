"""Who is calling: a reseller by x-api-key, or staff by a bearer JWT."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from core.security import StaffClaims, hash_api_key, verify_staff_token
from db import resellers
from db.resellers import Reseller
from web.errors import ApiError

MAX_KEY_LENGTH = 128


async def reseller_of(conn: AsyncConnection, request: Request) -> Reseller:
    """The reseller whose API key the request carries; 401 otherwise.

    The key is hashed and looked up by hash, so no comparison of the secret itself happens here.
    """
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise ApiError(401, "missing_api_key", "header x-api-key is required")
    if len(api_key) > MAX_KEY_LENGTH:
        raise ApiError(401, "invalid_api_key", "API key not recognised")
    found = await resellers.by_api_key_hash(conn, hash_api_key(api_key))
    if found is None:
        raise ApiError(401, "invalid_api_key", "API key not recognised")
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
