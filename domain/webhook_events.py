"""The inbox of external events: stored once before the 2xx, applied once by a worker."""

from __future__ import annotations

import json
from typing import Any

from db import outbox, raw
from db import webhook_events as event_queries
from db.outbox import Job
from db.raw import sql

APPLY_ACTOR = "apply_webhook_event"
WEBHOOK_QUEUE = "webhooks"


APPLY_JOB_PREFIX = "webhook_event:"

_RECEIVE = sql(
    "CALL receive_webhook_event(:source, :event_key, :reference, :payload, :job_key_prefix, :queue_name, :actor_name, :lease)"
)


def apply_job(event_id: int) -> Job:
    return Job(job_key=f"{APPLY_JOB_PREFIX}{event_id}", queue_name=WEBHOOK_QUEUE, actor_name=APPLY_ACTOR, args=[event_id])


async def receive(
    conn: raw.Connection,
    *,
    source: str,
    event_key: str,
    reference: str | None,
    payload: dict[str, Any],
    lease_seconds: int,
) -> Job | None:
    """Store a verified event and its apply job, and commit; None when the same event was stored
    before. One round trip: procedures.sql's receive_webhook_event, which opens and commits its
    own transaction.

    conn: an autocommit connection (db.raw.autocommitting), as for domain.purchases.accept."""
    params = {
        "source": source,
        "event_key": event_key,
        "reference": reference,
        "payload": json.dumps(payload),
        "job_key_prefix": APPLY_JOB_PREFIX,
        "queue_name": WEBHOOK_QUEUE,
        "actor_name": APPLY_ACTOR,
        "lease": lease_seconds,
    }
    event_id = (await raw.run(conn, _RECEIVE, params)).scalar()
    if event_id is None:
        return None
    job = apply_job(int(event_id))
    outbox.will_push(job)
    return job


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
