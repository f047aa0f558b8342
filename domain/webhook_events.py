"""The inbox of external events: stored once before the 2xx, applied once by a worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from db import outbox
from db import webhook_events as event_queries
from db.outbox import Job

APPLY_ACTOR = "apply_webhook_event"
WEBHOOK_QUEUE = "webhooks"


def apply_job(event_id: int) -> Job:
    return Job(job_key=f"webhook_event:{event_id}", queue_name=WEBHOOK_QUEUE, actor_name=APPLY_ACTOR, args=[event_id])


async def receive(
    conn: AsyncConnection,
    *,
    source: str,
    event_key: str,
    reference: str | None,
    payload: dict[str, Any],
    lease_seconds: int,
) -> Job | None:
    """Store a verified event and its apply job; None when the same event was stored before."""
    event_id = await event_queries.insert(conn, source, event_key, reference, payload)
    if event_id is None:
        return None
    job = apply_job(event_id)
    await outbox.add(conn, job, lease_seconds)
    return job


async def finish(conn: AsyncConnection, event_id: int, outcome: str, note: str | None = None) -> None:
    """Close an event: applied, ignored (nothing to change) or unmatched (kept for reconciliation)."""
    await event_queries.mark_handled(conn, event_id, outcome, note)
    await outbox.complete(conn, apply_job(event_id).job_key)


async def finish_job_only(conn: AsyncConnection, event_id: int) -> None:
    """A duplicate delivery of an event already handled: only its job row goes."""
    await outbox.complete(conn, apply_job(event_id).job_key)
