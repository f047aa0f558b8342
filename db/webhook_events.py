"""Queries on the webhook inbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql
from db.tables import webhook_event


@dataclass(frozen=True)
class WebhookEvent:
    id: int
    source: str
    reference: str | None
    payload: dict[str, Any]
    outcome: str


_SELECT = "SELECT id, source, reference, payload, outcome FROM webhook_event WHERE id = :id"
_BY_ID = sql(_SELECT)
_BY_ID_LOCKED = sql(_SELECT + " FOR UPDATE")
_MARK_HANDLED = sql("UPDATE webhook_event SET outcome = :outcome, note = :note, handled_at = NOW(6) WHERE id = :id")


async def by_id(conn: raw.Connection, event_id: int, *, for_update: bool = False) -> WebhookEvent | None:
    found = await raw.run(conn, _BY_ID_LOCKED if for_update else _BY_ID, {"id": event_id})
    if not found.rows:
        return None
    id_, source, reference, payload, outcome = found.rows[0]
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    return WebhookEvent(id=id_, source=source, reference=reference, payload=payload, outcome=outcome)


async def mark_handled(conn: raw.Connection, event_id: int, outcome: str, note: str | None) -> None:
    await raw.run(conn, _MARK_HANDLED, {"id": event_id, "outcome": outcome, "note": (note or "")[:255] or None})


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
