"""The web process's group calls: the hot paths' database calls that come while one is on its
way go together in the next (core.group_call), one statement or procedure call, one round trip
and, where they write, one COMMIT for all, on a connection of the autocommit pool.

Why: the driver's statement, a connection's checkout and the result's column definitions cost a
third of the web's CPU per request when each request has its own, and a commit per request most
of MariaDB's share (py-spy, the benchmark). Each caller still gets its
own answer after its own COMMIT, and a read still starts after its request came, so it sees
every change committed before. A group that fails is run again call by call (GroupCall), so a
bad item fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncmy

from core import context
from core.group_call import GroupCall
from db import outbox, raw
from db import purchases as purchase_queries
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

Item = TypeVar("Item")
Answer = TypeVar("Answer")


def status_reads(pool: asyncmy.Pool) -> StatusReads:
    """GET /status: the callers and their purchases in one statement (db.purchases.owned)."""
    return _on_autocommit(pool, purchase_queries.owned, STATUS_READS_PER_GROUP, "purchases.status")


class PushingIntake(Generic[Item, Answer]):
    """A group call that writes (each item's row and job in one transaction for the group), then
    pushes the group's jobs to Redis in one message (db.outbox.group_message) whose id their
    outbox rows name. A caller gets its answer once the group's push is done, or has failed and
    left its jobs to the relay; the push runs in its own task, so the next group need not wait.

    run: the group's transaction, as run(conn, items, message_id). job_of: the job an answer
    commits, None for a refusal or a duplicate. group_actor: the actor that runs each job of the
    group's message (workers.actor.hand_off_each_actor). pusher: None pushes nothing
    (the benchmark's loop of the accept alone), leaving every job to the relay.
    """

    def __init__(
        self,
        pool: asyncmy.Pool,
        run: Callable[[raw.Connection, list[Item], str | None], Awaitable[list[Answer]]],
        *,
        limit: int,
        name: str,
        job_of: Callable[[Answer], Job | None],
        group_actor: str,
        pusher: Pusher | None,
    ) -> None:
        self._run = run
        self._job_of = job_of
        self._group_actor = group_actor
        self._pusher = pusher
        self._group: GroupCall[tuple[Item, str | None], tuple[Answer, asyncio.Future[bool] | None]] = _on_autocommit(
            pool, self._write_group, limit, name
        )

    async def __call__(self, item: Item) -> Answer:
        """The item's answer, its job (if any) committed and pushed or left to the relay."""
        answer, pushed = await self._group((item, context.request_id.get()))
        if pushed is not None:
            await asyncio.shield(pushed)  # the group's: a caller cancelled here must not cancel it for the others
        return answer

    async def _write_group(
        self, conn: raw.Connection, items: list[tuple[Item, str | None]]
    ) -> list[tuple[Answer, asyncio.Future[bool] | None]]:
        message_id = outbox.new_message_id(self._group_actor) if self._pusher is not None else None
        answers = await self._run(conn, [item for item, _ in items], message_id)
        jobs = [self._job_of(answer) for answer in answers]
        committed = [(job, request_id) for job, (_, request_id) in zip(jobs, items, strict=True) if job is not None]
        pushed: asyncio.Future[bool] | None = None
        if committed and self._pusher is not None and message_id is not None:
            message = outbox.group_message(message_id, self._group_actor, committed)
            pushed = asyncio.ensure_future(self._pusher.push_after_commit([message]))
        return [(answer, pushed if job is not None else None) for answer, job in zip(answers, jobs, strict=True)]


PurchaseIntake = PushingIntake[purchases.Order, purchases.Accepted | Exception]
WebhookIntake = PushingIntake[IncomingEvent, Job | None]
QrisIntake = PushingIntake[qris.Creation, qris.Created | Exception]


def purchase_intake(pool: asyncmy.Pool, lease_seconds: int, pusher: Pusher | None = None) -> PurchaseIntake:
    """POST /beli: the orders accepted, or each one's refusal, in one transaction
    (domain.purchases.accept_all), and the accepted ones' execute jobs pushed in one message. An
    order run again after its group failed keeps its provider_ref, so one the group had committed
    is found, not bought twice.

    lease_seconds: how long the relay leaves an execute job to the push before it pushes it."""

    def accept(conn: raw.Connection, orders: list[purchases.Order], message_id: str | None) -> Awaitable[list[purchases.Accepted | Exception]]:
        return purchases.accept_all(conn, orders, lease_seconds=lease_seconds, message_id=message_id)

    def job_of(answer: purchases.Accepted | Exception) -> Job | None:
        return purchases.execute_job(answer.purchase_id) if isinstance(answer, purchases.Accepted) else None

    return PushingIntake(
        pool, accept, limit=ORDERS_PER_GROUP, name="purchases.accept", job_of=job_of,
        group_actor=purchases.EXECUTE_ALL_ACTOR, pusher=pusher,
    )  # fmt: skip


def webhook_intake(pool: asyncmy.Pool, lease_seconds: int, pusher: Pusher | None = None) -> WebhookIntake:
    """The webhooks' intake: each event stored once with its apply job, in one transaction
    (domain.webhook_events.receive_all), and the new events' apply jobs pushed in one message.
    The answer is the event's apply job, None for a duplicate.

    lease_seconds: as for purchase_intake, for the apply jobs."""

    def receive(conn: raw.Connection, events: list[IncomingEvent], message_id: str | None) -> Awaitable[list[Job | None]]:
        return webhook_events.receive_all(conn, events, lease_seconds=lease_seconds, message_id=message_id)

    return PushingIntake(
        pool, receive, limit=WEBHOOK_EVENTS_PER_GROUP, name="webhook_events.receive", job_of=lambda job: job,
        group_actor=webhook_events.APPLY_ALL_ACTOR, pusher=pusher,
    )  # fmt: skip


def qris_intake(
    pool: asyncmy.Pool, *, default_amount: int, ttl_seconds: int, lease_seconds: int, pusher: Pusher | None = None
) -> QrisIntake:
    """POST /api/v1/transactions: the kiosks' sessions created, or each one's refusal, in one
    transaction (domain.qris.create_all), and the created ones' create-QR jobs pushed in one
    message. A create run again after its group failed keeps its external id: if the group had
    committed after all (its answer lost with the connection), the id is found taken and the kiosk
    gets a second session, an unpaid one that expires, never a charge.

    default_amount: a session's amount without a price; ttl_seconds: how long its QR may be paid;
    lease_seconds: as for purchase_intake, for the create-QR jobs."""

    def create(conn: raw.Connection, creations: list[qris.Creation], message_id: str | None) -> Awaitable[list[qris.Created | Exception]]:
        return qris.create_all(
            conn, creations, default_amount=default_amount, ttl_seconds=ttl_seconds, lease_seconds=lease_seconds, message_id=message_id
        )

    def job_of(answer: qris.Created | Exception) -> Job | None:
        return qris.create_qr_job(answer.tr_id) if isinstance(answer, qris.Created) else None

    return PushingIntake(
        pool, create, limit=QRIS_CREATES_PER_GROUP, name="qris.create", job_of=job_of,
        group_actor=qris.CREATE_QRS_ACTOR, pusher=pusher,
    )  # fmt: skip


def _on_autocommit(
    pool: asyncmy.Pool, run: Callable[[raw.Connection, list[Item]], Awaitable[list[Answer]]], limit: int, name: str
) -> GroupCall[Item, Answer]:
    """A group call whose run(conn, items) is one call on a connection of the autocommit pool."""

    async def on_a_connection(items: list[Item]) -> list[Answer]:
        async with raw.autocommitting(pool) as conn:
            return await run(conn, items)

    return GroupCall(on_a_connection, limit, name=name)
