"""What Dramatiq's own metrics do not show, served by the clock process (CLOCK_METRICS_PORT).

Per queue: waiting messages, delayed messages, dead letters, age of the oldest waiting message.
From MySQL: the outbox backlog, purchases and QRIS transactions by status, the rupiah of
purchases not yet final, webhook events by source and outcome. The counts by status read the new
and the open rows, not the whole history (workers.status_tally).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import callbacks, photos, purchases, qris, webhook_events
from workers.enqueue import NAMESPACE, oldest_waiting_timestamp
from workers.status_tally import StatusTally

QUEUES = (purchases.PURCHASE_QUEUE, qris.QRIS_QUEUE, photos.PHOTO_QUEUE, webhook_events.WEBHOOK_QUEUE, callbacks.CALLBACK_QUEUE)
PURCHASE_STATUSES = ("pending", "proses", "sukses", "gagal")
QRIS_STATUSES = ("PENDING", "COMPLETED", "FAILED", "EXPIRED")


class Exporter:
    """Gauges in their own registry, refreshed by the clock loop; the HTTP server reads them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.waiting = Gauge("loket_queue_messages", "Messages waiting in a queue.", ["queue"], registry=r)
        self.delayed = Gauge("loket_queue_delayed_messages", "Delayed messages (timers, retries) of a queue.", ["queue"], registry=r)
        self.dead = Gauge("loket_queue_dead_letters", "Dead-lettered messages of a queue.", ["queue"], registry=r)
        self.oldest = Gauge("loket_queue_oldest_message_age_seconds", "Age of the oldest waiting message (0 when empty).", ["queue"], registry=r)
        self.outbox = Gauge("loket_outbox_jobs", "Outbox rows: jobs not yet done.", registry=r)
        self.outbox_overdue = Gauge("loket_outbox_overdue_jobs", "Outbox rows past their lease (the relay re-pushes them).", registry=r)
        self.outbox_attempts = Gauge("loket_outbox_max_attempts", "The most re-pushes of any outbox row.", registry=r)
        self.purchases = Gauge("loket_purchases", "Purchases by status.", ["status"], registry=r)
        self.oldest_proses = Gauge(
            "loket_purchase_oldest_proses_age_seconds", "Age of the oldest purchase the provider has not decided (0 when none).", registry=r
        )
        self.in_flight = Gauge("loket_purchases_in_flight_rupiah", "Rupiah debited for purchases not yet final.", registry=r)
        self.qris = Gauge("loket_qris_transactions", "Kiosk QRIS transactions by status.", ["status"], registry=r)
        self.events = Gauge("loket_webhook_events", "Stored webhook events by source and outcome.", ["source", "outcome"], registry=r)
        self.refreshed = Gauge("loket_exporter_refreshed_timestamp_seconds", "When these gauges were last refreshed.", registry=r)
        self.purchase_tally = StatusTally("purchase", "id", "status", "status IN ('pending', 'proses')")
        self.qris_tally = StatusTally("qris_transaction", "tr_id", "tr_status", "tr_status = 'PENDING'")
        self.event_tally = StatusTally("webhook_event", "id", "source, outcome", "outcome = 'received'")
        self._event_labels: set[tuple[str, ...]] = set()

    async def refresh(self, engine: AsyncEngine, redis: Redis) -> None:
        await self._queues(redis)
        await self._tables(engine)
        self.refreshed.set(time.time())

    async def _queues(self, redis: Redis) -> None:
        now = time.time()
        for queue in QUEUES:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.llen(f"{NAMESPACE}:{queue}")
                pipe.hlen(f"{NAMESPACE}:{queue}.DQ.msgs")
                pipe.zcard(f"{NAMESPACE}:{queue}.XQ")
                waiting, delayed, dead = await pipe.execute()
            oldest = await oldest_waiting_timestamp(redis, queue)
            self.waiting.labels(queue).set(waiting)
            self.delayed.labels(queue).set(delayed)
            self.dead.labels(queue).set(dead)
            self.oldest.labels(queue).set(max(0.0, now - oldest) if oldest else 0)

    async def _tables(self, engine: AsyncEngine) -> None:
        # REPEATABLE READ, not the engine's READ COMMITTED: a tally reads its table in several
        # statements, which must see one snapshot (workers.status_tally).
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                jobs, overdue, attempts = (
                    await conn.execute(text("SELECT COUNT(*), COALESCE(SUM(due_at <= NOW(6)), 0), COALESCE(MAX(attempts), 0) FROM outbox"))
                ).one()
                by_purchase_status = await self.purchase_tally.count(conn)
                in_flight: int = (await conn.execute(text("SELECT COALESCE(SUM(harga), 0) FROM purchase WHERE status IN ('pending', 'proses')"))).scalar_one()
                # ids grow with time, so the first proses row of ix_purchase_status is the oldest: one index read
                oldest_proses = (await conn.execute(text(
                    "SELECT TIMESTAMPDIFF(MICROSECOND, waktu, NOW(6)) / 1e6 FROM purchase WHERE status = 'proses' ORDER BY id LIMIT 1"
                ))).scalar()  # fmt: skip
                by_qris_status = await self.qris_tally.count(conn)
                events = await self.event_tally.count(conn)
        self.outbox.set(jobs)
        self.outbox_overdue.set(overdue)
        self.outbox_attempts.set(attempts)
        for status in PURCHASE_STATUSES:
            self.purchases.labels(status).set(by_purchase_status[(status,)])
        self.in_flight.set(in_flight)
        self.oldest_proses.set(max(0.0, float(oldest_proses or 0)))
        for status in QRIS_STATUSES:
            self.qris.labels(status).set(by_qris_status[(status,)])
        # A pair that had rows and has none now (the last received event handled) reads 0, not its last count.
        self._event_labels.update(events)
        for source, outcome in self._event_labels:
            self.events.labels(source, outcome).set(events[(source, outcome)])
