"""A paid session's photos: requested once, e-mailed once, purged after the retention period."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import outbox
from db.errors import is_duplicate_key
from db.outbox import Job

PHOTO_QUEUE = "photos"
SEND_ACTOR = "send_photo_email"


class AlreadyRequested(Exception):
    pass


def send_job(tr_id: int) -> Job:
    return Job(job_key=f"photos:{tr_id}", queue_name=PHOTO_QUEUE, actor_name=SEND_ACTOR, args=[tr_id])


_INSERT = text(
    "INSERT INTO photo_delivery (pd_tr_id, pd_email, pd_photos, pd_photo_count) VALUES (:tr_id, :email, :photos, :count)"
)
_SENT = text(
    "UPDATE photo_delivery SET pd_email_sent_at = NOW(6), pd_expires_at = NOW(6) + INTERVAL :days DAY "
    "WHERE pd_tr_id = :tr_id AND pd_email_sent_at IS NULL"
)
_CLAIM = text(
    "UPDATE photo_delivery SET pd_sending_until = NOW(6) + INTERVAL :seconds SECOND "
    "WHERE pd_tr_id = :tr_id AND pd_email_sent_at IS NULL AND (pd_sending_until IS NULL OR pd_sending_until <= NOW(6))"
)
_RELEASE = text("UPDATE photo_delivery SET pd_sending_until = NULL WHERE pd_tr_id = :tr_id AND pd_email_sent_at IS NULL")
_PURGE = text(
    "UPDATE photo_delivery SET pd_photos = JSON_ARRAY(), pd_purged_at = NOW(6) "
    "WHERE pd_purged_at IS NULL AND pd_expires_at <= NOW(6)"
)


async def request_delivery(conn: AsyncConnection, tr_id: int, email: str, photo_urls: list[str], lease_seconds: int) -> Job:
    """Record the gallery and its e-mail job; AlreadyRequested if this session has one."""
    try:
        await conn.execute(_INSERT, {"tr_id": tr_id, "email": email, "photos": json.dumps([{"url": u} for u in photo_urls]), "count": len(photo_urls)})
    except IntegrityError as error:
        if is_duplicate_key(error):
            raise AlreadyRequested() from error
        raise
    job = send_job(tr_id)
    await outbox.add(conn, job, lease_seconds)
    return job


async def claim_sending(conn: AsyncConnection, tr_id: int, seconds: int) -> bool:
    """Take the e-mail for this copy of its job for `seconds` (longer than a send can take);
    False when it was sent, or another copy has it now: the relay's push of a job whose Dramatiq
    retry is waiting, or a message redelivered after a worker was lost, may run beside the first.
    Only the copy that has it sends, so copies that run together send one e-mail."""
    return (await conn.execute(_CLAIM, {"tr_id": tr_id, "seconds": seconds})).rowcount == 1


async def release_sending(conn: AsyncConnection, tr_id: int) -> None:
    """The send failed: the next copy (the retry) may take the e-mail at once."""
    await conn.execute(_RELEASE, {"tr_id": tr_id})


async def mark_sent(conn: AsyncConnection, tr_id: int, retention_days: int) -> bool:
    """The e-mail went out: the retention period starts now."""
    sent = (await conn.execute(_SENT, {"tr_id": tr_id, "days": retention_days})).rowcount == 1
    await outbox.complete(conn, send_job(tr_id).job_key)
    return sent


async def purge_expired(conn: AsyncConnection) -> int:
    """Forget the photo links whose retention period is over; returns how many galleries."""
    return int((await conn.execute(_PURGE)).rowcount)
