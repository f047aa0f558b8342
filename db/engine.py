"""The async engine every process uses (SQLAlchemy Core over asyncmy), and the pool of the hot
paths (asyncmy's own, for db.raw)."""

from __future__ import annotations

import asyncmy
from asyncmy.constants import CLIENT
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.settings import Settings

DRIVER = "mysql+asyncmy"


# Every timestamp Loket writes or compares (NOW(6), DEFAULT CURRENT_TIMESTAMP) is UTC.
_UTC = "SET time_zone = '+00:00'"


def create_engine(settings: Settings, pool_size: int | None = None, max_overflow: int = 10) -> AsyncEngine:
    """Build the engine.

    pool_size: connections kept open; defaults to the DB_POOL_SIZE setting.
    max_overflow: connections opened beyond pool_size under load, closed when returned.
    """
    url = _checked_url(settings)
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_pre_ping=False,
        # Each statement sees what is committed; money rows are guarded by conditional UPDATEs,
        # not by snapshots, and no connection keeps a stale snapshot between uses.
        isolation_level="READ COMMITTED",
        # Every unit of work ends in COMMIT or ROLLBACK (engine.begin()), so the pool's own
        # ROLLBACK on return would be a wasted round trip per request.
        pool_reset_on_return=None,
        connect_args={"init_command": _UTC},
    )


def engine_size_beside(hot_pool_size: int) -> int:
    """The engine's pool size in a process whose hot paths take a pool of hot_pool_size (create_pool):
    half of it, at least 2, for its multi-statement transactions built with SQLAlchemy."""
    return max(2, hot_pool_size // 2)


def create_pool(settings: Settings, size: int, *, autocommit: bool = False, lock_wait_seconds: int | None = None) -> asyncmy.Pool:
    """The hot paths' connections (db.raw.transaction and db.raw.autocommitting): asyncmy's own
    pool. A checkout and return through it cost ~20-30 us of CPU here, through the engine's ~100-120 us
    (greenlet hand-offs and pool events; 16 tasks running SELECT 1 in a loop). Call it on the
    running event loop, which the pool binds to; close it with close_pool().

    size: the most connections it opens, on demand (none at first); callers past that wait
    their turn (db.raw).
    autocommit: each statement is its own transaction (db.raw.autocommitting: a single read, or
    a CALL of an intake procedure that commits its own); otherwise transactions, READ COMMITTED
    as the engine's.
    lock_wait_seconds: how long a statement waits for a row lock before it fails (None: the
    server's innodb_lock_wait_timeout).
    """
    url = _checked_url(settings)
    init_command = f"{_UTC}, SESSION tx_isolation = 'READ-COMMITTED'"
    if lock_wait_seconds is not None:
        init_command += f", SESSION innodb_lock_wait_timeout = {int(lock_wait_seconds)}"
    return asyncmy.Pool(
        minsize=0,
        maxsize=size,
        pool_recycle=1800,
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        db=url.database,
        charset="utf8mb4",
        # As SQLAlchemy's MySQL dialects connect: an UPDATE's rowcount is the rows it matched, not
        # only those it changed, so a statement reads the same on either way to the database.
        client_flag=CLIENT.FOUND_ROWS,
        autocommit=autocommit,
        init_command=init_command,
    )


async def close_pool(pool: asyncmy.Pool) -> None:
    """Close its connections; those in use close when they are given back."""
    pool.close()
    await pool.wait_closed()


def _checked_url(settings: Settings) -> URL:
    url = make_url(settings.database_url)
    if url.drivername != DRIVER:
        # db/raw.py speaks asyncmy's cursor under the hot paths; another driver would fail there.
        raise ValueError(f"DATABASE_URL must use {DRIVER}:// (found {url.drivername}://)")
    return url
