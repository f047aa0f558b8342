"""The hot path's way to the database: a statement sent straight through the driver's cursor,
inside the caller's SQLAlchemy transaction or a transaction() of this module.

Measured here (tests of 1,500 accept transactions, 32 concurrent): the same seven statements cost
about 2.4 ms of CPU each through SQLAlchemy's async layer and 0.7 ms through the aiomysql cursor.
The driver is asyncmy (the protocol in Cython): a SELECT and a COMMIT cost ~100 us of client CPU
against aiomysql's ~200-250 us (16 connections in a loop, bench-free, same machine).
The engine owns pooling; errors are re-raised as SQLAlchemy's exception types, so callers handle
one kind.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from asyncmy import errors as driver_errors
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

log = logging.getLogger(__name__)

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def sql(statement: str) -> str:
    """Write statements with :name placeholders (as SQLAlchemy's text()); the driver wants %(name)s."""
    return _NAMED.sub(r"%(\1)s", statement)


@dataclass(frozen=True, slots=True)
class Result:
    rowcount: int
    lastrowid: int
    rows: tuple[tuple[Any, ...], ...]
    description: tuple[tuple[Any, ...], ...] | None = None  # the cursor's; names are read only by mappings()

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def mappings(self) -> list[dict[str, Any]]:
        """Each row as {column name: value}."""
        names = [column[0] for column in self.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self.rows]


_WRAPPERS: tuple[tuple[type[driver_errors.Error], type[exc.DBAPIError]], ...] = (
    (driver_errors.IntegrityError, exc.IntegrityError),
    (driver_errors.OperationalError, exc.OperationalError),
    (driver_errors.ProgrammingError, exc.ProgrammingError),
    (driver_errors.DataError, exc.DataError),
    (driver_errors.Error, exc.DBAPIError),
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction opened by transaction(): statements go through run() only."""

    cursor: Any  # the driver's cursor of the pooled connection


Connection = AsyncConnection | Transaction
"""What run() executes on: a SQLAlchemy connection inside engine.begin(), or a Transaction."""

_GATES: WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = WeakKeyDictionary()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """A transaction on a connection of the engine's pool, committed through the driver.

    SQLAlchemy's engine.begin() and its COMMIT cost ~440 us of CPU around a one-SELECT
    transaction here, this ~200 us (16 tasks in a loop; the driver alone ~100 us): its
    per-transaction objects and greenlet hand-offs are skipped, the pool and its connect-time
    settings (isolation level, time zone) are kept. On an exception the transaction rolls back;
    a connection whose state is unknown (cancelled mid-statement, or the ROLLBACK or COMMIT
    failed) is closed, never pooled.
    """
    async with _gate(engine):
        async with _on_pooled_connection(engine, commit=True) as transaction:
            yield transaction


@asynccontextmanager
async def autocommitting(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Statements on a connection of an autocommit engine (db.engine's autocommit), each its own
    transaction: a single read, or a CALL of an intake procedure that opens and commits its own
    (procedures.sql). Either is one round trip, with no COMMIT after it: GET /status/{id} takes
    one where a key lookup, a SELECT and a COMMIT took three, POST /beli one where it took two."""
    async with _gate(engine):
        async with _on_pooled_connection(engine, commit=False) as connection:
            yield connection


def _gate(engine: AsyncEngine) -> asyncio.Semaphore:
    # The pool's queue is not fair: a task that returns a connection and asks again at once can
    # take it before a waiting task wakes, and in a tight loop of 64 tasks over 30 connections
    # one task waited 6 s (the whole run) for one. This FIFO semaphore (fair since Python 3.11)
    # queues the tasks instead, so one passing it finds a connection free in the pool. Sized to
    # the pool's base size: its overflow, if any, is left to the engine.begin() paths.
    gate = _GATES.get(engine)
    if gate is None:
        gate = _GATES[engine] = asyncio.Semaphore(engine.pool.size())
    return gate


@asynccontextmanager
async def _on_pooled_connection(engine: AsyncEngine, *, commit: bool) -> AsyncIterator[Transaction]:
    pooled = await engine.raw_connection()
    driver = pooled.driver_connection
    try:
        yield Transaction(_cursor(pooled))
    except BaseException as failure:
        # Only an ordinary error leaves the connection's state known; a cancellation mid-statement does not.
        rolled_back = False
        try:
            rolled_back = isinstance(failure, Exception) and await _rolled_back(driver)
        finally:
            await (greenlet_spawn(pooled.close) if rolled_back else _discard(pooled))
        raise
    try:
        if commit:
            await driver.commit()
    except BaseException as error:
        await _discard(pooled)
        if isinstance(error, driver_errors.Error):
            raise _wrapped("COMMIT", None, error) from error
        raise
    # Returning it may close an overflow connection: driver I/O that needs SQLAlchemy's greenlet.
    await greenlet_spawn(pooled.close)


async def _rolled_back(driver: Any) -> bool:
    try:
        await driver.rollback()
        return True
    except Exception as error:  # the caller gets the body's own error; this connection is only discarded
        log.warning("ROLLBACK failed (%s); the connection is discarded", type(error).__name__)
        return False


async def _discard(pooled: PoolProxiedConnection) -> None:
    await greenlet_spawn(pooled.invalidate)


def _cursor(pooled: PoolProxiedConnection) -> Any:
    # One cursor per DBAPI connection, kept as long as the pooled connection (the pool clears
    # info when it closes one): opening and closing one per statement cost a tenth of the web
    # process's time at load.
    cursor = pooled.info.get("raw_cursor")
    if cursor is None:
        cursor = pooled.info["raw_cursor"] = pooled.driver_connection.cursor()
    return cursor


async def run(conn: Connection, statement: str, params: dict[str, Any] | None = None) -> Result:
    """Execute one statement made by sql(); its rows are fetched when it returns any (for a CALL:
    the rows of its first result set)."""
    if isinstance(conn, Transaction):
        cursor = conn.cursor
    else:
        cursor = conn.info.get("raw_cursor") or _cursor(await conn.get_raw_connection())
    try:
        await cursor.execute(statement, params)
        description = cursor.description
        rows = await cursor.fetchall() if description else ()
        result = Result(cursor.rowcount, cursor.lastrowid, rows, description)
        # A CALL answers its SELECT's rows and then a status; read that too (no round trip: it is
        # already here) or the connection's next command would take it for its own answer.
        while await cursor.nextset():
            pass
        return result
    except driver_errors.Error as error:
        raise _wrapped(statement, params, error) from error


def _wrapped(statement: str, params: dict[str, Any] | None, error: driver_errors.Error) -> exc.DBAPIError:
    wrapper = next(w for kind, w in _WRAPPERS if isinstance(error, kind))
    return wrapper(statement, params, error)
