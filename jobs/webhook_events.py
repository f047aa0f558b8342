"""Applying stored webhook events, once each."""

from __future__ import annotations

import logging

import dramatiq

from db import purchases as purchase_queries
from db import webhook_events as event_queries
from domain import purchases, webhook_events
from provider.digiflazz import answer_from
from workers import resources

log = logging.getLogger(__name__)


async def apply(event_id: int) -> None:
    """Apply one event; the event row is locked so two copies of this job run one after the other."""
    res = resources.current()
    async with res.engine.begin() as conn:
        event = await event_queries.by_id(conn, event_id, for_update=True)
        if event is None or event.outcome != "received":
            await webhook_events.finish_job_only(conn, event_id)
            return
        if event.source != "digiflazz":
            await webhook_events.finish(conn, event_id, "ignored", f"no handler for source {event.source}")
            return
        answer = answer_from(event.payload["data"])
        purchase = await purchase_queries.by_provider_ref(conn, event.reference or "")
        if purchase is None:
            await webhook_events.finish(conn, event_id, "unmatched", "no purchase with this ref_id")
            return
        if purchase.is_final:
            await webhook_events.finish(conn, event_id, "ignored", f"purchase already {purchase.status}")
            return
        ended = await purchases.apply_provider_answer(conn, purchase, answer)
        outcome, note = ("applied", f"purchase {purchase.id} -> {answer.outcome.value}") if ended else (
            "ignored",
            f"provider says {answer.status} ({answer.rc}); purchase stays open",
        )
        await webhook_events.finish(conn, event_id, outcome, note)
    log.info("webhook event %s: %s", event_id, outcome)


@dramatiq.actor(actor_name=webhook_events.APPLY_ACTOR, queue_name=webhook_events.WEBHOOK_QUEUE)
async def apply_webhook_event(event_id: int) -> None:
    await apply(event_id)
