"""Creating QR codes at the gateway and expiring unpaid transactions."""

from __future__ import annotations

import datetime as dt
import logging
from typing import NamedTuple

from core import context
from db import outbox
from db import qris as qris_queries
from domain import qris
from provider.xendit import GatewayRejected, GatewayUnavailable, QrCode
from workers import qr_ready, resources
from workers.actor import actor, hand_off_actor, hand_off_each_actor

log = logging.getLogger(__name__)


async def create(tr_id: int, attempt: int = 0) -> None:
    """Ask the gateway for the transaction's QR code; idempotent by the gateway's idempotency-key.

    A gateway that refuses (4xx), or keeps failing past QRIS_CREATE_DEADLINE_SECONDS, ends the
    transaction FAILED; a shorter outage, or the database or Redis failing mid-way, schedules a
    retry with backoff (_retry_delay_ms).

    attempt: how many tries failed before this one.
    """
    context.subject.set(f"qris:{tr_id}")
    try:
        await _create(tr_id, attempt)
    except Exception as failure:
        await resources.current().retry_later(qris.create_qr_job(tr_id, attempt + 1), _backoff_ms(attempt), failure)


async def _create(tr_id: int, attempt: int) -> None:
    res = resources.current()
    transaction = await res.group_call("qris.load", _load_group)(tr_id)
    if transaction is None or transaction["tr_status"] != "PENDING" or transaction["tr_xendit_id"]:
        async with res.raw_unit_of_work() as conn:
            await outbox.complete(conn, qris.create_qr_job(tr_id).job_key)
        return
    try:
        qr = await _create_at_gateway(res, transaction)
    except GatewayRejected as rejected:
        async with res.raw_unit_of_work() as conn:
            await qris.fail(conn, tr_id, f"gateway refused: {rejected}")
        log.warning("qris %s failed: gateway refused", tr_id)
        return
    except GatewayUnavailable as unavailable:
        deadline_seconds = res.settings.qris_create_deadline_seconds
        async with res.raw_unit_of_work() as conn:
            gave_up = await qris.fail(conn, tr_id, f"gateway unavailable: {unavailable}", only_after_seconds=deadline_seconds)
        if gave_up:
            log.warning("qris %s failed: gateway unavailable past the deadline", tr_id)
            return
        await res.retry_later(qris.create_qr_job(tr_id, attempt + 1), _retry_delay_ms(transaction["tr_created_at"], deadline_seconds, attempt), unavailable)
        return
    made = _Made(qris.QrAttachment(tr_id, qr.id, qr.qr_string, qr.url), transaction["tr_external_id"])
    if await res.group_call("qris.attach", _attach_group)(made):
        # The timer is a delayed message; the clock's sweeper expires whatever a lost timer misses.
        remaining = transaction["tr_expired_at"] - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        await res.pusher.push_after_commit([qris.expire_job(tr_id)], delay_ms=max(0, int(remaining.total_seconds() * 1000)) + 200)


class _Made(NamedTuple):
    code: qris.QrAttachment
    external_id: str


async def _load_group(tr_ids: list[int]) -> list[dict | None]:
    """The transactions of this process's QR jobs that start together, in one transaction; their
    create jobs' rows are kept from falling due while the gateway is asked."""
    res = resources.current()
    async with res.raw_unit_of_work() as conn:
        found = await qris_queries.by_ids(conn, tr_ids)
        await outbox.keep_due(conn, [qris.create_qr_job(tr_id).job_key for tr_id in found], res.settings.outbox_lease_seconds)
    return [found.get(tr_id) for tr_id in tr_ids]


async def _attach_group(made: list[_Made]) -> list[bool]:
    """The QR codes of this process's jobs that came back together, stored in one transaction;
    the requests waiting for them are told in one Redis round trip. True for each stored here."""
    res = resources.current()
    async with res.raw_unit_of_work() as conn:
        attached = await qris.attach_qr_codes(conn, [m.code for m in made])
    ready = [(m.external_id, m.code.qr_string or m.code.qr_url or "") for m in made if m.code.tr_id in attached]
    if ready:
        await qr_ready.announce(res.redis, ready)
    return [m.code.tr_id in attached for m in made]


async def _create_at_gateway(res: resources.Resources, transaction: dict) -> QrCode:
    """The QR code at Xendit, or for a deposit through another gateway its payment page."""
    gateway, external_id, amount = transaction["tr_gateway"], transaction["tr_external_id"], transaction["tr_amount"]
    if gateway == "midtrans":
        link = await res.midtrans.create(external_id, amount)
    elif gateway == "paystack":
        link = await res.paystack.create(external_id, amount, f"reseller{transaction['tr_reseller_id']}@loket.local")
    else:
        return await res.gateway.create_qr(external_id, amount, transaction["tr_expired_at"])
    return QrCode(id=link.reference, qr_string=None, url=link.url)


def _backoff_ms(attempt: int) -> int:
    """0.5 s doubling with each failed attempt, at most 30 s."""
    return min(500 * 2 ** min(attempt, 16), 30_000)


def _retry_delay_ms(created_at: dt.datetime, deadline_seconds: int, attempt: int) -> int:
    """The backoff, but never past the deadline: the last attempt comes right at it, so a gateway
    that is down for good fails the kiosk's session promptly."""
    deadline = created_at + dt.timedelta(seconds=deadline_seconds)
    until_deadline = (deadline - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds() * 1000
    return int(max(100, min(_backoff_ms(attempt), until_deadline + 100)))


async def expire(tr_id: int) -> None:
    context.subject.set(f"qris:{tr_id}")
    res = resources.current()
    async with res.raw_unit_of_work() as conn:
        if await qris.expire(conn, tr_id):
            log.info("qris %s expired", tr_id)


def _create_qr_job_key(tr_id: int, attempt: int = 0) -> str:
    return qris.create_qr_job(tr_id).job_key


@hand_off_actor(actor_name=qris.CREATE_QR_ACTOR, queue_name=qris.QRIS_QUEUE, job_key=_create_qr_job_key)
async def create_qr(tr_id: int, attempt: int = 0) -> None:
    """Runs in this process's work in flight, after its message is acknowledged: the gateway call
    does not hold a worker thread (workers.in_flight)."""
    await create(tr_id, attempt)


# create() for each transaction of a message that carries the create-QR jobs of sessions created together (web.intake).
create_qrs = hand_off_each_actor(actor_name=qris.CREATE_QRS_ACTOR, queue_name=qris.QRIS_QUEUE, job_key=_create_qr_job_key)(create)


@actor(actor_name=qris.EXPIRE_ACTOR, queue_name=qris.QRIS_QUEUE)
async def expire_qris(tr_id: int) -> None:
    await expire(tr_id)
