"""The inbox of external events: stored once before the 2xx, applied once by a worker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from db import outbox, raw
from db import webhook_events as event_queries
from db.outbox import Job
from db.raw import sql

APPLY_ACTOR = "apply_webhook_event"
APPLY_ALL_ACTOR = "apply_webhook_events"
WEBHOOK_QUEUE = "webhooks"


APPLY_JOB_PREFIX = "webhook_event:"

_RECEIVE = sql("CALL receive_webhook_events(:events, :job_key_prefix, :queue_name, :actor_name, :lease, :message_id)")


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A verified external event, as the inbox stores it.

    event_key: unique per source, so a second delivery of the same event is recognised.
    reference: the purchase or transaction it names, as the source names it (None without one).
    """

    source: str
    event_key: str
    reference: str | None
    payload: dict[str, Any]


def apply_job(event_id: int, attempt: int = 0) -> Job:
    """The job that applies a stored event.

    attempt: how many tries of it failed before (a retry backs off longer with each); the job's
    key and outbox row are the same for every attempt.
    """
    args = [event_id, attempt] if attempt else [event_id]
    return Job(job_key=f"{APPLY_JOB_PREFIX}{event_id}", queue_name=WEBHOOK_QUEUE, actor_name=APPLY_ACTOR, args=args)


async def receive_all(
    conn: raw.Connection, events: list[IncomingEvent], *, lease_seconds: int, message_id: str | None = None
) -> list[Job | None]:
    """Store verified events and their apply jobs, and commit: for each event in order, its apply
    job, for the caller to push now that it is committed; None when the same event was stored
    before. One round trip for all: procedures.sql's receive_webhook_events, which opens and
    commits its own transaction; an error stores none of them.

    conn: an autocommit connection (db.raw.autocommitting), as for domain.purchases.accept_all.
    message_id: as for domain.purchases.accept_all, for the apply jobs."""
    params = {
        "events": json.dumps([
            {"source": e.source, "event_key": e.event_key, "reference": e.reference, "payload": e.payload} for e in events
        ]),
        "job_key_prefix": APPLY_JOB_PREFIX,
        "queue_name": WEBHOOK_QUEUE,
        "actor_name": APPLY_ACTOR,
        "lease": lease_seconds,
        "message_id": message_id,
    }  # fmt: skip
    event_ids = json.loads((await raw.run(conn, _RECEIVE, params)).scalar())
    return [apply_job(event_id) if event_id is not None else None for event_id in event_ids]


async def finish(conn: raw.Connection, closed: dict[int, tuple[str, str | None] | None]) -> None:
    """Close events, in one round trip per table, and their apply jobs.

    closed: for each event id, its outcome (applied, ignored: nothing to change, or unmatched:
    kept for reconciliation) and note; or None for a duplicate delivery of an event handled
    before, whose job only goes.
    """
    handled = [(event_id, outcome[0], outcome[1]) for event_id, outcome in closed.items() if outcome is not None]
    if handled:
        await event_queries.mark_handled(conn, handled)
    await outbox.complete_all(conn, [apply_job(event_id).job_key for event_id in closed])
