"""Telling a waiting POST /api/v1/transactions that its QR string is ready.

The worker pushes the string onto a short-lived per-transaction list; the request blocks on it
(BLPOP) for at most QRIS_CREATE_WAIT_MS. Losing this signal costs nothing: the kiosk polls.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _key(external_id: str) -> str:
    return f"loket:qr-ready:{external_id}"


async def announce(redis: Redis, ready: list[tuple[str, str]]) -> None:
    """ready: (external id, QR string) of each transaction whose QR was just attached; one round trip for all."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for external_id, qr_string in ready:
                pipe.rpush(_key(external_id), qr_string)
                pipe.expire(_key(external_id), 60)
            await pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("qr-ready signal not sent: %s", type(error).__name__)


async def wait(redis: Redis, external_id: str, timeout_ms: int) -> str | None:
    if timeout_ms <= 0:
        return None
    try:
        found = await redis.blpop([_key(external_id)], timeout=timeout_ms / 1000)
    except (RedisError, OSError):
        return None
    if not found:
        return None
    value = found[1]
    return value.decode() if isinstance(value, bytes) else str(value)
