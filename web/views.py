"""How domain rows look on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from db.ledger import LedgerEntry
from db.products import Product
from db.purchases import Purchase


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def product_view(p: Product) -> dict[str, Any]:
    return {"id": p.id, "kode": p.kode, "nama": p.nama, "harga": p.harga, "nominal": p.nominal, "kategori": p.kategori, "deskripsi": p.deskripsi}


def purchase_view(p: Purchase) -> dict[str, Any]:
    return {
        "id": p.id,
        "ref_id": p.ref_id,
        "produk_id": p.produk_id,
        "kode": p.kode,
        "nomor_tujuan": p.nomor_tujuan,
        "nominal": p.nominal,
        "harga": p.harga,
        "status": p.status,
        "sn": p.sn,
        "hasil_eksekusi": p.hasil_eksekusi,
        "waktu": _time(p.waktu),
        "updated_at": _time(p.updated_at),
    }


def ledger_view(e: LedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "jenis": e.jenis,
        "jumlah": e.jumlah,
        "saldo_akhir": e.saldo_akhir,
        "trx_id": e.purchase_id,
        "keterangan": e.keterangan,
        "waktu": _time(e.waktu),
    }
