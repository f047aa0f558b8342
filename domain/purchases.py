"""A purchase's life: accepted (and debited), at the provider, then sukses or gagal (refunded).

pending -> proses -> sukses | gagal, one way. Each transition is a conditional UPDATE, so a
duplicate job, a late callback or a racing re-check can never move a purchase twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from db import outbox, raw
from db import purchases as purchase_queries
from db.outbox import Job
from db.purchases import Purchase
from db.raw import sql
from domain import callbacks
from domain.ledger import InsufficientSaldo
from domain.provider_answers import Outcome, ProviderAnswer

EXECUTE_ACTOR = "execute_purchase"
EXECUTE_ALL_ACTOR = "execute_purchases"
PURCHASE_QUEUE = "purchases"

EXECUTE_JOB_PREFIX = "purchase:"

_ACCEPT = sql("CALL accept_purchases(:orders, :job_key_prefix, :queue_name, :actor_name, :lease, :message_id)")
_START = sql("CALL start_purchases(:ids, :job_key_prefix, :lease)")
_SETTLE = sql(
    "CALL settle_purchases(:settlements, :execute_job_key_prefix, :callback_job_key_prefix, :callback_queue_name, "
    ":callback_actor_name, :lease)"
)
_NOTE = sql("UPDATE purchase SET hasil_eksekusi = :message, provider_rc = :rc WHERE id = :id AND status IN ('pending', 'proses')")


class DuplicateRefId(Exception):
    """The reseller's ref_id is already taken; roll back and replay()."""


class UnknownApiKey(Exception):
    """No active reseller has the API key the purchase was accepted by; nothing was changed."""


class SignatureRequired(Exception):
    """The API key's reseller requires signed requests, and this purchase came by key alone."""


class UnknownProduct(Exception):
    """No active product with that id; nothing was changed."""


class InvalidDestination(Exception):
    """A PLN purchase whose meter/customer number is not 11-12 digits; nothing was changed."""


class RefIdReused(Exception):
    """The reseller's ref_id already names a purchase with a different body."""

    def __init__(self, existing: Purchase) -> None:
        self.existing = existing


@dataclass(frozen=True)
class Accepted:
    purchase_id: int
    harga: int
    saldo: int


@dataclass(frozen=True, slots=True)
class Order:
    """A purchase as POST /beli asks for it.

    reseller_id: the buyer, authenticated by the caller; or None, and api_key_hash: the hash of
    the API key of an unsigned request, checked by the accept in the same round trip.
    provider_ref: the reference the provider is sent on every attempt; made once per order, so an
    order accepted again (its first answer lost) finds its purchase instead of buying twice.
    """

    produk_id: int
    nomor_tujuan: str
    nominal: int | None
    ref_id: str | None
    reseller_id: int | None = None
    api_key_hash: bytes | None = None
    provider_ref: str = field(default_factory=lambda: "LK" + secrets.token_hex(11))

    def __post_init__(self) -> None:
        if (self.reseller_id is None) == (self.api_key_hash is None):
            raise ValueError("give the reseller_id or the api_key_hash")


_REFUSALS: dict[str, type[Exception]] = {
    "invalid_api_key": UnknownApiKey,
    "signature_required": SignatureRequired,
    "unknown_product": UnknownProduct,
    "invalid_destination": InvalidDestination,
    "insufficient_saldo": InsufficientSaldo,
    "duplicate_ref_id": DuplicateRefId,
}


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a purchase ends: the provider's final answer about it."""

    purchase_id: int
    sukses: bool
    sn: str | None
    message: str
    rc: str | None

    @classmethod
    def of(cls, purchase_id: int, answer: ProviderAnswer) -> Settlement | None:
        """The settlement the answer makes, or None when it does not end the purchase (Pending, or a
        request rejection that says nothing about the order)."""
        if answer.outcome not in (Outcome.SUKSES, Outcome.GAGAL):
            return None
        return cls(purchase_id, answer.outcome is Outcome.SUKSES, answer.sn, answer.message, answer.rc)


