"""Settings from the environment, with defaults that work on a local machine.

Every process (web, worker, clock, tools) reads the same names; the environment always wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

DEV_MASTER_KEY = "bG9rZXQtZGV2LW9ubHktbWFzdGVyLWtleS0zMmJ5dGU="  # 32 bytes, for local use only


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    port: int
    jwt_secret: str
    master_key: str
    """Base64 of 32 bytes: the AES-256-GCM key that encrypts private keys at rest."""
    ppob_base_url: str
    ppob_username: str
    ppob_api_key: str
    ppob_webhook_secret: str
    ppob_timeout_seconds: float
    """How long one provider call may take before its outcome counts as unknown."""
    ppob_recheck_seconds: int
    """Delay between re-checks of a purchase the provider left Pending (Digiflazz asks >= 60 s)."""
    outbox_lease_seconds: int
    """How long a pushed job may take before the relay pushes it again."""
    outbox_relay_interval: float
    db_pool_size: int
    broker_heartbeat_timeout_ms: int
    broker_maintenance_chance: int
    worker_processes: int
    worker_threads: int
    log_level: str


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        database_url=_str("DATABASE_URL", "mysql+aiomysql://root@127.0.0.1:3306/loket"),
        redis_url=_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
        port=_int("PORT", 8000),
        jwt_secret=_str("JWT_SECRET", "dev-jwt-secret-change-me-in-production"),
        master_key=_str("LOKET_MASTER_KEY", DEV_MASTER_KEY),
        ppob_base_url=_str("PPOB_BASE_URL", "http://127.0.0.1:8100/v1"),
        ppob_username=_str("PPOB_USERNAME", "loket-dev"),
        ppob_api_key=_str("PPOB_API_KEY", "dev-loket-key"),
        ppob_webhook_secret=_str("PPOB_WEBHOOK_SECRET", "dev-webhook-secret"),
        ppob_timeout_seconds=_float("PPOB_TIMEOUT_SECONDS", 15.0),
        ppob_recheck_seconds=_int("PPOB_RECHECK_SECONDS", 60),
        outbox_lease_seconds=_int("OUTBOX_LEASE_SECONDS", 60),
        outbox_relay_interval=_float("OUTBOX_RELAY_INTERVAL", 1.0),
        db_pool_size=_int("DB_POOL_SIZE", 20),
        broker_heartbeat_timeout_ms=_int("BROKER_HEARTBEAT_TIMEOUT_MS", 30000),
        broker_maintenance_chance=_int("BROKER_MAINTENANCE_CHANCE", 10000),
        worker_processes=_int("WORKER_PROCESSES", 2),
        worker_threads=_int("WORKER_THREADS", 32),
        log_level=_str("LOG_LEVEL", "INFO"),
    )
