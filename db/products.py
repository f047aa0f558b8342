"""Queries on products."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import produk


@dataclass(frozen=True)
class Product:
    id: int
    kode: str
    nama: str
    kategori: str
    harga: int
    nominal: int
    deskripsi: str


_COLUMNS = (produk.c.id, produk.c.kode, produk.c.nama, produk.c.kategori, produk.c.harga, produk.c.nominal, produk.c.deskripsi)


async def active(conn: AsyncConnection) -> list[Product]:
    rows = await conn.execute(select(*_COLUMNS).where(produk.c.aktif.is_(True)).order_by(produk.c.id))
    return [Product(*cast("tuple[Any, ...]", row)) for row in rows]
