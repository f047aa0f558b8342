"""Queries on reseller rows (never the saldo: that moves only through domain.ledger)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql
from db.tables import reseller


@dataclass(frozen=True)
class Reseller:
    id: int
    nama: str
    email: str
    saldo: int
    callback_url: str | None
    require_signature: bool
    private_key_enc: bytes


FIELDS = ("id", "nama", "email", "saldo", "callback_url", "require_signature", "private_key_enc")
"""Reseller's columns, in its order."""

_BY_KEY = sql(f"SELECT {', '.join(FIELDS)} FROM reseller WHERE api_key_hash = :key_hash AND aktif")


async def by_api_key_hash(conn: raw.Connection, key_hash: bytes) -> Reseller | None:
    """Every authenticated request runs this: straight through the driver (db.raw)."""
    found = await raw.run(conn, _BY_KEY, {"key_hash": key_hash})
    if not found.rows:
        return None
    return from_row(found.rows[0])


def from_row(row: tuple) -> Reseller:
    """A Reseller from the values of FIELDS."""
    return Reseller(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


async def insert(
    conn: AsyncConnection,
    *,
    nama: str,
    email: str,
    hp: str | None,
    callback_url: str | None,
    api_key_hash: bytes,
    private_key_enc: bytes,
) -> int:
    result = await conn.execute(
        reseller.insert().values(
            nama=nama,
            email=email,
            hp=hp,
            saldo=0,
            callback_url=callback_url,
            api_key_hash=api_key_hash,
            private_key_enc=private_key_enc,
        )
    )
    return int(result.lastrowid)


async def replace_keys(conn: AsyncConnection, reseller_id: int, api_key_hash: bytes, private_key_enc: bytes) -> None:
    await conn.execute(
        update(reseller)
        .where(reseller.c.id == reseller_id)
        .values(api_key_hash=api_key_hash, private_key_enc=private_key_enc)
    )


async def set_callback_url(conn: AsyncConnection, reseller_id: int, callback_url: str | None) -> None:
    await conn.execute(update(reseller).where(reseller.c.id == reseller_id).values(callback_url=callback_url))


async def saldo_of(conn: AsyncConnection, reseller_id: int) -> int:
    return int((await conn.execute(select(reseller.c.saldo).where(reseller.c.id == reseller_id))).scalar_one())