def execute_job(purchase_id: int, attempt: int = 0) -> Job:
    """The job that sends a purchase to the provider, or re-checks it there.

    attempt: how many tries of it failed before (a retry backs off longer with each); the job's
    key and outbox row are the same for every attempt.
    """
    args = [purchase_id, attempt] if attempt else [purchase_id]
    return Job(job_key=f"{EXECUTE_JOB_PREFIX}{purchase_id}", queue_name=PURCHASE_QUEUE, actor_name=EXECUTE_ACTOR, args=args)


async def accept_all(
    conn: raw.Connection, orders: Sequence[Order], *, lease_seconds: int, message_id: str | None = None
) -> list[Accepted | Exception]:
    """Insert the purchases, debit their prices and record their execute jobs, and commit: one
    round trip for all, procedures.sql's accept_purchases, which opens and commits its own
    transaction. For each order in turn: Accepted, whose execute job (execute_job) the caller
    pushes now that it is committed; or the refusal, with nothing of it written: UnknownApiKey
    or SignatureRequired (by key only), UnknownProduct, InvalidDestination,
    domain.ledger.InsufficientSaldo, or DuplicateRefId when the ref_id is taken (replay()).

    conn: an autocommit connection (db.raw.autocommitting); inside a transaction the procedure
    refuses to run (a DBAPIError), since its COMMIT would end the caller's work too. An error
    (a DBAPIError) writes none of the orders.
    message_id: the Redis message the caller will push all the accepted execute jobs in
    (db.outbox.group_message), noted in their outbox rows for the relay; None when each is
    pushed alone.
    """
    params = {
        "orders": raw.json_text([
            {
                "reseller_id": order.reseller_id,
                "key": order.api_key_hash.hex() if order.api_key_hash is not None else None,
                "produk_id": order.produk_id,
                "nomor_tujuan": order.nomor_tujuan,
                "nominal": order.nominal,
                "ref_id": order.ref_id,
                "provider_ref": order.provider_ref,
            }
            for order in orders
        ]),
        "job_key_prefix": EXECUTE_JOB_PREFIX,
        "queue_name": PURCHASE_QUEUE,
        "actor_name": EXECUTE_ACTOR,
        "lease": lease_seconds,
        "message_id": message_id,
    }  # fmt: skip
    answers: list[Accepted | Exception] = [RuntimeError("accept_purchases gave no answer")] * len(orders)
    for n, outcome, purchase_id, harga, saldo in orjson.loads((await raw.run(conn, _ACCEPT, params)).scalar()):
        answers[n - 1] = Accepted(purchase_id, harga, saldo) if outcome == "accepted" else _REFUSALS[outcome]()
    return answers


async def replay(
    conn: raw.Connection, *, reseller_id: int, ref_id: str, produk_id: int, nomor_tujuan: str, nominal: int | None
) -> Purchase | None:
    """The purchase an earlier request with this ref_id made, if the body matches; else RefIdReused."""
    existing = await purchase_queries.by_ref_id(conn, reseller_id, ref_id)
    if existing is None:
        return None
    if (existing.produk_id, existing.nomor_tujuan, existing.nominal) != (produk_id, nomor_tujuan, nominal):
        raise RefIdReused(existing)
    return existing


async def start(conn: raw.Connection, purchase_id: int, lease_seconds: int) -> Purchase | None:
    """pending -> proses: from here on the provider may have the order, so it is never refunded
    on a mere error, only on the provider's own Gagal. Returns the purchase as it now stands
    (None if there is none; an ended one is returned unchanged).

    lease_seconds: the execute job's outbox row stays due at least half of this away, so the
    relay does not push the job again while the provider call it starts is in flight.
    """
    return (await start_all(conn, [purchase_id], lease_seconds)).get(purchase_id)


