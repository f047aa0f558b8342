"""Who is calling: a reseller by x-api-key, or staff by a bearer JWT."""

from __future__ import annotations

from starlette.requests import Request

from core.security import StaffClaims, hash_api_key, verify_staff_token
from db import raw, resellers
from db.resellers import Reseller
from web import abuse, signing
from web.errors import ApiError

MAX_KEY_LENGTH = 128


async def reseller_of(conn: raw.Connection, request: Request) -> Reseller:
    """The reseller whose API key the request carries: 401 otherwise, 429 over the rate limit,
    401 for a missing (when required), stale, wrong or replayed signature.

    The key is hashed and looked up by hash, so no comparison of the secret itself happens here.
    """
    return await reseller_by_key(conn, request, api_key_hash_of(request))


def api_key_hash_of(request: Request) -> bytes:
    """The hash of the request's API key, counted against its rate limit; 401 without a usable
    key, 429 over the limit. The key is not looked up yet."""
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise ApiError(401, "missing_api_key", "header x-api-key is required")
    if len(api_key) > MAX_KEY_LENGTH:
        raise invalid_api_key()
    key_hash = hash_api_key(api_key)
    # Before the database: a flood of keys not known to work from one address, and a flood with
    # one key, valid or not, are refused without a query.
    abuse.key_attempt_limited(request, key_hash)
    request.app.state.rate_limiter.enforce(key_hash)
    return key_hash


async def reseller_by_key(conn: raw.Connection, request: Request, key_hash: bytes) -> Reseller:
    """The active reseller with this key hash, its signature checked (see reseller_of)."""
    return await verified(request, await resellers.by_api_key_hash(conn, key_hash), key_hash)


async def verified(request: Request, found: Reseller | None, key_hash: bytes) -> Reseller:
    """The reseller found by the request's key hash, with the request's signature checked: 401
    when none was found, or for a missing (when required), stale, wrong or replayed signature."""
    if found is None:
        abuse.key_failed(request, key_hash)
        raise invalid_api_key()
    abuse.key_worked(request, key_hash)
    if found.require_signature or signature_sent_or_required(request):
        await signing.verify(request, found)
    return found


def signature_sent_or_required(request: Request) -> bool:
    """Whether the request's signature is checked whatever its account says."""
    return request.app.state.settings.require_request_signature or "x-signature" in request.headers


def invalid_api_key() -> ApiError:
    return ApiError(401, "invalid_api_key", "API key not recognised")


def staff_of(request: Request) -> StaffClaims | None:
    """The staff member named by a valid bearer token, None without one; 401 for a bad token."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "invalid_token", "Authorization must be 'Bearer <token>'")
    claims = verify_staff_token(request.app.state.settings.jwt_secret.get_secret_value(), token.strip())
    if claims is None:
        raise ApiError(401, "invalid_token", "staff token invalid or expired")
    revocations = request.app.state.revocations
    if not revocations.loaded:
        raise ApiError(503, "revocations_unavailable", "staff tokens cannot be checked yet; try again", {"Retry-After": "1"})
    if claims.jti is not None and claims.jti in revocations:
        raise ApiError(401, "token_revoked", "staff token revoked", {"WWW-Authenticate": "Bearer"})
    return claims
