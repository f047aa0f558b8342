"""The clock process: the outbox relay, the QRIS expiry sweeper, the photo purge and the queue exporter.

`python -m workers.clock`. Safe to run more than one: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logs import setup_logging
from core.settings import Settings, get_settings
from db.engine import create_engine
from workers import sweepers
from workers.exporter import Exporter
from workers.relay import relay_once

log = logging.getLogger("loket.clock")


EXPORT_EVERY_SECONDS = 5.0
READY_LINE = "clock ready"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings, pool_size=2)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    exporter = Exporter()
    if settings.clock_metrics_port:
        start_http_server(settings.clock_metrics_port, settings.metrics_host, registry=exporter.registry)
    # Whatever the log level: a starter waits for this line (ops.stack), which comes only once the
    # metrics port is bound, so a port taken by another process ends the clock instead.
    print(READY_LINE, flush=True)
    next_sweep = next_purge = 0.0
    loop = asyncio.get_running_loop()
    # Its own task: its first refresh reads the tables' history once (workers.status_tally), and
    # the relay does not wait for that.
    exporting = asyncio.create_task(_export(exporter, engine, redis, stop))
    try:
        while not stop.is_set():
            pushed = 0
            try:
                pushed = await relay_once(engine, redis, settings.outbox_lease_seconds)
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + settings.qris_sweep_interval_seconds
                    await sweepers.expire_overdue_transactions(engine)
                if loop.time() >= next_purge:
                    next_purge = loop.time() + settings.photo_purge_interval_seconds
                    await sweepers.purge_photos(engine)
            except (RedisError, OSError, DBAPIError) as error:
                # An outage of either store: the rows stay due and the next round tries again.
                log.warning("clock round failed: %s", type(error).__name__)
            if pushed == 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=settings.outbox_relay_interval)
                except TimeoutError:
                    pass
    finally:
        exporting.cancel()
        await asyncio.gather(exporting, return_exceptions=True)
        await redis.aclose()
        await engine.dispose()


async def _export(exporter: Exporter, engine: AsyncEngine, redis: Redis, stop: asyncio.Event) -> None:
    """Refreshes the exporter's gauges every EXPORT_EVERY_SECONDS until stop is set."""
    while not stop.is_set():
        try:
            await exporter.refresh(engine, redis)
        except (RedisError, OSError, DBAPIError) as error:  # the gauges keep their last values; the alert on the refresh time fires
            log.warning("exporter refresh failed: %s", type(error).__name__)
        except Exception:  # in a task of its own, an error would end it unseen: logged, and the next refresh tries again
            log.exception("exporter refresh failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=EXPORT_EVERY_SECONDS)
        except TimeoutError:
            pass


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    stop = asyncio.Event()

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("clock started")
        await run(settings, stop)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
