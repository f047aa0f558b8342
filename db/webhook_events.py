"""Queries on the webhook inbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import webhook_event


@dataclass(frozen=True)
class WebhookEvent:
    id: int
    source: str
    reference: str | None
    payload: dict[str, Any]
    outcome: str


async def by_id(conn: AsyncConnection, event_id: int, *, for_update: bool = False) -> WebhookEvent | None:
    query = select(
        webhook_event.c.id, webhook_event.c.source, webhook_event.c.reference, webhook_event.c.payload, webhook_event.c.outcome
    ).where(webhook_event.c.id == event_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return WebhookEvent(id=row.id, source=row.source, reference=row.reference, payload=payload, outcome=row.outcome)


async def mark_handled(conn: AsyncConnection, event_id: int, outcome: str, note: str | None) -> None:
    await conn.execute(
        text("UPDATE webhook_event SET outcome = :outcome, note = :note, handled_at = NOW(6) WHERE id = :id"),
        {"id": event_id, "outcome": outcome, "note": (note or "")[:255] or None},
    )


async def page(conn: AsyncConnection, outcome: str | None, source: str | None, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Events for operators, newest first (e.g. outcome=unmatched: the reconciliation queue)."""
    filters = []
    if outcome:
        filters.append(webhook_event.c.outcome == outcome)
    if source:
        filters.append(webhook_event.c.source == source)
    total = (await conn.execute(select(func.count()).select_from(webhook_event).where(*filters))).scalar_one()
    rows = await conn.execute(
        select(
            webhook_event.c.id, webhook_event.c.source, webhook_event.c.reference, webhook_event.c.outcome,
            webhook_event.c.note, webhook_event.c.payload, webhook_event.c.received_at, webhook_event.c.handled_at,
        ).where(*filters).order_by(webhook_event.c.id.desc()).offset(skip).limit(limit)
    )  # fmt: skip
    found = []
    for r in rows:
        item = dict(r._mapping)
        item["payload"] = item["payload"] if isinstance(item["payload"], dict) else json.loads(item["payload"])
        found.append(item)
    return found, int(total)
