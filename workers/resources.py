"""Per-process clients for async actors: the database engine, Redis, the provider and gateway clients.

They are made on first use inside the worker's event loop thread (where every async actor runs)
and closed before the loop stops.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import asyncmy
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import metrics
from core.group_call import GroupCall
from core.logs import describe_failure
from core.outbound import callback_connector
from core.settings import Settings, get_settings
from db import outbox, raw
from db.engine import close_pool, create_engine, create_pool, engine_size_beside
from db.outbox import Job
from provider.digiflazz import IDLE_CONNECTION_SECONDS, DigiflazzClient
from provider.payment_links import MidtransClient, PaystackClient
from provider.xendit import XenditClient
from workers.in_flight import InFlight
from workers.pusher import Pusher
from workers.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Answer = TypeVar("Answer")

GROUP_LIMIT = 128
"""The most items one group call takes (core.group_call): bounds a transaction's locks and length."""


def worker_pool_size(configured: int, concurrency: int) -> int:
    """Connections a worker process keeps open, with no overflow: DB_POOL_SIZE, or one per task
    that can be in a transaction at once (threads plus work in flight) if there are fewer. When
    all are taken a transaction waits for one. No overflow, because every burst past the pool would
    open and close connections (a few percent of a worker's CPU), and a few worker processes whose pools all grew could exhaust MariaDB's max_connections (151 by default)."""
    return max(1, min(concurrency, configured))


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    """For units of work built with SQLAlchemy (unit_of_work)."""
    raw_pool: asyncmy.Pool
    """For the hot units of work, whose statements all go through db.raw (raw_unit_of_work)."""
    redis: Redis
    pusher: Pusher
    """Pushes the jobs of committed units of work (workers.pusher), on this loop's Redis client."""
    http: aiohttp.ClientSession
    callback_http: aiohttp.ClientSession
    """For reseller callbacks only: connects to public addresses only (core.outbound)."""
    provider: DigiflazzClient
    gateway: XenditClient
    midtrans: MidtransClient
    paystack: PaystackClient
    _group_calls: dict[str, GroupCall[Any, Any]] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> Resources:
        # aiohttp rather than httpx for the gateways and callbacks: measured, httpx took about half of a
        # worker's CPU per purchase when it made the provider calls too (provider.digiflazz has its own client).
        # Idle connections are dropped as the provider client drops its own (IDLE_CONNECTION_SECONDS
        # says why). One connection per call in flight, so a call never queues for one behind its own timeout.
        per_host = max(100, settings.worker_in_flight)
        idle = IDLE_CONNECTION_SECONDS
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * per_host, limit_per_host=per_host, keepalive_timeout=idle))
        callback_http = aiohttp.ClientSession(
            connector=callback_connector(
                allow_private_networks=settings.callback_allow_private_networks, limit=max(200, settings.worker_in_flight), keepalive_timeout=idle
            )
        )
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        pool_size = worker_pool_size(settings.db_pool_size, settings.worker_threads + settings.worker_in_flight)
        # The hot paths (start, settle, attach, apply, retries, the heartbeat) take the raw pool;
        # the engine, half its size, serves the rest (photo e-mails, callback deliveries).
        raw_pool = create_pool(settings, pool_size)
        engine = create_engine(settings, pool_size=engine_size_beside(pool_size), max_overflow=0)
        return cls(
            settings=settings,
            engine=engine,
            raw_pool=raw_pool,
            redis=redis,
            pusher=Pusher(redis),
            http=http,
            callback_http=callback_http,
            provider=DigiflazzClient(
                settings.ppob_base_url,
                settings.ppob_username,
                settings.ppob_api_key.get_secret_value(),
                settings.ppob_timeout_seconds,
                connections=per_host,
            ),
            gateway=XenditClient(
                http,
                settings.xendit_base_url,
                settings.xendit_secret_key.get_secret_value(),
                settings.xendit_api_version,
                settings.xendit_timeout_seconds,
            ),
            midtrans=MidtransClient(http, settings.midtrans_base_url, settings.midtrans_server_key.get_secret_value(), settings.xendit_timeout_seconds),
            paystack=PaystackClient(http, settings.paystack_base_url, settings.paystack_secret_key.get_secret_value(), settings.xendit_timeout_seconds),
        )

    def unit_of_work(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction whose outbox jobs are pushed after it commits (workers.unit_of_work)."""
        return unit_of_work(self.engine.begin(), self.pusher)

    def raw_unit_of_work(self) -> AbstractAsyncContextManager[raw.Transaction]:
        """The same on db.raw.transaction(), cheaper: for units whose statements all go through db.raw."""
        return unit_of_work(raw.transaction(self.raw_pool), self.pusher)

    def group_call(self, name: str, run: Callable[[list[Item]], Awaitable[list[Answer]]]) -> GroupCall[Item, Answer]:
        """This process's group call of that name (core.group_call), made on first use with run:
        the items of callers that come while a run is on its way go together in the next one."""
        group_call = self._group_calls.get(name)
        if group_call is None:
            group_call = self._group_calls[name] = GroupCall(run, GROUP_LIMIT, name=name)
        return group_call

    async def retry_later(self, job: Job, delay_ms: int, failure: BaseException) -> None:
        """Log why work failed and push its job again in delay_ms: the retry of work that ran after
        its message was acknowledged (workers.in_flight), out of sight of Dramatiq's Retries. The
        outbox row is kept due after the retry, so the relay does not push it sooner; with the
        database out the row stays as it was and the relay pushes the job when it falls due (jobs
        are idempotent).

        job: the retry, carrying its attempt number; failure: what went wrong.
        """
        log.warning("%s failed (%s); retry in %.1f s", job.job_key, describe_failure(failure), delay_ms / 1000)
        metrics.job_retries.labels(job.actor_name).inc()
        try:
            async with self.raw_unit_of_work() as conn:
                await outbox.reschedule(conn, job.job_key, math.ceil(delay_ms / 1000) + self.settings.outbox_lease_seconds)
        except Exception as error:
            log.warning(
                "%s: retry not recorded (%s); the relay pushes it when its row falls due", job.job_key, describe_failure(error)
            )
        await self.pusher.push_after_commit([job], delay_ms=delay_ms)

    async def close(self) -> None:
        await self.provider.close()
        await self.http.close()
        await self.callback_http.close()
        await self.redis.aclose()
        await self.engine.dispose()
        await close_pool(self.raw_pool)


_resources: Resources | None = None


def current() -> Resources:
    """The process's resources; call only from code running on the worker's event loop."""
    global _resources
    if _resources is None:
        _resources = Resources.create(get_settings())
    return _resources


_in_flight: InFlight | None = None
_in_flight_lock = threading.Lock()


def in_flight() -> InFlight:
    """The process's work in flight (workers.in_flight): provider, gateway and reseller callback
    calls with their follow-up, and webhook applies, running after their message was
    acknowledged. Callable from any thread: the worker threads hand work over to it."""
    global _in_flight
    with _in_flight_lock:
        if _in_flight is None:
            settings = get_settings()
            # Beats every third of a lease: a row never comes nearer than a sixth of one to falling due.
            _in_flight = InFlight(settings.worker_in_flight, keep_due=_keep_due, keep_every=settings.outbox_lease_seconds / 3)
        return _in_flight


async def _keep_due(job_keys: list[str]) -> None:
    res = current()
    async with raw.transaction(res.raw_pool) as conn:
        await outbox.keep_due(conn, job_keys, res.settings.outbox_lease_seconds)


def release() -> Resources | None:
    """Hand over the process's resources for closing; the next current() makes new ones."""
    global _resources
    released, _resources = _resources, None
    return released
