"""E-mailing a session's photo gallery."""

from __future__ import annotations

import logging

from core import context
from core.logs import describe_failure
from db import outbox
from db import photos as photo_queries
from db import qris as qris_queries
from domain import photos
from provider import mailer
from workers import resources
from workers.actor import actor
from workers.in_flight import TIME_LIMIT_SECONDS

log = logging.getLogger(__name__)


async def send(tr_id: int) -> None:
    """Send the gallery e-mail once; an SMTP failure propagates so Dramatiq retries with backoff."""
    context.subject.set(f"qris:{tr_id}")
    res = resources.current()
    async with res.unit_of_work() as conn:
        delivery = await photo_queries.of_transaction(conn, tr_id)
        transaction = await qris_queries.by_id(conn, tr_id)
        if delivery is None or transaction is None or delivery["pd_email_sent_at"] is not None:
            await outbox.complete(conn, photos.send_job(tr_id).job_key)  # nothing (more) to send
            return
        # No copy of the job runs past Dramatiq's time limit, so a claim that long outlives any send.
        if not await photos.claim_sending(conn, tr_id, int(TIME_LIMIT_SECONDS)):
            log.info("photo e-mail for transaction %s is being sent by another copy of its job", tr_id)
            return  # its outbox row stays: the copy that sends completes it, or it comes back
    message = mailer.photo_email(res.settings, delivery["pd_email"], transaction["tr_external_id"], delivery["pd_photo_count"])
    try:
        await mailer.send(res.settings, message)
    except Exception:
        await _release(res, tr_id)
        raise
    async with res.unit_of_work() as conn:
        await photos.mark_sent(conn, tr_id, res.settings.photo_retention_days)
    log.info("photo e-mail sent for transaction %s", tr_id)


async def _release(res: resources.Resources, tr_id: int) -> None:
    """Lets the retry take the e-mail at once; if this fails too, the claim runs out instead."""
    try:
        async with res.unit_of_work() as conn:
            await photos.release_sending(conn, tr_id)
    except Exception as error:
        log.warning("could not release the photo e-mail of transaction %s: %s", tr_id, describe_failure(error))


@actor(actor_name=photos.SEND_ACTOR, queue_name=photos.PHOTO_QUEUE)
async def send_photo_email(tr_id: int) -> None:
    await send(tr_id)
