"""Reseller callbacks: when a purchase ends, its status object is POSTed to the reseller's URL.

Signed, retried with growing delays for about a day until a 2xx, every attempt recorded.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import outbox
from db.outbox import Job

CALLBACK_QUEUE = "callbacks"
DELIVER_ACTOR = "deliver_callback"
DELIVER_JOB_PREFIX = "callback:"
# Seconds to wait after attempt n (1-based) failed: about 28 hours in all, then the delivery fails.
RETRY_DELAYS = (10, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)


def deliver_job(delivery_id: int, attempt: int = 0) -> Job:
    """The job that sends a reseller callback.

    attempt: how many runs of it failed with an error of Loket's own (the database, Redis) before;
    an endpoint's answer or silence is a delivery attempt instead (record_attempt). The job's key
    and outbox row are the same for every run.
    """
    args = [delivery_id, attempt] if attempt else [delivery_id]
    return Job(job_key=f"{DELIVER_JOB_PREFIX}{delivery_id}", queue_name=CALLBACK_QUEUE, actor_name=DELIVER_ACTOR, args=args)


_SET_PAYLOAD = text("UPDATE callback_delivery SET payload = :payload WHERE id = :id AND payload IS NULL")
_ATTEMPT = text(
    "INSERT INTO callback_attempt (delivery_id, attempt, status_code, error, duration_ms) VALUES (:id, :attempt, :status, :error, :ms)"
)
_OUTCOME = text(
    "UPDATE callback_delivery SET attempts = :attempt, last_status = :status, last_error = :error, status = :outcome, "
    "next_attempt_at = IF(:outcome = 'pending', NOW(6) + INTERVAL :delay SECOND, NULL), "
    "delivered_at = IF(:outcome = 'delivered', NOW(6), NULL) WHERE id = :id AND status = 'pending'"
)


def new_delivery_key() -> str:
    """X-Loket-Delivery: the same on every attempt of one delivery. A delivery is scheduled when
    its purchase ends, by procedures.sql's settle_purchases (domain.purchases.settle_all)."""
    return uuid.uuid4().hex


async def fix_payload(conn: AsyncConnection, delivery_id: int, payload: dict[str, Any]) -> None:
    await conn.execute(_SET_PAYLOAD, {"id": delivery_id, "payload": json.dumps(payload)})


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: int,
    attempt: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    scale: float = 1.0,
) -> tuple[str, float]:
    """Record one attempt and decide what follows: ('delivered'|'pending'|'failed', seconds until the next).

    scale: multiplies RETRY_DELAYS (tests shrink a day to seconds).
    """
    delivered = status_code is not None and 200 <= status_code < 300
    if delivered:
        outcome, delay = "delivered", 0.0
    elif attempt <= len(RETRY_DELAYS):
        outcome, delay = "pending", RETRY_DELAYS[attempt - 1] * scale
    else:
        outcome, delay = "failed", 0.0
    await conn.execute(_ATTEMPT, {"id": delivery_id, "attempt": attempt, "status": status_code, "error": (error or "")[:255] or None, "ms": duration_ms})
    await conn.execute(
        _OUTCOME, {"id": delivery_id, "attempt": attempt, "status": status_code, "error": (error or "")[:255] or None, "outcome": outcome, "delay": delay}
    )
    if outcome == "pending":
        await outbox.reschedule(conn, deliver_job(delivery_id).job_key, delay + lease_after(delay))
    else:
        await outbox.complete(conn, deliver_job(delivery_id).job_key)
    return outcome, delay


def lease_after(delay: float) -> float:
    """Slack before the relay re-pushes a delayed delivery whose timer was lost."""
    return max(30.0, delay * 0.1)
