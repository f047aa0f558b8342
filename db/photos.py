"""Queries on photo deliveries (pd_*)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import photo_delivery as pd

Row = dict[str, Any]


async def of_transaction(conn: AsyncConnection, tr_id: int) -> Row | None:
    row = (await conn.execute(select(pd).where(pd.c.pd_tr_id == tr_id))).first()
    if row is None:
        return None
    found = dict(row._mapping)
    if isinstance(found["pd_photos"], str):
        found["pd_photos"] = json.loads(found["pd_photos"])
    return found
