"""The web process's group calls: the hot paths' database calls that come while one is on its
way go together in the next (core.group_call), one statement or procedure call, one round trip
and, where they write, one COMMIT for all, on a connection of the autocommit pool.

Measured (issue 4, py-spy of the web under load): the driver's statement, a connection's
checkout and the result's column definitions were a third of the web's CPU per request, once per
request; and MariaDB's commit once per request was most of its share. Each caller still gets its
own answer after its own COMMIT, and a read still starts after its request came, so it sees
every change committed before. A group that fails is run again call by call (GroupCall), so a
bad item fails only its own request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncmy

from core import context
from core.group_call import GroupCall
from db import purchases as purchase_queries
from db import raw
from db.outbox import Job
from db.purchases import OwnedQuery, Purchase
from db.resellers import Reseller
from domain import purchases, qris, webhook_events
from domain.webhook_events import IncomingEvent
from workers.pusher import Pusher

# A group is one JSON argument: webhook bodies are at most 64 KiB (web.requests), so 64 of them
# stay well under max_allowed_packet (16 MiB) even where JSON escaping triples them.
STATUS_READS_PER_GROUP = 128
ORDERS_PER_GROUP = 64
WEBHOOK_EVENTS_PER_GROUP = 64
QRIS_CREATES_PER_GROUP = 64

StatusReads = GroupCall[OwnedQuery, tuple[Reseller | None, Purchase | None]]
AcceptAnswer = tuple[purchases.Accepted | Exception, "asyncio.Future[bool] | None"]
WebhookIntake = GroupCall[IncomingEvent, Job | None]
QrisIntake = GroupCall[qris.Creation, qris.Created | Exception]

Item = TypeVar("Item")
Answer = TypeVar("Answer")


def status_reads(pool: asyncmy.Pool) -> StatusReads:
    """GET /status: the callers and their purchases in one statement (db.purchases.owned)."""
    return _on_autocommit(pool, purchase_queries.owned, STATUS_READS_PER_GROUP, "purchases.status")


class PurchaseIntake:
    """POST /beli: the orders accepted, or each one's refusal, in one transaction
    (domain.purchases.accept_all), and the accepted ones' execute jobs pushed in one message
    (domain.purchases.execute_all_job). An order run again after its group failed keeps its
    provider_ref, so one the group had committed is found, not bought twice.

    lease_seconds: how long the relay leaves an execute job to the push before it pushes it.
    pusher: where the group's message goes once committed; None pushes nothing (the benchmark's
    loop of the accept alone), leaving every job to the relay.
    """

    def __init__(self, pool: asyncmy.Pool, lease_seconds: int, pusher: Pusher | None) -> None:
        self._lease_seconds = lease_seconds
        self._pusher = pusher
        self._accepts = _on_autocommit(pool, self._accept_group, ORDERS_PER_GROUP, "purchases.accept")

    async def __call__(self, order: purchases.Order) -> purchases.Accepted | Exception:
        """The order accepted (committed, its job pushed or left to the relay), or its refusal."""
        answer, pushed = await self._accepts((order, context.request_id.get()))
        if pushed is not None:
            await pushed  # the group's push: its own task, so the next group's accept need not wait for it
        return answer

    async def _accept_group(self, conn: raw.Connection, items: list[tuple[purchases.Order, str | None]]) -> list[AcceptAnswer]:
        message_id = purchases.new_execute_all_message_id() if self._pusher is not None else None
        answers = await purchases.accept_all(conn, [order for order, _ in items], lease_seconds=self._lease_seconds, message_id=message_id)
        accepted = [(a.purchase_id, request_id) for a, (_, request_id) in zip(answers, items, strict=True) if isinstance(a, purchases.Accepted)]
        pushed: asyncio.Future[bool] | None = None
        if accepted and self._pusher is not None and message_id is not None:
            pushed = asyncio.ensure_future(self._pusher.push_after_commit([purchases.execute_all_job(message_id, accepted)]))
        return [(a, pushed if isinstance(a, purchases.Accepted) else None) for a in answers]


def purchase_intake(pool: asyncmy.Pool, lease_seconds: int, pusher: Pusher | None = None) -> PurchaseIntake:
    """PurchaseIntake (see there)."""
    return PurchaseIntake(pool, lease_seconds, pusher)


def webhook_intake(pool: asyncmy.Pool, lease_seconds: int) -> WebhookIntake:
    """The webhooks' intake: each event stored once with its apply job, in one transaction
    (domain.webhook_events.receive_all).

    lease_seconds: as for purchase_intake, for the apply jobs."""
    receive = functools.partial(webhook_events.receive_all, lease_seconds=lease_seconds)
    return _on_autocommit(pool, receive, WEBHOOK_EVENTS_PER_GROUP, "webhook_events.receive")


def qris_intake(pool: asyncmy.Pool, *, default_amount: int, ttl_seconds: int, lease_seconds: int) -> QrisIntake:
    """POST /api/v1/transactions: the kiosks' sessions created, or each one's refusal, in one
    transaction (domain.qris.create_all). A create run again after its group failed keeps its
    external id: if the group had committed after all (its answer lost with the connection), the
    id is found taken and the kiosk gets a second session, an unpaid one that expires, never a
    charge.

    default_amount: a session's amount without a price; ttl_seconds: how long its QR may be paid;
    lease_seconds: as for purchase_intake, for the create-QR jobs."""
    create = functools.partial(qris.create_all, default_amount=default_amount, ttl_seconds=ttl_seconds, lease_seconds=lease_seconds)
    return _on_autocommit(pool, create, QRIS_CREATES_PER_GROUP, "qris.create")


def _on_autocommit(
    pool: asyncmy.Pool, run: Callable[[raw.Connection, list[Item]], Awaitable[list[Answer]]], limit: int, name: str
) -> GroupCall[Item, Answer]:
    """A group call whose run(conn, items) is one call on a connection of the autocommit pool."""

    async def on_a_connection(items: list[Item]) -> list[Answer]:
        async with raw.autocommitting(pool) as conn:
            return await run(conn, items)

    return GroupCall(on_a_connection, limit, name=name)
