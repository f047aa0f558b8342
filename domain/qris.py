"""A kiosk QRIS transaction's life: PENDING -> COMPLETED | FAILED | EXPIRED, one way.

Every transition is a conditional UPDATE on tr_status = 'PENDING', so duplicate, late and
out-of-order events (a payment racing the expiry timer, a webhook delivered five times) leave
exactly one outcome. A price's quota slot is taken when a transaction is created and given back
when it ends without payment.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import locations, outbox, prices
from db.outbox import Job
from domain.ledger import post_entry

QRIS_QUEUE = "qris"
CREATE_QR_ACTOR = "create_qr"
EXPIRE_ACTOR = "expire_qris"


class LocationNotFound(Exception):
    pass


class PriceNotFound(Exception):
    pass


class PriceNotForLocation(Exception):
    pass


class QuotaExhausted(Exception):
    pass


@dataclass(frozen=True)
class Created:
    tr_id: int
    external_id: str


def create_qr_job(tr_id: int) -> Job:
    return Job(job_key=f"qris:{tr_id}", queue_name=QRIS_QUEUE, actor_name=CREATE_QR_ACTOR, args=[tr_id])


def expire_job(tr_id: int) -> Job:
    """Sent as a delayed message only; the sweeper in clock is its durable backstop."""
    return Job(job_key=f"qris-expiry:{tr_id}", queue_name=QRIS_QUEUE, actor_name=EXPIRE_ACTOR, args=[tr_id])


def new_external_id(location_id: int, now: dt.datetime) -> str:
    return f"TRX-{location_id}-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4).upper()}"


_TAKE_SLOT = text(
    "UPDATE price SET mp_used = mp_used + 1 WHERE mp_id = :id AND (mp_quota IS NULL OR mp_used < mp_quota)"
)
_GIVE_BACK_SLOT = text(
    "UPDATE price SET mp_used = mp_used - 1 WHERE mp_used > 0 AND mp_id = "
    "(SELECT tr_price_id FROM qris_transaction WHERE tr_id = :id)"
)
_INSERT = text(
    "INSERT INTO qris_transaction (tr_external_id, tr_location_id, tr_price_id, tr_amount, tr_expired_at) "
    "VALUES (:external_id, :location_id, :price_id, :amount, NOW(6) + INTERVAL :ttl SECOND)"
)
_INSERT_DEPOSIT = text(
    "INSERT INTO qris_transaction (tr_external_id, tr_reseller_id, tr_amount, tr_gateway, tr_expired_at) "
    "VALUES (:external_id, :reseller_id, :amount, :gateway, NOW(6) + INTERVAL :ttl SECOND)"
)
_ATTACH_QR = text(
    "UPDATE qris_transaction SET tr_xendit_id = :qr_id, tr_qris_string = :qr_string, tr_qris_url = :qr_url "
    "WHERE tr_id = :id AND tr_status = 'PENDING' AND tr_xendit_id IS NULL"
)
_COMPLETE = text(
    "UPDATE qris_transaction SET tr_status = 'COMPLETED', tr_paid_at = NOW(6), tr_payment_id = :payment_id "
    "WHERE tr_id = :id AND tr_status = 'PENDING'"
)
_FAIL = text(
    "UPDATE qris_transaction SET tr_status = 'FAILED', tr_failure_reason = :reason "
    "WHERE tr_id = :id AND tr_status = 'PENDING' AND tr_created_at <= NOW(6) - INTERVAL :after SECOND"
)
_EXPIRE = text(
    "UPDATE qris_transaction SET tr_status = 'EXPIRED' "
    "WHERE tr_id = :id AND tr_status = 'PENDING' AND (:forced OR tr_expired_at <= NOW(6))"
)


async def create(
    conn: AsyncConnection,
    *,
    location_id: int,
    price_id: int | None,
    default_amount: int,
    ttl_seconds: int,
    lease_seconds: int,
    now: dt.datetime,
) -> Created:
    """A PENDING transaction, its quota slot and its create-QR job, in the caller's transaction."""
    if await locations.by_id(conn, location_id) is None:
        raise LocationNotFound()
    amount = default_amount
    if price_id is not None:
        price = await prices.by_id(conn, price_id)
        if price is None:
            raise PriceNotFound()
        if price["mp_location_id"] not in (None, location_id):
            raise PriceNotForLocation()
        # The conditional increment is the quota: concurrent creates serialise on the price row.
        if (await conn.execute(_TAKE_SLOT, {"id": price_id})).rowcount != 1:
            raise QuotaExhausted()
        amount = int(price["mp_amount"])
    external_id = new_external_id(location_id, now)
    inserted = await conn.execute(
        _INSERT, {"external_id": external_id, "location_id": location_id, "price_id": price_id, "amount": amount, "ttl": ttl_seconds}
    )
    tr_id = int(inserted.lastrowid)
    await outbox.add(conn, create_qr_job(tr_id), lease_seconds)
    return Created(tr_id=tr_id, external_id=external_id)


