"""Queries on kiosk prices (mp_*). Taking and giving back a quota slot live in domain.qris."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import price

Row = dict[str, Any]


async def page(conn: AsyncConnection, search: str | None, skip: int, limit: int) -> tuple[list[Row], int]:
    where = price.c.mp_name.contains(search, autoescape=True) if search else true()
    total = (await conn.execute(select(func.count()).select_from(price).where(where))).scalar_one()
    rows = await conn.execute(select(price).where(where).order_by(price.c.mp_id).offset(skip).limit(limit))
    return [dict(r._mapping) for r in rows], int(total)


async def by_id(conn: AsyncConnection, price_id: int) -> Row | None:
    row = (await conn.execute(select(price).where(price.c.mp_id == price_id))).first()
    return dict(row._mapping) if row else None


async def create(conn: AsyncConnection, values: Row) -> int:
    result = await conn.execute(insert(price).values(**values))
    return int(result.lastrowid)


async def change(conn: AsyncConnection, price_id: int, values: Row) -> bool:
    return (await conn.execute(update(price).where(price.c.mp_id == price_id).values(**values))).rowcount == 1


async def remove(conn: AsyncConnection, price_id: int) -> bool:
    return (await conn.execute(delete(price).where(price.c.mp_id == price_id))).rowcount == 1