async def start_all(conn: raw.Connection, purchase_ids: Sequence[int], lease_seconds: int) -> dict[int, Purchase]:
    """start() for a group of purchases, in one round trip: procedures.sql's start_purchases.
    Answers the purchases there are, by id."""
    found = await raw.run(
        conn, _START, {"ids": raw.json_text(sorted(purchase_ids)), "job_key_prefix": EXECUTE_JOB_PREFIX, "lease": lease_seconds}
    )
    return {row[0]: Purchase(*row) for row in found.rows}


async def note_provider_answer(conn: raw.Connection, purchase_id: int, message: str, rc: str | None) -> None:
    """Record the provider's latest non-final answer for the reseller to see."""
    await raw.run(conn, _NOTE, {"id": purchase_id, "message": message[:255], "rc": rc})


async def settle(
    conn: raw.Connection, purchase: Purchase, *, sukses: bool, sn: str | None, message: str, rc: str | None, lease_seconds: int
) -> bool:
    """pending|proses -> sukses|gagal; a gagal is refunded, and the reseller's callback is
    scheduled, in the same transaction.

    Returns False (and changes nothing) when the purchase had already ended.
    """
    return await _settle(conn, Settlement(purchase.id, sukses, sn, message, rc), lease_seconds)


async def _settle(conn: raw.Connection, settlement: Settlement, lease_seconds: int) -> bool:
    ended = await settle_all(conn, [settlement], lease_seconds)
    if settlement.purchase_id not in ended:
        return False
    callback = ended[settlement.purchase_id]
    if callback is not None:
        outbox.will_push(callback)
    return True


async def settle_all(conn: raw.Connection, settlements: Sequence[Settlement], lease_seconds: int) -> dict[int, Job | None]:
    """settle() for a group of purchases, in one round trip: procedures.sql's settle_purchases.

    Returns the purchases that ended here, each with its callback delivery's job (None when its
    reseller has no callback URL); the others had already ended. The caller pushes those jobs
    once the transaction has committed, each in the context of its own purchase's work (the
    message carries its request id).
    """
    # One settlement per purchase (the first: a later one would find it ended), in the order of
    # their ids, in which the procedure locks them.
    first = {s.purchase_id: s for s in reversed(settlements)}
    group = [
        {
            "id": s.purchase_id,
            "status": "sukses" if s.sukses else "gagal",
            "sn": s.sn[:100] if s.sukses and s.sn else None,
            "message": s.message[:255],
            "rc": s.rc[:4] if s.rc else None,
            "delivery_key": callbacks.new_delivery_key(),
        }
        for _, s in sorted(first.items())
    ]
    answer = await raw.run(
        conn,
        _SETTLE,
        {
            "settlements": raw.json_text(group),
            "execute_job_key_prefix": EXECUTE_JOB_PREFIX,
            "callback_job_key_prefix": callbacks.DELIVER_JOB_PREFIX,
            "callback_queue_name": callbacks.CALLBACK_QUEUE,
            "callback_actor_name": callbacks.DELIVER_ACTOR,
            "lease": lease_seconds,
        },
    )
    settled = orjson.loads(answer.scalar())
    deliveries = dict(settled["deliveries"])
    return {
        purchase_id: None if purchase_id not in deliveries else callbacks.deliver_job(deliveries[purchase_id])
        for purchase_id in settled["ended"]
    }


async def apply_provider_answer(conn: raw.Connection, purchase: Purchase, answer: ProviderAnswer, lease_seconds: int) -> bool:
    """Apply what the provider said about a purchase (from a call or a callback).

    Returns True when the purchase ended; False when it is still open (Pending, or a request
    rejection that says nothing about the order) or had already ended.
    """
    settlement = Settlement.of(purchase.id, answer)
    if settlement is None:
        await note_provider_answer(conn, purchase.id, answer.message, answer.rc)
        return False
    return await _settle(conn, settlement, lease_seconds)


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