async def attach_qr(conn: AsyncConnection, tr_id: int, qr_id: str, qr_string: str | None, qr_url: str | None) -> bool:
    """Store the gateway's QR code (or payment page) once; the create job is done either way."""
    attached = (await conn.execute(_ATTACH_QR, {"id": tr_id, "qr_id": qr_id, "qr_string": qr_string, "qr_url": qr_url})).rowcount == 1
    await outbox.complete(conn, create_qr_job(tr_id).job_key)
    return attached


async def complete(conn: AsyncConnection, transaction: dict[str, Any], payment_id: str | None) -> bool:
    """PENDING -> COMPLETED with paid_at set now; a deposit credits its reseller in the same
    transaction. False if it had already ended (paid_at untouched, nothing credited)."""
    tr_id = transaction["tr_id"]
    completed = (await conn.execute(_COMPLETE, {"id": tr_id, "payment_id": payment_id})).rowcount == 1
    if completed:
        await outbox.complete(conn, create_qr_job(tr_id).job_key)
        if transaction["tr_reseller_id"] is not None:
            await post_entry(
                conn, transaction["tr_reseller_id"], "deposit", transaction["tr_amount"], qris_id=tr_id, keterangan=f"deposit {transaction['tr_external_id']}"
            )
    return completed


async def create_deposit(
    conn: AsyncConnection, *, reseller_id: int, amount: int, gateway: str, ttl_seconds: int, lease_seconds: int, now: dt.datetime
) -> Created:
    """A reseller's top-up: a PENDING transaction without a location, paid like a kiosk session.

    gateway: xendit (a QRIS code), midtrans or paystack (a payment page).
    """
    external_id = f"DEP-{reseller_id}-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4).upper()}"
    inserted = await conn.execute(
        _INSERT_DEPOSIT, {"external_id": external_id, "reseller_id": reseller_id, "amount": amount, "ttl": ttl_seconds, "gateway": gateway}
    )
    tr_id = int(inserted.lastrowid)
    await outbox.add(conn, create_qr_job(tr_id), lease_seconds)
    return Created(tr_id=tr_id, external_id=external_id)


async def fail(conn: AsyncConnection, tr_id: int, reason: str, *, only_after_seconds: int = 0) -> bool:
    """PENDING -> FAILED (the slot goes back).

    only_after_seconds: fail only a transaction at least this old (the gateway's grace period).
    """
    failed = (await conn.execute(_FAIL, {"id": tr_id, "reason": reason[:255], "after": only_after_seconds})).rowcount == 1
    if failed:
        await _end_unpaid(conn, tr_id)
    return failed


async def expire(conn: AsyncConnection, tr_id: int, *, forced: bool = False) -> bool:
    """PENDING -> EXPIRED once its expiry has passed (or at once when the gateway says so)."""
    expired = (await conn.execute(_EXPIRE, {"id": tr_id, "forced": forced})).rowcount == 1
    if expired:
        await _end_unpaid(conn, tr_id)
    return expired


async def _end_unpaid(conn: AsyncConnection, tr_id: int) -> None:
    await conn.execute(_GIVE_BACK_SLOT, {"id": tr_id})
    await outbox.complete(conn, create_qr_job(tr_id).job_key)
