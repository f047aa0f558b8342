"""The outbox: durable jobs written in the same transaction as the change that needs them.

A row lives until its job says the work is done (complete). The relay pushes rows that are due
again, so a crash between commit and push, a lost Redis, or a killed worker loses nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import raw
from db.raw import sql


@dataclass(frozen=True)
class Job:
    """A job to run by a Dramatiq actor.

    job_key: the subject of the job (purchase:42); one live job per key.
    queue_name / actor_name: where and what to run.
    args: the actor's positional arguments (JSON).
    message_id: the Redis message that carried the job when it went in one with others (the jobs
    a web group call committed together: web.intake); its own message's id is its job_key.
    """

    job_key: str
    queue_name: str
    actor_name: str
    args: list = field(default_factory=list)
    message_id: str | None = None


def new_message_id(actor_name: str) -> str:
    """A fresh Redis id for a group_message() of actor_name, to write into its jobs' rows before it
    is pushed (never a job key: those name a subject, purchase:42)."""
    return f"{actor_name}:{secrets.token_hex(12)}"


def group_message(message_id: str, actor_name: str, jobs: Sequence[tuple[Job, str | None]]) -> Job:
    """One message for jobs of one queue committed together, whose outbox rows name message_id:
    the actor_name actor (workers.actor.hand_off_each_actor) runs each job's arguments in the log
    context of its request. A Redis message per job would cost the workers about a quarter of their
    CPU per purchase in Dramatiq's fetch, middleware and acknowledgement.

    jobs: each job with the id of the request that made it. The message has no outbox row of its
    own: its job_key is its Redis id; a lost job is pushed again alone, as its own actor's.
    """
    return Job(job_key=message_id, queue_name=jobs[0][0].queue_name, actor_name=actor_name, args=[[[job.args, request_id] for job, request_id in jobs]])


@dataclass(frozen=True)
class DueJob:
    id: int
    job: Job
    attempts: int


_ADD = sql(
    "INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at, sent_at) "
    "VALUES (:job_key, :queue_name, :actor_name, :args, NOW(6) + INTERVAL :lease SECOND, NOW(6)) "
    "ON DUPLICATE KEY UPDATE due_at = LEAST(due_at, VALUES(due_at))"
)

_RESCHEDULE = sql(
    "UPDATE outbox SET due_at = NOW(6) + INTERVAL :seconds SECOND, sent_at = NOW(6) WHERE job_key = :job_key"
)

_COMPLETE = sql("DELETE FROM outbox WHERE job_key = :job_key")

_CLAIM_DUE = text(
    "SELECT id, job_key, queue_name, actor_name, args, attempts, message_id FROM outbox "
    "WHERE due_at <= NOW(6) ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)

_RELAYED = text(
    "UPDATE outbox SET attempts = attempts + 1, sent_at = NOW(6), "
    "due_at = NOW(6) + INTERVAL LEAST(:lease * POW(2, LEAST(attempts, 6)), 3600) SECOND "
    "WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))

_DEFERRED = text("UPDATE outbox SET due_at = NOW(6) + INTERVAL :lease SECOND WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


# The jobs added inside the current unit of work (workers.unit_of_work), pushed after its COMMIT.
added_jobs: ContextVar[list[Job] | None] = ContextVar("added_jobs", default=None)


def will_push(job: Job) -> None:
    """Inside a unit of work: push this job, whose row the transaction writes, after the COMMIT."""
    pending = added_jobs.get()
    if pending is not None:
        pending.append(job)


@contextmanager
def jobs_added() -> Iterator[list[Job]]:
    """Collect the jobs will_push() is given inside: for their caller to push after the COMMIT
    (a unit of work does; so does a group of units sharing one transaction, for each of its own)."""
    jobs: list[Job] = []
    token = added_jobs.set(jobs)
    try:
        yield jobs
    finally:
        added_jobs.reset(token)


async def add(conn: raw.Connection, job: Job, lease_seconds: int) -> None:
    """Record a job; it is due again (for the relay) lease_seconds from now.

    Inside a unit of work the job is also pushed to Redis right after the COMMIT.
    """
    will_push(job)
    await raw.run(
        conn,
        _ADD,
        {
            "job_key": job.job_key,
            "queue_name": job.queue_name,
            "actor_name": job.actor_name,
            "args": json.dumps(job.args),
            "lease": lease_seconds,
        },
    )


async def reschedule(conn: raw.Connection, job_key: str, seconds: float) -> None:
    """Keep the job alive: the relay will push it again after `seconds` if it is still here."""
    await raw.run(conn, _RESCHEDULE, {"job_key": job_key, "seconds": seconds})


_NEAR_DUE = sql(
    "SELECT o.id FROM JSON_TABLE(:keys, '$[*]' COLUMNS (job_key VARCHAR(255) COLLATE utf8mb4_unicode_ci PATH '$')) j "
    "STRAIGHT_JOIN outbox o FORCE INDEX (uq_outbox_job) ON o.job_key = j.job_key "
    "WHERE o.due_at < NOW(6) + INTERVAL :half SECOND FOR UPDATE SKIP LOCKED"
)
_PUT_OFF = sql(
    "UPDATE JSON_TABLE(:ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j "
    "STRAIGHT_JOIN outbox o FORCE INDEX (PRIMARY) ON o.id = j.id SET o.due_at = NOW(6) + INTERVAL :lease SECOND"
)


async def keep_due(conn: raw.Connection, job_keys: list[str], lease_seconds: int) -> None:
    """Jobs still being worked on: rows nearer than half a lease to falling due are put a lease
    away (only those, so the rows of short work are not rewritten). procedures.sql's
    start_purchases applies the same rule to its own rows. By key only, whatever the table's
    statistics say: on the due_at index the statement locked other jobs' rows.

    A row another transaction holds is skipped, never waited for: it is being started, settled
    or completed right now. Waiting for them, this heartbeat deadlocked with the groups that
    settle purchases (which take their rows in their resellers' order, not in key order).
    """
    near = await raw.run(conn, _NEAR_DUE, {"keys": json.dumps(sorted(job_keys)), "half": lease_seconds // 2})
    if near.rows:
        await raw.run(conn, _PUT_OFF, {"ids": json.dumps([row[0] for row in near.rows]), "lease": lease_seconds})


async def complete(conn: raw.Connection, job_key: str) -> None:
    await raw.run(conn, _COMPLETE, {"job_key": job_key})


_COMPLETE_ALL = sql(
    "DELETE o FROM JSON_TABLE(:keys, '$[*]' COLUMNS (job_key VARCHAR(255) COLLATE utf8mb4_unicode_ci PATH '$')) j "
    "STRAIGHT_JOIN outbox o FORCE INDEX (uq_outbox_job) ON o.job_key = j.job_key"
)


async def complete_all(conn: raw.Connection, job_keys: list[str]) -> None:
    """complete() for a group of jobs, in one statement."""
    await raw.run(conn, _COMPLETE_ALL, {"keys": json.dumps(sorted(job_keys))})


async def claim_due(conn: AsyncConnection, limit: int) -> list[DueJob]:
    """Lock up to `limit` due rows that no other relay holds."""
    rows = await conn.execute(_CLAIM_DUE, {"limit": limit})
    return [
        DueJob(id=r.id, job=Job(r.job_key, r.queue_name, r.actor_name, json.loads(r.args), r.message_id),
            attempts=r.attempts,
        )
        for r in rows
    ]


async def mark_pushed(conn: AsyncConnection, ids: list[int], lease_seconds: int) -> None:
    """The relay pushed these again: the next push waits twice as long, up to an hour."""
    if ids:
        await conn.execute(_RELAYED, {"ids": ids, "lease": lease_seconds})


async def defer(conn: AsyncConnection, ids: list[int], lease_seconds: int) -> None:
    """Their message is still waiting in its queue: look again after another lease."""
    if ids:
        await conn.execute(_DEFERRED, {"ids": ids, "lease": lease_seconds})
