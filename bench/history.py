"""`bench.run --history N`: the phases on a database that already holds N purchases and their
ledger entries, so the cost of a growing history shows beside the figures of an empty one.

The history belongs to resellers of its own, registered through the API like the others: each
gets an opening saldo that its purchases spend exactly, so the saldo still equals the sum of the
ledger and the benchmark's health checks hold. Rows are written by INSERT ... SELECT over
MariaDB's sequence engine (seq_1_to_N), a batch per statement, so ten million take minutes.
"""

from __future__ import annotations

import time

from bench.env import BenchStack, Database

RESELLERS = 100
BATCH = 250_000
PRODUCT_ID = 1


def seed(bench: BenchStack, db: Database, purchases: int, say=print) -> float:
    """Write `purchases` ended purchases with their debits; returns the seconds it took."""
    if purchases <= 0:
        return 0.0
    started = time.monotonic()
    [product] = db.rows("SELECT kode, harga FROM produk WHERE id = %s", PRODUCT_ID)
    per_reseller = -(-purchases // RESELLERS)
    resellers = min(RESELLERS, purchases)
    bench.register(resellers, saldo=per_reseller * int(product["harga"]))
    ids = [int(r["id"]) for r in db.rows("SELECT id FROM reseller ORDER BY id DESC LIMIT %s", resellers)]
    written = 0
    for index, reseller_id in enumerate(ids):
        count = min(per_reseller, purchases - written)
        for first in range(1, count + 1, BATCH):
            last = min(count, first + BATCH - 1)
            _write_batch(db, reseller_id, product, per_reseller, first, last)
        db.rows("UPDATE reseller SET saldo = saldo - %s WHERE id = %s", count * int(product["harga"]), reseller_id)
        written += count
        if index % 10 == 9:
            say(f"history: {written:,} of {purchases:,} purchases written ({time.monotonic() - started:.0f} s)")
    db.rows("ANALYZE TABLE purchase, ledger_entry")
    return time.monotonic() - started


def _write_batch(db: Database, reseller_id: int, product: dict, per_reseller: int, first: int, last: int) -> None:
    """Purchases first..last of one reseller (sukses, a day apart from the newest backwards), then their debits."""
    prefix = f"H{reseller_id:07d}"
    seq = f"seq_{first}_to_{last}"
    db.rows(
        "INSERT INTO purchase (reseller_id, produk_id, kode, nomor_tujuan, harga, status, provider_ref, sn,"
        " hasil_eksekusi, provider_rc, waktu, updated_at)"
        f" SELECT %s, %s, %s, CONCAT('0812', LPAD(seq, 8, '0')), %s, 'sukses', CONCAT(%s, LPAD(seq, 16, '0')),"
        " LPAD(seq, 20, '0'), 'Transaksi Sukses', '00', NOW(6) - INTERVAL (%s - seq) SECOND,"
        f" NOW(6) - INTERVAL (%s - seq) SECOND FROM {seq}",
        reseller_id, PRODUCT_ID, product["kode"], product["harga"], prefix, per_reseller, per_reseller,
    )  # fmt: skip
    opening = per_reseller * int(product["harga"])
    db.rows(
        "INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, purchase_id, keterangan, waktu)"
        " SELECT reseller_id, 'pembelian', -harga, %s - harga * CAST(SUBSTRING(provider_ref, 9) AS UNSIGNED), id,"
        " CONCAT('pembelian ', kode), waktu FROM purchase"
        " WHERE provider_ref BETWEEN CONCAT(%s, LPAD(%s, 16, '0')) AND CONCAT(%s, LPAD(%s, 16, '0'))",
        opening, prefix, first, prefix, last,
    )  # fmt: skip
