"""The broker and its middleware, assembled explicitly in one place."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import compute_backoff
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.middleware.prometheus import Prometheus

from core.settings import Settings
from workers.group_ack import GroupAckRedisBroker
from workers.in_flight import TIME_LIMIT_SECONDS
from workers.middleware.heap import SettledHeap
from workers.middleware.log_context import LogContext
from workers.middleware.resources import ResourcesMiddleware

RETRY_MIN_BACKOFF_MS = 1_000
RETRY_MAX_BACKOFF_MS = 300_000
"""Transient failures (provider unreachable, database restarting) back off from 1 s to 5 min,
long enough to ride out an outage; the outbox relay covers anything beyond."""


def retry_backoff_ms(attempt: int) -> int:
    """The delay Dramatiq's Retries would give a message that failed attempt + 1 times (with
    jitter), for work that schedules its own retries (workers.in_flight)."""
    return compute_backoff(attempt, factor=RETRY_MIN_BACKOFF_MS, max_backoff=RETRY_MAX_BACKOFF_MS)[1]


def build_broker(settings: Settings) -> RedisBroker:
    """A Redis broker for `settings.redis_url`, acknowledging in groups (workers.group_ack).

    Retries: back off from RETRY_MIN_BACKOFF_MS to RETRY_MAX_BACKOFF_MS.
    Dramatiq's Callbacks, Pipelines and CurrentMessage are left out: no actor uses them, and each
    middleware's hooks run for every message (together about a tenth of a worker's CPU per
    purchase).
    heartbeat_timeout / maintenance_chance: how fast messages of a killed worker go back to
    their queue (Dramatiq's maintenance runs on that share of a million broker calls).
    """
    broker = GroupAckRedisBroker(
        url=settings.redis_url,
        namespace=settings.redis_namespace,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
        middleware=[
            AgeLimit(),
            TimeLimit(time_limit=int(TIME_LIMIT_SECONDS * 1000)),
            ShutdownNotifications(),
            Retries(max_retries=200, min_backoff=RETRY_MIN_BACKOFF_MS, max_backoff=RETRY_MAX_BACKOFF_MS),
            AsyncIO(),
            Prometheus(),
            LogContext(),
            ResourcesMiddleware(),
            SettledHeap(),
        ],
    )
    return broker


def setup_broker(settings: Settings) -> RedisBroker:
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
