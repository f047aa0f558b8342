"""Queries on kiosk QRIS transactions (tr_*). Status changes live in domain.qris."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql
from db.tables import location
from db.tables import qris_transaction as tr

Row = dict[str, Any]


# The hot reads (every create, every QR job, every payment event) go straight through the driver.
_SELECT = f"SELECT {', '.join(column.name for column in tr.columns)} FROM qris_transaction "
_BY_ID = sql(_SELECT + "WHERE tr_id = :id")
_BY_EXTERNAL_ID = sql(_SELECT + "WHERE tr_external_id = :external_id")
_BY_EXTERNAL_ID_LOCKED = sql(_SELECT + "WHERE tr_external_id = :external_id FOR UPDATE")
_BY_IDS = sql(
    f"SELECT {', '.join('t.' + column.name for column in tr.columns)} "
    "FROM JSON_TABLE(:ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j "
    "STRAIGHT_JOIN qris_transaction t FORCE INDEX (PRIMARY) ON t.tr_id = j.id"
)


def _first(result: raw.Result) -> Row | None:
    found = result.mappings()
    return found[0] if found else None


async def by_external_id(conn: raw.Connection, external_id: str, *, for_update: bool = False) -> Row | None:
    statement = _BY_EXTERNAL_ID_LOCKED if for_update else _BY_EXTERNAL_ID
    return _first(await raw.run(conn, statement, {"external_id": external_id}))


async def by_id(conn: raw.Connection, tr_id: int) -> Row | None:
    return _first(await raw.run(conn, _BY_ID, {"id": tr_id}))


async def by_ids(conn: raw.Connection, tr_ids: list[int]) -> dict[int, Row]:
    """The transactions there are of these ids, by id, in one statement."""
    return {row["tr_id"]: row for row in (await raw.run(conn, _BY_IDS, {"ids": json.dumps(tr_ids)})).mappings()}


def _filters(search: str | None, statuses: list[str] | None) -> list:
    filters = []
    if search:
        filters.append(or_(tr.c.tr_external_id.contains(search, autoescape=True), location.c.ml_name.contains(search, autoescape=True)))
    if statuses:
        filters.append(tr.c.tr_status.in_(statuses))
    return filters


async def deposits_of(conn: AsyncConnection, reseller_id: int, limit: int, before_id: int | None) -> list[Row]:
    query = select(tr).where(tr.c.tr_reseller_id == reseller_id)
    if before_id is not None:
        query = query.where(tr.c.tr_id < before_id)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(tr.c.tr_id.desc()).limit(limit))]


async def page(
    conn: AsyncConnection, search: str | None, statuses: list[str] | None, skip: int, limit: int, *, location_id: int | None = None
) -> tuple[list[Row], int]:
    """location_id: that location's transactions only; None: every location's."""
    joined = tr.join(location, location.c.ml_id == tr.c.tr_location_id)
    filters = _filters(search, statuses)
    if location_id is not None:
        filters.append(tr.c.tr_location_id == location_id)
    total = (await conn.execute(select(func.count()).select_from(joined).where(*filters))).scalar_one()
    rows = await conn.execute(
        select(tr, location.c.ml_name).select_from(joined).where(*filters).order_by(tr.c.tr_id.desc()).offset(skip).limit(limit)
    )
    return [dict(r._mapping) for r in rows], int(total)


async def count(conn: AsyncConnection, statuses: list[str] | None, *, location_id: int | None = None) -> int:
    """Kiosk transactions (deposits have no location), of location_id only when given."""
    query = select(func.count()).select_from(tr).where(tr.c.tr_location_id.is_not(None))
    if location_id is not None:
        query = query.where(tr.c.tr_location_id == location_id)
    if statuses:
        query = query.where(tr.c.tr_status.in_(statuses))
    return int((await conn.execute(query)).scalar_one())


async def overdue_pending_ids(conn: AsyncConnection, grace_seconds: int, limit: int) -> list[int]:
    """PENDING transactions whose expiry passed more than grace_seconds ago (missed timers)."""
    rows = await conn.execute(_OVERDUE, {"grace": grace_seconds, "limit": limit})
    return [r.tr_id for r in rows]


_OVERDUE = text(
    "SELECT tr_id FROM qris_transaction WHERE tr_status = 'PENDING' "
    "AND tr_expired_at < NOW(6) - INTERVAL :grace SECOND ORDER BY tr_expired_at LIMIT :limit"
)
