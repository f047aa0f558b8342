"""Queries on the webhook inbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from db.errors import is_duplicate_key
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import webhook_event


@dataclass(frozen=True)
class WebhookEvent:
    id: int
    source: str
    reference: str | None
    payload: dict[str, Any]
    outcome: str


_INSERT = text(
    "INSERT INTO webhook_event (source, event_key, reference, payload) VALUES (:source, :event_key, :reference, :payload)"
)


async def insert(conn: AsyncConnection, source: str, event_key: str, reference: str | None, payload: dict[str, Any]) -> int | None:
    """Store an event once per (source, event_key); returns its id, or None for a duplicate."""
    try:
        result = await conn.execute(
            _INSERT, {"source": source, "event_key": event_key, "reference": reference, "payload": json.dumps(payload)}
        )
    except IntegrityError as error:
        if is_duplicate_key(error):
            return None
        raise
    return int(result.lastrowid)


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
