"""Executing a purchase at the provider, and re-checking it until it ends."""

from __future__ import annotations

import logging

from core import context
from db import outbox
from db import purchases as purchase_queries
from domain import purchases
from provider.digiflazz import ProviderOutcomeUnknown
from workers import resources
from workers.actor import actor
from workers.enqueue import push

log = logging.getLogger(__name__)


async def execute(purchase_id: int) -> None:
    """Send the purchase to the provider (or re-check it: the same request with the same ref_id).

    Idempotent: a purchase that has ended is left alone, and the provider never sells one ref_id
    twice. ProviderUnreachable propagates so Dramatiq retries with backoff.
    """
    context.subject.set(f"purchase:{purchase_id}")
    res = resources.current()
    job = purchases.execute_job(purchase_id)
    async with res.unit_of_work() as conn:
        purchase = await purchase_queries.by_id(conn, purchase_id)
        if purchase is None or purchase.is_final:
            await outbox.complete(conn, job.job_key)
            return
        await purchases.mark_at_provider(conn, purchase_id)

    try:
        answer = await res.provider.topup(purchase.provider_ref, purchase.kode, purchase.nomor_tujuan)
    except ProviderOutcomeUnknown as unknown:
        log.warning("purchase %s: provider outcome unknown (%s), re-check scheduled", purchase_id, unknown)
        await _recheck_later(purchase_id, f"Menunggu konfirmasi provider ({unknown})", None)
        return

    async with res.unit_of_work() as conn:
        ended = await purchases.apply_provider_answer(conn, purchase, answer, res.settings.outbox_lease_seconds)
        if not ended:
            await outbox.reschedule(conn, job.job_key, _recheck_seconds() + res.settings.outbox_lease_seconds)
    if ended:
        log.info("purchase %s ended: %s", purchase_id, answer.outcome.value)
    else:
        await push(res.redis, [job], delay_ms=_recheck_seconds() * 1000)


async def _recheck_later(purchase_id: int, message: str, rc: str | None) -> None:
    res = resources.current()
    job = purchases.execute_job(purchase_id)
    async with res.unit_of_work() as conn:
        await purchases.note_provider_answer(conn, purchase_id, message, rc)
        await outbox.reschedule(conn, job.job_key, _recheck_seconds() + res.settings.outbox_lease_seconds)
    await push(res.redis, [job], delay_ms=_recheck_seconds() * 1000)


def _recheck_seconds() -> int:
    return resources.current().settings.ppob_recheck_seconds


@actor(actor_name=purchases.EXECUTE_ACTOR, queue_name=purchases.PURCHASE_QUEUE)
async def execute_purchase(purchase_id: int) -> None:
    await execute(purchase_id)
