"""Queries on products."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql
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
    return [Product(*row) for row in rows]


_ACTIVE_BY_ID = sql("SELECT id, kode, nama, kategori, harga, nominal, deskripsi FROM produk WHERE id = :id AND aktif")


async def active_by_id(conn: AsyncConnection, produk_id: int) -> Product | None:
    """On every purchase: straight through the driver (db.raw)."""
    found = await raw.run(conn, _ACTIVE_BY_ID, {"id": produk_id})
    return Product(*found.rows[0]) if found.rows else None
