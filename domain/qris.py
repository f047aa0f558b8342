"""A kiosk QRIS transaction's life: PENDING -> COMPLETED | FAILED | EXPIRED, one way.

Every transition is a conditional UPDATE on tr_status = 'PENDING', so duplicate, late and
out-of-order events (a payment racing the expiry timer, a webhook delivered five times) leave
exactly one outcome. A price's quota slot is taken when a transaction is created and given back
when it ends without payment.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from db import outbox, raw
from db.outbox import Job
from db.raw import sql
from domain.ledger import post_entry

QRIS_QUEUE = "qris"
CREATE_QR_ACTOR = "create_qr"
CREATE_QRS_ACTOR = "create_qrs"
EXPIRE_ACTOR = "expire_qris"


class LocationNotFound(Exception):
    pass


class PriceNotFound(Exception):
    pass


class PriceNotForLocation(Exception):
    pass


class QuotaExhausted(Exception):
    pass


class ExternalIdTaken(Exception):
    """The create's random external id names another transaction: create() tries a new one."""


_REFUSALS: dict[str, type[Exception]] = {
    "unknown_location": LocationNotFound,
    "unknown_price": PriceNotFound,
    "price_not_for_location": PriceNotForLocation,
    "quota_exhausted": QuotaExhausted,
    "duplicate_external_id": ExternalIdTaken,
}


@dataclass(frozen=True, slots=True)
class Creation:
    """A kiosk's request for a session: where, at which price (None: the default amount), under
    which external id (new_external_id)."""

    location_id: int
    price_id: int | None
    external_id: str


@dataclass(frozen=True)
class Created:
    tr_id: int
    external_id: str
    row: dict[str, Any] | None = None
    """The transaction's columns as committed (tr_*), before any QR was attached: a kiosk's
    create (create_qris_transactions answers them); None for a deposit."""


CREATE_QR_JOB_PREFIX = "qris:"


def create_qr_job(tr_id: int, attempt: int = 0) -> Job:
    """The job that asks the gateway for a transaction's QR code.

    attempt: how many tries of it failed before (a retry backs off longer with each); the job's
    key and outbox row are the same for every attempt.
    """
    args = [tr_id, attempt] if attempt else [tr_id]
    return Job(job_key=f"{CREATE_QR_JOB_PREFIX}{tr_id}", queue_name=QRIS_QUEUE, actor_name=CREATE_QR_ACTOR, args=args)


def expire_job(tr_id: int) -> Job:
    """Sent as a delayed message only; the sweeper in clock is its durable backstop."""
    return Job(job_key=f"qris-expiry:{tr_id}", queue_name=QRIS_QUEUE, actor_name=EXPIRE_ACTOR, args=[tr_id])


def new_external_id(location_id: int, now: dt.datetime) -> str:
    return f"TRX-{location_id}-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4).upper()}"


EXTERNAL_ID_ATTEMPTS = 3
"""The random part has 32 bits (photobox-api.md's format): at 250 creates a second at one
location, two ids of the same second collide about once in two days (the benchmark met one at
~1,000 creates/s), so a taken id is replaced and the create tried again."""


_GIVE_BACK_SLOT = sql(
    "UPDATE price SET mp_used = mp_used - 1 WHERE mp_used > 0 AND mp_id = "
    "(SELECT tr_price_id FROM qris_transaction WHERE tr_id = :id)"
)
_CREATE_ALL = sql(
    "CALL create_qris_transactions(:creates, :default_amount, :ttl, :job_key_prefix, :queue_name, :actor_name, :lease, :message_id)"
)
_INSERT_DEPOSIT = sql(
    "INSERT INTO qris_transaction (tr_external_id, tr_reseller_id, tr_amount, tr_gateway, tr_expired_at) "
    "VALUES (:external_id, :reseller_id, :amount, :gateway, NOW(6) + INTERVAL :ttl SECOND)"
)
_ATTACH_QR_CODES = sql("CALL attach_qr_codes(:codes, :job_key_prefix)")
_COMPLETE = sql(
    "UPDATE qris_transaction SET tr_status = 'COMPLETED', tr_paid_at = NOW(6), tr_payment_id = :payment_id "
    "WHERE tr_id = :id AND tr_status = 'PENDING'"
)
_FAIL = sql(
    "UPDATE qris_transaction SET tr_status = 'FAILED', tr_failure_reason = :reason "
    "WHERE tr_id = :id AND tr_status = 'PENDING' AND tr_created_at <= NOW(6) - INTERVAL :after SECOND"
)
_EXPIRE = sql(
    "UPDATE qris_transaction SET tr_status = 'EXPIRED' "
    "WHERE tr_id = :id AND tr_status = 'PENDING' AND (:forced OR tr_expired_at <= NOW(6))"
)


