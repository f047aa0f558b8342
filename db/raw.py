"""The hot path's way to the database: a statement sent straight through the driver's cursor,
inside the caller's SQLAlchemy transaction, or on a connection of the driver's own pool in a
transaction() or autocommitting() of this module.

Measured here (tests of 1,500 accept transactions, 32 concurrent): the same seven statements cost
about 2.4 ms of CPU each through SQLAlchemy's async layer and 0.7 ms through the aiomysql cursor.
The driver is asyncmy (the protocol in Cython): a SELECT and a COMMIT cost ~100 us of client CPU
against aiomysql's ~200-250 us (16 connections in a loop, bench-free, same machine).
Errors are re-raised as SQLAlchemy's exception types, so callers handle one kind.
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

import asyncmy
import orjson
from asyncmy import errors as driver_errors
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection

log = logging.getLogger(__name__)

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def sql(statement: str) -> str:
    """Write statements with :name placeholders (as SQLAlchemy's text()); the driver wants %(name)s."""
    return _NAMED.sub(r"%(\1)s", statement)


def json_text(value: Any) -> str:
    """value as the JSON text of a parameter that a statement reads with JSON_TABLE. orjson: a
    group of 50 orders takes 7 us against json.dumps's 94 us. Ints beyond 64 bits are refused
    (TypeError), so it is for the values Loket validated, not for payloads as received."""
    return orjson.dumps(value).decode()


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
    """A connection of a hot-path pool, in transaction() or autocommitting(): statements go through run() only."""

    cursor: Any  # the driver's cursor on it


Connection = AsyncConnection | Transaction
"""What run() executes on: a SQLAlchemy connection inside engine.begin(), or a Transaction."""

_GATES: WeakKeyDictionary[asyncmy.Pool, asyncio.Semaphore] = WeakKeyDictionary()


@asynccontextmanager
async def transaction(pool: asyncmy.Pool) -> AsyncIterator[Transaction]:
    """A transaction on a connection of the pool (db.engine.create_pool), committed through the driver.

    SQLAlchemy's engine.begin() and its COMMIT cost ~440 us of CPU around a one-SELECT
    transaction here, a transaction on the engine's pool through the driver ~200 us, and on the
    driver's own pool less again (16 tasks in a loop). On an exception the transaction rolls
    back; a connection whose state is unknown (cancelled mid-statement, or the ROLLBACK or
    COMMIT failed) is closed, never pooled.
    """
    async with _gate(pool):
        async with _on_pooled_connection(pool, commit=True) as transaction:
            yield transaction


@asynccontextmanager
async def autocommitting(pool: asyncmy.Pool) -> AsyncIterator[Transaction]:
    """Statements on a connection of an autocommit pool (db.engine.create_pool's autocommit),
    each its own transaction: a single read, or a CALL of an intake procedure that opens and
    commits its own (procedures.sql). Either is one round trip, with no COMMIT after it: GET
    /status/{id} takes one where a key lookup, a SELECT and a COMMIT took three, POST /beli one
    where it took two."""
    async with _gate(pool):
        async with _on_pooled_connection(pool, commit=False) as connection:
            yield connection


def _gate(pool: asyncmy.Pool) -> asyncio.Semaphore:
    # A pool's waiters are not served in order: a task that returns a connection and asks again
    # at once can take it before a waiting task wakes, and in a tight loop of 64 tasks over 30
    # connections one task waited 6 s (the whole run) for one. This FIFO semaphore (fair since
    # Python 3.11) queues the tasks instead, so one passing it finds a connection in the pool.
    gate = _GATES.get(pool)
    if gate is None:
        gate = _GATES[pool] = asyncio.Semaphore(pool.maxsize)
    return gate


@asynccontextmanager
async def _on_pooled_connection(pool: asyncmy.Pool, *, commit: bool) -> AsyncIterator[Transaction]:
    try:
        connection = await pool.acquire()
    except driver_errors.Error as error:
        raise _wrapped("CONNECT", None, error) from error
    try:
        yield Transaction(connection.cursor())
    except BaseException as failure:
        # Only an ordinary error leaves the connection's state known; a cancellation mid-statement does not.
        rolled_back = False
        try:
            rolled_back = isinstance(failure, Exception) and await _rolled_back(connection)
        finally:
            if not rolled_back:
                connection.close()
            pool.release(connection)
        raise
    try:
        if commit:
            await connection.commit()
    except BaseException as error:
        connection.close()
        pool.release(connection)
        if isinstance(error, driver_errors.Error):
            raise _wrapped("COMMIT", None, error) from error
        raise
    pool.release(connection)


async def _rolled_back(connection: Any) -> bool:
    try:
        await connection.rollback()
        return True
    except Exception as error:  # the caller gets the body's own error; this connection is only discarded
        log.warning("ROLLBACK failed (%s); the connection is discarded", type(error).__name__)
        return False


def _cursor(pooled: PoolProxiedConnection) -> Any:
    # One cursor per DBAPI connection of the engine, kept as long as the pooled connection (the
    # pool clears info when it closes one): run() inside engine.begin().
    cursor = pooled.info.get("raw_cursor")
    if cursor is None:
        assert pooled.driver_connection is not None  # a checked-out connection has one
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
