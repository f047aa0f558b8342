"""Queries on reseller callback deliveries and their attempts."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import callback_attempt as attempt
from db.tables import callback_delivery as delivery
from db.tables import reseller

Row = dict[str, Any]


def _decoded(row: Any) -> Row:
    found = dict(row._mapping)
    if isinstance(found.get("payload"), str):
        found["payload"] = json.loads(found["payload"])
    return found


async def for_delivery(conn: AsyncConnection, delivery_id: int) -> Row | None:
    """The delivery with what sending it needs: the reseller's sealed private key."""
    row = (
        await conn.execute(
            select(delivery, reseller.c.private_key_enc).join(reseller, reseller.c.id == delivery.c.reseller_id).where(delivery.c.id == delivery_id)
        )
    ).first()
    return _decoded(row) if row else None


async def page(
    conn: AsyncConnection, *, reseller_id: int | None, status: str | None, limit: int, before_id: int | None
) -> list[Row]:
    """Deliveries newest first, each with its attempts; reseller_id None means every reseller (operators)."""
    query = select(delivery)
    if reseller_id is not None:
        query = query.where(delivery.c.reseller_id == reseller_id)
    if status is not None:
        query = query.where(delivery.c.status == status)
    if before_id is not None:
        query = query.where(delivery.c.id < before_id)
    rows = [_decoded(r) for r in await conn.execute(query.order_by(delivery.c.id.desc()).limit(limit))]
    if rows:
        attempts = await conn.execute(
            select(attempt).where(attempt.c.delivery_id.in_([r["id"] for r in rows])).order_by(attempt.c.id)
        )
        by_delivery: dict[int, list[Row]] = {}
        for a in attempts:
            by_delivery.setdefault(a.delivery_id, []).append(dict(a._mapping))
        for r in rows:
            r["attempt_log"] = by_delivery.get(r["id"], [])
    return rows
