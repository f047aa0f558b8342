"""The one function that moves a reseller's money (its statements: procedures.sql's post_ledger_entry)."""

from __future__ import annotations

from db import raw
from db.raw import sql

# The rule (a conditional UPDATE, then the entry with the exact saldo it left) is written once, in
# procedures.sql; accept_purchases calls the same procedure inside the database.
_POST = sql("CALL post_ledger_entry(:reseller_id, :jenis, :jumlah, :purchase_id, :qris_id, :keterangan, @saldo_akhir)")
_SALDO_AKHIR = sql("SELECT @saldo_akhir")


class InsufficientSaldo(Exception):
    """A debit larger than the saldo; nothing was changed."""


async def post_entry(
    conn: raw.Connection,
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
    params = {"reseller_id": reseller_id, "jenis": jenis, "jumlah": jumlah, "purchase_id": purchase_id, "qris_id": qris_id, "keterangan": keterangan}
    await raw.run(conn, _POST, params)
    saldo_akhir = (await raw.run(conn, _SALDO_AKHIR)).scalar()
    if saldo_akhir is None:
        raise InsufficientSaldo()
    return int(saldo_akhir)
