"""Staff authorisation for the kiosk API: a bearer JWT with a role level and, for a kiosk, a location.

A token with a `location_id` claim acts only on that location's transactions, whatever its level.
A token without one acts on every location only at ADMIN_LEVEL (operators); below it (a kiosk or
a clerk) it is refused on every transaction route, since it would otherwise reach every location.
Master data (locations, prices) is read at level 1 with or without a location.
"""

from __future__ import annotations

from starlette.requests import Request

from core.security import ADMIN_LEVEL, StaffClaims
from web.auth import staff_of
from web.errors import ApiError

READ_LEVEL = 1


def require_staff(request: Request, level: int = READ_LEVEL) -> StaffClaims:
    """The caller's claims; 401 without a valid token, 403 below `level` (1 reads, 50 writes)."""
    claims = staff_of(request)
    if claims is None:
        raise ApiError(401, "missing_token", "Authorization: Bearer <token> is required", {"WWW-Authenticate": "Bearer"})
    if claims.role_level < level:
        raise ApiError(403, "insufficient_role", f"role_level {level} or higher is required")
    return claims


def require_admin(request: Request) -> StaffClaims:
    return require_staff(request, ADMIN_LEVEL)


def location_scope(claims: StaffClaims) -> int | None:
    """The one location these claims may act on; None for all of them (an admin without a location
    claim); 403 for a token below ADMIN_LEVEL that names no location."""
    if claims.location_id is not None:
        return claims.location_id
    if claims.role_level >= ADMIN_LEVEL:
        return None
    raise ApiError(403, "location_required", "this token names no location; a kiosk token needs a location_id claim")


def require_location(claims: StaffClaims, location_id: int | None) -> None:
    """403 unless these claims may act on location_id (a deposit's None is no kiosk's)."""
    scope = location_scope(claims)
    if scope is not None and scope != location_id:
        raise ApiError(403, "wrong_location", f"this token acts for location {scope} only")
