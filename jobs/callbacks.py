"""Delivering reseller callbacks: signed, timed out short, retried with growing delays."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import aiohttp

from core import context, metrics
from core.outbound import refused_callback_url, refused_connection
from core.security import PrivateKeyBox
from db import callbacks as callback_queries
from db import outbox
from db import purchases as purchase_queries
from domain import callbacks
from domain.purchases import status_object
from workers import resources
from workers.actor import hand_off_actor
from workers.broker import retry_backoff_ms

log = logging.getLogger(__name__)
# Short, so that a reseller's slow or dead endpoint holds a slot of work in flight for seconds, not minutes.
TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=3.0)


def signature(private_key: str, timestamp: str, body: bytes) -> str:
    """X-Loket-Signature: sha256=<hex HMAC-SHA256(private key, "{timestamp}.{body}")>."""
    return "sha256=" + hmac.new(private_key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def deliver(delivery_id: int, attempt: int = 0) -> None:
    """Send the callback once more; the endpoint's answer or silence is recorded as a delivery
    attempt and retried on its own schedule (domain.callbacks.record_attempt). An error of Loket's
    own (the database, Redis) schedules a retry of the job instead.

    attempt: how many runs of the job failed with such an error before this one.
    """
    context.subject.set(f"callback:{delivery_id}")
    try:
        await _deliver(delivery_id)
    except Exception as failure:
        await resources.current().retry_later(callbacks.deliver_job(delivery_id, attempt + 1), retry_backoff_ms(attempt), failure)


async def _deliver(delivery_id: int) -> None:
    res = resources.current()
    job = callbacks.deliver_job(delivery_id)
    async with res.unit_of_work() as conn:
        delivery = await callback_queries.for_delivery(conn, delivery_id)
        if delivery is None or delivery["status"] != "pending":
            await outbox.complete(conn, job.job_key)
            return
        payload = delivery["payload"]
        if payload is None:  # the first attempt fixes the body every retry will send
            purchase = await purchase_queries.by_id(conn, delivery["purchase_id"])
            assert purchase is not None
            payload = {"event": "transaksi.selesai", "data": status_object(purchase)}
            await callbacks.fix_payload(conn, delivery_id, payload)
        await outbox.reschedule(conn, job.job_key, res.settings.outbox_lease_seconds)

    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    private_key = PrivateKeyBox(res.settings.master_key.get_secret_value()).open(delivery["private_key_enc"])
    headers = {
        "content-type": "application/json",
        "user-agent": "Loket-Callback/1",
        "x-loket-delivery": delivery["delivery_id"],
        "x-loket-timestamp": timestamp,
        "x-loket-signature": signature(private_key, timestamp, body),
    }
    started = time.perf_counter()
    status_code, error = None, None
    # Checked again at each attempt: the URL may have been stored before the rule, or the rule
    # switched on since (core.outbound). A refusal is recorded like any failed attempt.
    refused = refused_callback_url(delivery["url"], allow_private_networks=res.settings.callback_allow_private_networks)
    if refused is not None:
        error = f"refused: {refused}"[:255]
    else:
        try:
            async with res.callback_http.post(delivery["url"], data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False) as response:
                status_code = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            error = outcome_of(failure)
            log.info("callback %s to %s: %s (%s: %s)", delivery_id, delivery["url"], error, type(failure).__name__, failure)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    duration_ms = int((time.perf_counter() - started) * 1000)

    async with res.unit_of_work() as conn:
        outcome, delay = await callbacks.record_attempt(
            conn,
            delivery_id,
            delivery["attempts"] + 1,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            scale=res.settings.callback_retry_scale,
        )
    metrics.callback_deliveries.labels(outcome).inc()
    if outcome == "pending":
        await res.pusher.push_after_commit([job], delay_ms=int(delay * 1000))
    log.info("callback %s attempt %d: %s (%s)", delivery_id, delivery["attempts"] + 1, outcome, status_code or error)


def outcome_of(failure: BaseException) -> str:
    """What a reseller is shown of a failed attempt: its kind, not the socket error, which
    would tell a caller probing Loket's network which internal addresses answer."""
    if refused_connection(failure):
        return "refused: not a public address"
    if isinstance(failure, TimeoutError):  # aiohttp's ServerTimeoutError and ConnectionTimeoutError too
        return "timeout"
    if isinstance(failure, (aiohttp.ClientConnectorError, aiohttp.ClientOSError, OSError)):
        return "connection failed"
    return "no valid HTTP answer"


def _deliver_job_key(delivery_id: int, attempt: int = 0) -> str:
    return callbacks.deliver_job(delivery_id).job_key


@hand_off_actor(actor_name=callbacks.DELIVER_ACTOR, queue_name=callbacks.CALLBACK_QUEUE, job_key=_deliver_job_key)
async def deliver_callback(delivery_id: int, attempt: int = 0) -> None:
    """Runs in this process's work in flight, after its message is acknowledged: a slow or dead
    endpoint does not hold a worker thread (workers.in_flight)."""
    await deliver(delivery_id, attempt)
