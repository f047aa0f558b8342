"""How domain rows look on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from db.ledger import LedgerEntry
from db.products import Product
from db.purchases import Purchase
from domain.purchases import status_object


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def product_view(p: Product) -> dict[str, Any]:
    return {"id": p.id, "kode": p.kode, "nama": p.nama, "harga": p.harga, "nominal": p.nominal, "kategori": p.kategori, "deskripsi": p.deskripsi}


def purchase_view(p: Purchase) -> dict[str, Any]:
    return status_object(p)


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


def delivery_view(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": d["delivery_id"],
        "trx_id": d["purchase_id"],
        "url": d["url"],
        "status": d["status"],
        "attempts": d["attempts"],
        "last_status": d["last_status"],
        "last_error": d["last_error"],
        "next_attempt_at": _time(d["next_attempt_at"]),
        "created_at": _time(d["created_at"]),
        "delivered_at": _time(d["delivered_at"]),
        "attempt_log": [
            {"attempt": a["attempt"], "at": _time(a["attempted_at"]), "status_code": a["status_code"], "error": a["error"], "duration_ms": a["duration_ms"]}
            for a in d.get("attempt_log", [])
        ],
    }
