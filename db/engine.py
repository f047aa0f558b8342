"""The async engine every process uses (SQLAlchemy Core over asyncmy)."""

from __future__ import annotations

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.settings import Settings

DRIVER = "mysql+asyncmy"


def create_engine(settings: Settings, pool_size: int | None = None, max_overflow: int = 10, *, autocommit: bool = False) -> AsyncEngine:
    """Build the engine.

    pool_size: connections kept open; defaults to the DB_POOL_SIZE setting.
    max_overflow: connections opened beyond pool_size under load, closed when returned.
    autocommit: for db.raw.autocommitting(): each statement is its own transaction, so a
    single read, or a CALL of a procedure that commits its own (procedures.sql's intake
    procedures), is one round trip, without a COMMIT after it.
    """
    url = make_url(settings.database_url)
    if url.drivername != DRIVER:
        # db/raw.py speaks asyncmy's cursor under the hot paths; another driver would fail there.
        raise ValueError(f"DATABASE_URL must use {DRIVER}:// (found {url.drivername}://)")
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_pre_ping=False,
        # Each statement sees what is committed; money rows are guarded by conditional UPDATEs,
        # not by snapshots, and no connection keeps a stale snapshot between uses.
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        # Every unit of work ends in COMMIT or ROLLBACK (engine.begin()), so the pool's own
        # ROLLBACK on return would be a wasted round trip per request.
        pool_reset_on_return=None,
        # Every timestamp Loket writes or compares (NOW(6), DEFAULT CURRENT_TIMESTAMP) is UTC.
        connect_args={"init_command": "SET time_zone = '+00:00'"},
    )
