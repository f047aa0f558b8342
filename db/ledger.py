"""Read queries on ledger entries. Writing one is domain.ledger.post_entry's job alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import ledger_entry


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    jenis: str
    jumlah: int
    saldo_akhir: int
    purchase_id: int | None
    keterangan: str | None
    waktu: dt.datetime


async def history(conn: AsyncConnection, reseller_id: int, limit: int, before_id: int | None) -> list[LedgerEntry]:
    query = select(
        ledger_entry.c.id,
        ledger_entry.c.jenis,
        ledger_entry.c.jumlah,
        ledger_entry.c.saldo_akhir,
        ledger_entry.c.purchase_id,
        ledger_entry.c.keterangan,
        ledger_entry.c.waktu,
    ).where(ledger_entry.c.reseller_id == reseller_id)
    if before_id is not None:
        query = query.where(ledger_entry.c.id < before_id)
    rows = await conn.execute(query.order_by(ledger_entry.c.id.desc()).limit(limit))
    return [LedgerEntry(*cast("tuple[Any, ...]", row)) for row in rows]
