"""A purchase's life: accepted (and debited), at the provider, then sukses or gagal (refunded).

pending -> proses -> sukses | gagal, one way. Each transition is a conditional UPDATE, so a
duplicate job, a late callback or a racing re-check can never move a purchase twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import outbox, raw
from db import purchases as purchase_queries
from db.errors import is_duplicate_key
from db.outbox import Job
from db.products import Product
from db.purchases import Purchase
from db.raw import sql
from domain import callbacks
from domain.ledger import post_entry
from provider.digiflazz import Outcome, ProviderAnswer

EXECUTE_ACTOR = "execute_purchase"
PURCHASE_QUEUE = "purchases"

_INSERT = sql(
    "INSERT INTO purchase (reseller_id, ref_id, produk_id, kode, nomor_tujuan, nominal, harga, provider_ref) "
    "VALUES (:reseller_id, :ref_id, :produk_id, :kode, :nomor_tujuan, :nominal, :harga, :provider_ref)"
)
_TO_PROSES = sql("UPDATE purchase SET status = 'proses' WHERE id = :id AND status = 'pending'")
_SETTLE = sql(
    "UPDATE purchase SET status = :status, sn = :sn, hasil_eksekusi = :message, provider_rc = :rc "
    "WHERE id = :id AND status IN ('pending', 'proses')"
)
_NOTE = sql("UPDATE purchase SET hasil_eksekusi = :message, provider_rc = :rc WHERE id = :id AND status IN ('pending', 'proses')")


class DuplicateRefId(Exception):
    """The reseller's ref_id is already taken; roll back and replay()."""


class RefIdReused(Exception):
    """The reseller's ref_id already names a purchase with a different body."""

    def __init__(self, existing: Purchase) -> None:
        self.existing = existing


@dataclass(frozen=True)
class Accepted:
    purchase_id: int
    provider_ref: str
    saldo: int


def execute_job(purchase_id: int) -> Job:
    return Job(job_key=f"purchase:{purchase_id}", queue_name=PURCHASE_QUEUE, actor_name=EXECUTE_ACTOR, args=[purchase_id])


async def accept(
    conn: AsyncConnection,
    *,
    reseller_id: int,
    product: Product,
    nomor_tujuan: str,
    nominal: int | None,
    ref_id: str | None,
    lease_seconds: int,
) -> Accepted:
    """Insert the purchase, debit its price and record its execute job, in the caller's transaction.

    Raises domain.ledger.InsufficientSaldo, or DuplicateRefId when the ref_id is taken.
    """
    provider_ref = "LK" + secrets.token_hex(11)
    values = {
        "reseller_id": reseller_id,
        "ref_id": ref_id,
        "produk_id": product.id,
        "kode": product.kode,
        "nomor_tujuan": nomor_tujuan,
        "nominal": nominal,
        "harga": product.harga,
        "provider_ref": provider_ref,
    }
    try:
        inserted = await raw.run(conn, _INSERT, values)
    except IntegrityError as error:
        if is_duplicate_key(error) and ref_id is not None:
            raise DuplicateRefId() from error
        raise
    purchase_id = int(inserted.lastrowid)
    saldo = await post_entry(conn, reseller_id, "pembelian", -product.harga, purchase_id=purchase_id)
    await outbox.add(conn, execute_job(purchase_id), lease_seconds)
    return Accepted(purchase_id=purchase_id, provider_ref=provider_ref, saldo=saldo)


async def replay(
    conn: AsyncConnection, *, reseller_id: int, ref_id: str, produk_id: int, nomor_tujuan: str, nominal: int | None
) -> Purchase | None:
    """The purchase an earlier request with this ref_id made, if the body matches; else RefIdReused."""
    existing = await purchase_queries.by_ref_id(conn, reseller_id, ref_id)
    if existing is None:
        return None
    if (existing.produk_id, existing.nomor_tujuan, existing.nominal) != (produk_id, nomor_tujuan, nominal):
        raise RefIdReused(existing)
    return existing


async def mark_at_provider(conn: AsyncConnection, purchase_id: int) -> bool:
    """pending -> proses: from here on the provider may have the order, so it is never refunded
    on a mere error, only on the provider's own Gagal."""
    return (await raw.run(conn, _TO_PROSES, {"id": purchase_id})).rowcount == 1


async def note_provider_answer(conn: AsyncConnection, purchase_id: int, message: str, rc: str | None) -> None:
    """Record the provider's latest non-final answer for the reseller to see."""
    await raw.run(conn, _NOTE, {"id": purchase_id, "message": message[:255], "rc": rc})


async def settle(
    conn: AsyncConnection, purchase: Purchase, *, sukses: bool, sn: str | None, message: str, rc: str | None, lease_seconds: int
) -> bool:
    """pending|proses -> sukses|gagal; a gagal is refunded, and the reseller's callback is
    scheduled, in the same transaction.

    Returns False (and changes nothing) when the purchase had already ended.
    """
    status = "sukses" if sukses else "gagal"
    changed = await raw.run(
        conn,
        _SETTLE, {"id": purchase.id, "status": status, "sn": sn if sukses else None, "message": message[:255], "rc": rc}
    )
    if changed.rowcount != 1:
        return False
    if not sukses:
        await post_entry(conn, purchase.reseller_id, "refund", purchase.harga, purchase_id=purchase.id)
    await outbox.complete(conn, execute_job(purchase.id).job_key)
    await callbacks.schedule(conn, purchase.reseller_id, purchase.id, lease_seconds)
    return True


async def apply_provider_answer(conn: AsyncConnection, purchase: Purchase, answer: ProviderAnswer, lease_seconds: int) -> bool:
    """Apply what the provider said about a purchase (from a call or a callback).

    Returns True when the purchase ended; False when it is still open (Pending, or a request
    rejection that says nothing about the order) or had already ended.
    """
    outcome = answer.outcome
    if outcome in (Outcome.SUKSES, Outcome.GAGAL):
        return await settle(
            conn, purchase, sukses=outcome is Outcome.SUKSES, sn=answer.sn, message=answer.message, rc=answer.rc, lease_seconds=lease_seconds
        )
    await note_provider_answer(conn, purchase.id, answer.message, answer.rc)
    return False


def status_object(p: Purchase) -> dict[str, Any]:
    """A purchase as resellers see it: GET /status answers it, the callback carries it."""
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
        "waktu": p.waktu.isoformat(timespec="seconds") if p.waktu else None,
        "updated_at": p.updated_at.isoformat(timespec="seconds") if p.updated_at else None,
    }
