"""Scheduled work of the clock process besides the relay: durable backstops for timers."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from db import qris as qris_queries
from domain import photos, qris

log = logging.getLogger(__name__)


async def expire_overdue_transactions(engine: AsyncEngine, grace_seconds: int = 2, batch: int = 500) -> int:
    """Expire PENDING QRIS transactions whose expiry timer (a delayed message) was lost or late."""
    async with engine.begin() as conn:
        overdue = await qris_queries.overdue_pending_ids(conn, grace_seconds, batch)
    expired = 0
    for tr_id in overdue:
        async with engine.begin() as conn:
            expired += await qris.expire(conn, tr_id)
    if expired:
        log.info("sweeper expired %d transaction(s) whose timer was missed", expired)
    return expired


async def purge_photos(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        purged = await photos.purge_expired(conn)
    if purged:
        log.info("purged the photos of %d gallery(ies)", purged)
    return purged
