"""Revoked staff tokens (staff_token_revocation), by jti."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import staff_token_revocation as revocation


async def revoke(conn: AsyncConnection, jti: str, revoked_by: str, reason: str | None, expires_at: dt.datetime | None) -> bool:
    """Whether this revoked the jti now; revoking it again changes nothing. expires_at: naive UTC."""
    statement = (
        insert(revocation).values(jti=jti, revoked_by=revoked_by, reason=reason, expires_at=expires_at).prefix_with("IGNORE")
    )
    return (await conn.execute(statement)).rowcount == 1


async def revoked_jtis(conn: AsyncConnection) -> set[str]:
    """The jtis of revoked tokens that may still be presented (unknown or future expiry)."""
    rows = await conn.execute(
        select(revocation.c.jti).where(or_(revocation.c.expires_at.is_(None), revocation.c.expires_at > func.now(6)))
    )
    return {r.jti for r in rows}
