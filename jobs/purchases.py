"""Executing a purchase at the provider, and re-checking it until it ends."""

from __future__ import annotations

import logging

from core import context
from db import outbox
from db.outbox import Job
from db.purchases import Purchase
from domain import purchases
from provider.digiflazz import ProviderOutcomeUnknown
from workers import resources
from workers.actor import hand_off_actor, hand_off_each_actor
from workers.broker import retry_backoff_ms

log = logging.getLogger(__name__)


async def execute(purchase_id: int, attempt: int = 0) -> None:
    """Send the purchase to the provider (or re-check it: the same request with the same ref_id).

    Idempotent: a purchase that has ended is left alone, and the provider never sells one ref_id
    twice. A failure (the provider unreachable, the database or Redis out) schedules a retry.

    attempt: how many tries failed before this one.
    """
    context.subject.set(f"purchase:{purchase_id}")
    try:
        await _execute(purchase_id)
    except Exception as failure:  # Dramatiq's backoff: 1 s doubling, at most 5 min
        await resources.current().retry_later(purchases.execute_job(purchase_id, attempt + 1), retry_backoff_ms(attempt), failure)


async def _execute(purchase_id: int) -> None:
    res = resources.current()
    purchase = await res.group_call("purchases.start", _start_group)(purchase_id)
    if purchase is None or purchase.is_final:
        async with res.raw_unit_of_work() as conn:
            await outbox.complete(conn, purchases.execute_job(purchase_id).job_key)
        return

    try:
        answer = await res.provider.topup(purchase.provider_ref, purchase.kode, purchase.nomor_tujuan)
    except ProviderOutcomeUnknown as unknown:
        log.warning("purchase %s: provider outcome unknown (%s), re-check scheduled", purchase_id, unknown)
        await _recheck_later(purchase_id, f"Menunggu konfirmasi provider ({unknown})", None)
        return

    settlement = purchases.Settlement.of(purchase_id, answer)
    if settlement is None:
        await _recheck_later(purchase_id, answer.message, answer.rc)
        return
    ended, callback = await res.group_call("purchases.settle", _settle_group)(settlement)
    if ended:
        log.info("purchase %s ended: %s", purchase_id, answer.outcome.value)
    if callback is not None:
        await res.pusher.push_after_commit([callback])


async def _start_group(purchase_ids: list[int]) -> list[Purchase | None]:
    """The starts of this process's purchases that queued up together, in one transaction."""
    res = resources.current()
    async with res.raw_unit_of_work() as conn:
        found = await purchases.start_all(conn, purchase_ids, res.settings.outbox_lease_seconds)
    return [found.get(purchase_id) for purchase_id in purchase_ids]


async def _settle_group(settlements: list[purchases.Settlement]) -> list[tuple[bool, Job | None]]:
    """The settles of this process's purchases whose answers came together, in one transaction.
    For each: whether it ended here (if not, it had already ended and its job is done too), and
    its callback delivery's job, pushed by its own work once this has committed."""
    res = resources.current()
    async with res.raw_unit_of_work() as conn:
        ended = await purchases.settle_all(conn, settlements, res.settings.outbox_lease_seconds)
    return [(s.purchase_id in ended, ended.get(s.purchase_id)) for s in settlements]


async def _recheck_later(purchase_id: int, message: str, rc: str | None) -> None:
    """Note the provider's answer and ask again in PPOB_RECHECK_SECONDS. The outbox row outlives
    the timer by a lease: a lost timer is re-pushed by the relay."""
    res = resources.current()
    job = purchases.execute_job(purchase_id)
    async with res.raw_unit_of_work() as conn:
        await purchases.note_provider_answer(conn, purchase_id, message, rc)
        await outbox.reschedule(conn, job.job_key, res.settings.ppob_recheck_seconds + res.settings.outbox_lease_seconds)
    await res.pusher.push_after_commit([job], delay_ms=res.settings.ppob_recheck_seconds * 1000)


def _execute_job_key(purchase_id: int, attempt: int = 0) -> str:
    return purchases.execute_job(purchase_id).job_key


@hand_off_actor(actor_name=purchases.EXECUTE_ACTOR, queue_name=purchases.PURCHASE_QUEUE, job_key=_execute_job_key)
async def execute_purchase(purchase_id: int, attempt: int = 0) -> None:
    """Runs in this process's work in flight, after its message is acknowledged: the provider
    call does not hold a worker thread (workers.in_flight)."""
    await execute(purchase_id, attempt)


# execute() for each purchase of a message that carries the execute jobs of purchases accepted together (web.intake).
execute_purchases = hand_off_each_actor(actor_name=purchases.EXECUTE_ALL_ACTOR, queue_name=purchases.PURCHASE_QUEUE, job_key=_execute_job_key)(execute)
