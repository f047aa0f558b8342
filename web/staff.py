"""Staff authorisation for the kiosk API: a bearer JWT with a role level."""

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