async def create_all(
    conn: raw.Connection,
    creations: Sequence[Creation],
    *,
    default_amount: int,
    ttl_seconds: int,
    lease_seconds: int,
    message_id: str | None = None,
) -> list[Created | Exception]:
    """The PENDING transactions, their quota slots and their create-QR jobs, committed: one round
    trip for all, procedures.sql's create_qris_transactions, which opens and commits its own
    transaction. For each creation in turn: Created, whose create-QR job (create_qr_job) the
    caller pushes now that it is committed; or the refusal, with nothing of it written:
    LocationNotFound, PriceNotFound, PriceNotForLocation, QuotaExhausted, or ExternalIdTaken.

    conn: an autocommit connection (db.raw.autocommitting), as for domain.purchases.accept_all.
    An error (a DBAPIError) writes none of them. message_id: as for domain.purchases.accept_all,
    for the create-QR jobs.
    """
    params = {
        "creates": raw.json_text([{"location_id": c.location_id, "price_id": c.price_id, "external_id": c.external_id} for c in creations]),
        "default_amount": default_amount,
        "ttl": ttl_seconds,
        "job_key_prefix": CREATE_QR_JOB_PREFIX,
        "queue_name": QRIS_QUEUE,
        "actor_name": CREATE_QR_ACTOR,
        "lease": lease_seconds,
        "message_id": message_id,
    }
    answers: list[Created | Exception] = [RuntimeError("create_qris_transactions gave no answer")] * len(creations)
    for row in (await raw.run(conn, _CREATE_ALL, params)).mappings():
        n, outcome = row.pop("n"), row.pop("outcome")
        answers[n - 1] = Created(int(row["tr_id"]), row["tr_external_id"], row) if outcome == "created" else _REFUSALS[outcome]()
    return answers


async def create(
    intake: Callable[[Creation], Awaitable[Created | Exception]],
    *,
    location_id: int,
    price_id: int | None,
    now: dt.datetime,
    new_id: Callable[[int, dt.datetime], str] = new_external_id,
) -> Created:
    """A kiosk's session, created by intake (create_all, alone or with the creates of the same
    moment: web.intake), under a new external id, and another if that one was taken. Raises the
    refusal (LocationNotFound, ...). The intake pushes the create-QR job (web.intake).

    new_id: makes an external id for (location, now).
    """
    for _ in range(EXTERNAL_ID_ATTEMPTS):
        answer = await intake(Creation(location_id, price_id, new_id(location_id, now)))
        if not isinstance(answer, ExternalIdTaken):
            break
    else:
        raise RuntimeError(f"{EXTERNAL_ID_ATTEMPTS} new external ids in a row were taken")
    if isinstance(answer, Exception):
        raise answer
    return answer


@dataclass(frozen=True, slots=True)
class QrAttachment:
    """What the gateway made for a transaction: its QR code, or for a deposit its payment page."""

    tr_id: int
    qr_id: str
    qr_string: str | None
    qr_url: str | None


async def attach_qr_codes(conn: raw.Connection, codes: Sequence[QrAttachment]) -> set[int]:
    """Store each gateway's code once, on a PENDING transaction that has none yet; the create
    jobs are done either way. One round trip for the group: procedures.sql's attach_qr_codes.
    Returns the ids of the transactions whose code was stored here."""
    group = [{"id": c.tr_id, "qr_id": c.qr_id, "qr_string": c.qr_string, "qr_url": c.qr_url} for c in codes]
    answer = await raw.run(conn, _ATTACH_QR_CODES, {"codes": raw.json_text(group), "job_key_prefix": CREATE_QR_JOB_PREFIX})
    return set(orjson.loads(answer.scalar()))


async def complete(conn: raw.Connection, transaction: dict[str, Any], payment_id: str | None) -> bool:
    """PENDING -> COMPLETED with paid_at set now; a deposit credits its reseller in the same
    transaction. False if it had already ended (paid_at untouched, nothing credited)."""
    tr_id = transaction["tr_id"]
    completed = (await raw.run(conn, _COMPLETE, {"id": tr_id, "payment_id": payment_id})).rowcount == 1
    if completed:
        await outbox.complete(conn, create_qr_job(tr_id).job_key)
        if transaction["tr_reseller_id"] is not None:
            await post_entry(
                conn, transaction["tr_reseller_id"], "deposit", transaction["tr_amount"], qris_id=tr_id, keterangan=f"deposit {transaction['tr_external_id']}"
            )
    return completed


async def create_deposit(
    conn: raw.Connection, *, reseller_id: int, amount: int, gateway: str, ttl_seconds: int, lease_seconds: int, now: dt.datetime
) -> Created:
    """A reseller's top-up: a PENDING transaction without a location, paid like a kiosk session.

    gateway: xendit (a QRIS code), midtrans or paystack (a payment page).
    """
    external_id = f"DEP-{reseller_id}-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4).upper()}"
    inserted = await raw.run(
        conn, _INSERT_DEPOSIT, {"external_id": external_id, "reseller_id": reseller_id, "amount": amount, "ttl": ttl_seconds, "gateway": gateway}
    )
    tr_id = int(inserted.lastrowid)
    await outbox.add(conn, create_qr_job(tr_id), lease_seconds)
    return Created(tr_id=tr_id, external_id=external_id)


async def fail(conn: raw.Connection, tr_id: int, reason: str, *, only_after_seconds: int = 0) -> bool:
    """PENDING -> FAILED (the slot goes back).

    only_after_seconds: fail only a transaction at least this old (the gateway's grace period).
    """
    failed = (await raw.run(conn, _FAIL, {"id": tr_id, "reason": reason[:255], "after": only_after_seconds})).rowcount == 1
    if failed:
        await _end_unpaid(conn, tr_id)
    return failed


async def expire(conn: raw.Connection, tr_id: int, *, forced: bool = False) -> bool:
    """PENDING -> EXPIRED once its expiry has passed (or at once when the gateway says so)."""
    expired = (await raw.run(conn, _EXPIRE, {"id": tr_id, "forced": forced})).rowcount == 1
    if expired:
        await _end_unpaid(conn, tr_id)
    return expired


async def _end_unpaid(conn: raw.Connection, tr_id: int) -> None:
    await raw.run(conn, _GIVE_BACK_SLOT, {"id": tr_id})
    await outbox.complete(conn, create_qr_job(tr_id).job_key)
