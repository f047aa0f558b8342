"""The one function that moves a reseller's money."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql

# The condition in the UPDATE is what makes overspending impossible under any concurrency:
# the row lock serialises debits and each one re-checks the saldo it sees.
_MOVE_SALDO = sql("UPDATE reseller SET saldo = saldo + :jumlah WHERE id = :reseller_id AND saldo + :jumlah >= 0")

# Reads the saldo this transaction just wrote (it holds the row lock), so saldo_akhir is exact.
_RECORD_ENTRY = sql(
    "INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, purchase_id, qris_id, keterangan) "
    "SELECT id, :jenis, :jumlah, saldo, :purchase_id, :qris_id, :keterangan FROM reseller WHERE id = :reseller_id "
    "RETURNING saldo_akhir"
)


class InsufficientSaldo(Exception):
    """A debit larger than the saldo; nothing was changed."""


async def post_entry(
    conn: AsyncConnection,
    reseller_id: int,
    jenis: str,
    jumlah: int,
    *,
    purchase_id: int | None = None,
    qris_id: int | None = None,
    keterangan: str | None = None,
) -> int:
    """Change a saldo by `jumlah` and record the ledger entry; returns the new saldo.

    jenis: saldo_awal, deposit, pembelian, refund or koreksi.
    jumlah: signed rupiah; a debit is negative.
    purchase_id: the purchase the entry belongs to; the schema allows one entry per (purchase, jenis).
    qris_id: the QRIS deposit it credits; the schema allows one entry per (deposit, jenis).
    Raises InsufficientSaldo when a debit would take the saldo below zero.
    """
    params = {"reseller_id": reseller_id, "jumlah": jumlah}
    moved = await raw.run(conn, _MOVE_SALDO, params)
    if moved.rowcount != 1:
        raise InsufficientSaldo()
    recorded = await raw.run(conn, _RECORD_ENTRY, {**params, "jenis": jenis, "purchase_id": purchase_id, "qris_id": qris_id, "keterangan": keterangan})
    return int(recorded.scalar())
