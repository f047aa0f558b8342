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


_LOCKED_BY_IDS = sql(
    "SELECT e.id, e.source, e.reference, e.payload, e.outcome "
    "FROM JSON_TABLE(:ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j "
    "STRAIGHT_JOIN webhook_event e FORCE INDEX (PRIMARY) ON e.id = j.id FOR UPDATE"
)
_MARK_HANDLED = sql(
    "UPDATE JSON_TABLE(:events, '$[*]' COLUMNS ("
    "id BIGINT UNSIGNED PATH '$.id', outcome VARCHAR(16) PATH '$.outcome', note VARCHAR(255) PATH '$.note')) j "
    "STRAIGHT_JOIN webhook_event e FORCE INDEX (PRIMARY) ON e.id = j.id "
    "SET e.outcome = j.outcome, e.note = j.note, e.handled_at = NOW(6)"
)


async def locked_by_ids(conn: raw.Connection, event_ids: list[int]) -> dict[int, WebhookEvent]:
    """The events there are of these ids, by id, locked (in id order) until the transaction ends."""
    found = await raw.run(conn, _LOCKED_BY_IDS, {"ids": json.dumps(sorted(set(event_ids)))})
    events = {}
    for id_, source, reference, payload, outcome in found.rows:
        payload = payload if isinstance(payload, dict) else json.loads(payload)
        events[id_] = WebhookEvent(id=id_, source=source, reference=reference, payload=payload, outcome=outcome)
    return events


async def mark_handled(conn: raw.Connection, outcomes: list[tuple[int, str, str | None]]) -> None:
    """outcomes: (event id, outcome, note) of each event handled, in one statement."""
    events = [{"id": event_id, "outcome": outcome, "note": (note or "")[:255] or None} for event_id, outcome, note in outcomes]
    await raw.run(conn, _MARK_HANDLED, {"events": json.dumps(events)})


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
