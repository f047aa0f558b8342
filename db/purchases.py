"""Queries on purchases. Status changes live in domain.purchases, not here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw, resellers
from db.raw import sql
from db.resellers import Reseller
from db.tables import purchase

FINAL_STATUSES = ("sukses", "gagal")


@dataclass(frozen=True)
class Purchase:
    id: int
    reseller_id: int
    ref_id: str | None
    produk_id: int
    kode: str
    nomor_tujuan: str
    nominal: int | None
    harga: int
    status: str
    provider_ref: str
    sn: str | None
    hasil_eksekusi: str | None
    waktu: dt.datetime
    updated_at: dt.datetime

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


_COLUMNS = (
    purchase.c.id,
    purchase.c.reseller_id,
    purchase.c.ref_id,
    purchase.c.produk_id,
    purchase.c.kode,
    purchase.c.nomor_tujuan,
    purchase.c.nominal,
    purchase.c.harga,
    purchase.c.status,
    purchase.c.provider_ref,
    purchase.c.sn,
    purchase.c.hasil_eksekusi,
    purchase.c.waktu,
    purchase.c.updated_at,
)


# Purchase's fields, in its order (procedures.sql's start_purchases answers the same).
_FIELDS = (
    "id", "reseller_id", "ref_id", "produk_id", "kode", "nomor_tujuan", "nominal", "harga", "status", "provider_ref", "sn",
    "hasil_eksekusi", "waktu", "updated_at",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM purchase "
_BY_ID = sql(_SELECT + "WHERE id = :id")
_BY_REF_ID = sql(_SELECT + "WHERE reseller_id = :reseller_id AND ref_id = :ref_id")
_BY_PROVIDER_REF = sql(_SELECT + "WHERE provider_ref = :provider_ref")
_BY_PROVIDER_REFS = sql(
    f"SELECT {', '.join('p.' + f for f in _FIELDS)} "
    # As long as a callback's reference may be (webhook_event.reference): a CHAR(24) column would
    # cut a longer one and match the purchase its first 24 characters name.
    "FROM JSON_TABLE(:refs, '$[*]' COLUMNS (ref VARCHAR(64) PATH '$')) j "
    "STRAIGHT_JOIN purchase p FORCE INDEX (uq_purchase_provider_ref) ON p.provider_ref = j.ref"
)
# Callers (by API key) and their purchases in one statement: no purchase is found without its
# owner's key. Each item is a row of the JSON array, answered with its ordinal, so the group's
# answers go back to their callers; an item whose key names no active reseller has no row.
_OWNED = (
    f"SELECT j.n, {', '.join('r.' + f for f in resellers.FIELDS)}, {', '.join('p.' + f for f in _FIELDS)} "
    "FROM JSON_TABLE(:items, '$[*]' COLUMNS (n FOR ORDINALITY, k CHAR(64) PATH '$.k', {column})) j "
    "STRAIGHT_JOIN reseller r FORCE INDEX (uq_reseller_api_key) ON r.api_key_hash = UNHEX(j.k) AND r.aktif "
    "LEFT JOIN purchase p ON p.reseller_id = r.id AND {match}"
)
_OWNED_BY_ID = sql(_OWNED.format(column="id BIGINT UNSIGNED PATH '$.id'", match="p.id = j.id"))
# As long as a ref_id may be (RefIdQuery), in the purchase's collation so its unique key serves.
_OWNED_BY_REF_ID = sql(
    _OWNED.format(column="ref VARCHAR(64) COLLATE utf8mb4_unicode_ci PATH '$.ref'", match="p.ref_id = j.ref")
)


@dataclass(frozen=True, slots=True)
class OwnedQuery:
    """One GET /status: the caller's API key hash and its purchase's id or ref_id (one of them)."""

    key_hash: bytes
    purchase_id: int | None = None
    ref_id: str | None = None


async def by_id(conn: raw.Connection, purchase_id: int) -> Purchase | None:
    """Every execution of a purchase starts here: straight through the driver (db.raw)."""
    found = await raw.run(conn, _BY_ID, {"id": purchase_id})
    return Purchase(*found.rows[0]) if found.rows else None


async def by_ref_id(conn: raw.Connection, reseller_id: int, ref_id: str) -> Purchase | None:
    """GET /status?ref_id=: straight through the driver (db.raw)."""
    found = await raw.run(conn, _BY_REF_ID, {"reseller_id": reseller_id, "ref_id": ref_id})
    return Purchase(*found.rows[0]) if found.rows else None


async def owned(conn: raw.Connection, queries: list[OwnedQuery]) -> list[tuple[Reseller | None, Purchase | None]]:
    """GET /status for a group of callers: for each query, in order, the active reseller with its
    API key hash and its purchase of that id (or ref_id); (None, None) without such a reseller.
    One statement for the queries by id and one for those by ref_id."""
    answers: list[tuple[Reseller | None, Purchase | None]] = [(None, None)] * len(queries)
    by_id = [i for i, query in enumerate(queries) if query.purchase_id is not None]
    by_ref_id = [i for i, query in enumerate(queries) if query.purchase_id is None]
    split = 1 + len(resellers.FIELDS)  # the ordinal, the reseller's columns, then the purchase's
    for statement, indexes, field in ((_OWNED_BY_ID, by_id, "id"), (_OWNED_BY_REF_ID, by_ref_id, "ref")):
        if not indexes:
            continue
        items = [{"k": queries[i].key_hash.hex(), field: _owned_value(queries[i])} for i in indexes]
        found = await raw.run(conn, statement, {"items": raw.json_text(items)})
        for row in found.rows:
            answers[indexes[row[0] - 1]] = (
                resellers.from_row(row[1:split]),
                Purchase(*row[split:]) if row[split] is not None else None,
            )
    return answers


def _owned_value(query: OwnedQuery) -> int | str | None:
    return query.purchase_id if query.purchase_id is not None else query.ref_id


async def by_provider_ref(conn: raw.Connection, provider_ref: str) -> Purchase | None:
    """A provider's callback names the purchase by the ref_id Loket sent it."""
    found = await raw.run(conn, _BY_PROVIDER_REF, {"provider_ref": provider_ref})
    return Purchase(*found.rows[0]) if found.rows else None


async def by_provider_refs(conn: raw.Connection, provider_refs: list[str]) -> dict[str, Purchase]:
    """The purchases there are of these provider ref_ids, by ref_id, in one statement: the
    provider's callbacks that a worker applies together."""
    found = await raw.run(conn, _BY_PROVIDER_REFS, {"refs": raw.json_text(provider_refs)})
    return {purchase.provider_ref: purchase for purchase in (Purchase(*row) for row in found.rows)}


async def history(conn: AsyncConnection, reseller_id: int, limit: int, before_id: int | None) -> list[Purchase]:
    query = select(*_COLUMNS).where(purchase.c.reseller_id == reseller_id)
    if before_id is not None:
        query = query.where(purchase.c.id < before_id)
    rows = await conn.execute(query.order_by(purchase.c.id.desc()).limit(limit))
    return [Purchase(*cast("tuple[Any, ...]", row)) for row in rows]
