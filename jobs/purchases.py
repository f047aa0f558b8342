"""Executing a purchase at the provider, and re-checking it until it ends."""

from __future__ import annotations

import logging

from core import context
from db import outbox, raw
from db.outbox import Job
from domain import purchases
from provider.digiflazz import ProviderOutcomeUnknown
from workers import resources
from workers.actor import actor
from workers.broker import retry_backoff_ms
from workers.enqueue import push_after_commit

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
    job = purchases.execute_job(purchase_id)
    async with res.raw_unit_of_work() as conn:
        purchase = await purchases.start(conn, purchase_id, res.settings.outbox_lease_seconds)
        if purchase is None or purchase.is_final:
            await outbox.complete(conn, job.job_key)
            return

    try:
        answer = await res.provider.topup(purchase.provider_ref, purchase.kode, purchase.nomor_tujuan)
    except ProviderOutcomeUnknown as unknown:
        log.warning("purchase %s: provider outcome unknown (%s), re-check scheduled", purchase_id, unknown)
        await _recheck_later(purchase_id, f"Menunggu konfirmasi provider ({unknown})", None)
        return

    async with res.raw_unit_of_work() as conn:
        ended = await purchases.apply_provider_answer(conn, purchase, answer, res.settings.outbox_lease_seconds)
        if not ended:
            await _keep_for_recheck(conn, job)
    if ended:
        log.info("purchase %s ended: %s", purchase_id, answer.outcome.value)
    else:
        await _push_recheck(job)


async def _recheck_later(purchase_id: int, message: str, rc: str | None) -> None:
    job = purchases.execute_job(purchase_id)
    async with resources.current().raw_unit_of_work() as conn:
        await purchases.note_provider_answer(conn, purchase_id, message, rc)
        await _keep_for_recheck(conn, job)
    await _push_recheck(job)


async def _keep_for_recheck(conn: raw.Connection, job: Job) -> None:
    """The outbox row outlives the timer by a lease: a lost timer is re-pushed by the relay."""
    settings = resources.current().settings
    await outbox.reschedule(conn, job.job_key, settings.ppob_recheck_seconds + settings.outbox_lease_seconds)


async def _push_recheck(job: Job) -> None:
    res = resources.current()
    await push_after_commit(res.redis, [job], delay_ms=res.settings.ppob_recheck_seconds * 1000)


@actor(actor_name=purchases.EXECUTE_ACTOR, queue_name=purchases.PURCHASE_QUEUE)
async def execute_purchase(purchase_id: int, attempt: int = 0) -> None:
    """Hands the purchase to this process's work in flight and returns: the provider call does
    not hold a worker thread (workers.in_flight)."""
    await resources.current().in_flight.start(purchases.execute_job(purchase_id).job_key, execute(purchase_id, attempt))
