"""Queries on kiosk locations (ml_*)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import location

Row = dict[str, Any]


async def page(conn: AsyncConnection, search: str | None, skip: int, limit: int) -> tuple[list[Row], int]:
    where = location.c.ml_name.contains(search, autoescape=True) if search else true()
    total = (await conn.execute(select(func.count()).select_from(location).where(where))).scalar_one()
    rows = await conn.execute(select(location).where(where).order_by(location.c.ml_id).offset(skip).limit(limit))
    return [dict(r._mapping) for r in rows], int(total)


async def by_id(conn: AsyncConnection, location_id: int) -> Row | None:
    row = (await conn.execute(select(location).where(location.c.ml_id == location_id))).first()
    return dict(row._mapping) if row else None


async def create(conn: AsyncConnection, values: Row) -> int:
    result = await conn.execute(insert(location).values(**values))
    return int(result.lastrowid)


async def change(conn: AsyncConnection, location_id: int, values: Row) -> bool:
    result = await conn.execute(update(location).where(location.c.ml_id == location_id).values(**values))
    return result.rowcount == 1


async def remove(conn: AsyncConnection, location_id: int) -> bool:
    return (await conn.execute(delete(location).where(location.c.ml_id == location_id))).rowcount == 1
