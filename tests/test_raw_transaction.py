"""db.raw.transaction() and db.raw.autocommitting(), the hot paths' ways to the database, against
the real MariaDB.

transaction() commits through the driver, so what SQLAlchemy's engine.begin() would guarantee is
checked here: a failed body leaves nothing behind, and a connection in an unknown state (killed by
the server, cancelled mid-statement) is closed instead of being handed to the next caller. On an
autocommit connection an intake procedure's one CALL commits (or rolls back) its own transaction,
and inside a transaction it refuses to run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator

import asyncmy
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import get_settings
from db import raw
from db.engine import close_pool, create_engine, create_pool
from domain import ledger, purchases, qris, webhook_events
from tests.harness import MariaDB
from tests.test_domain import accept_order, new_location_with_price, new_reseller

CONNECTION_ID = raw.sql("SELECT CONNECTION_ID()")


ORDER = {"produk_id": 1, "nomor_tujuan": "081234567890", "nominal": None, "lease_seconds": 60}
IN_TRANSACTION = raw.sql("SELECT @@in_transaction")


@pytest.fixture
async def pool(db: MariaDB) -> AsyncIterator[asyncmy.Pool]:
    # One connection: every transaction reuses what the previous one left.
    pool = create_pool(get_settings(), 1)
    yield pool
    await close_pool(pool)


@pytest.fixture
async def autocommit_pool(db: MariaDB) -> AsyncIterator[asyncmy.Pool]:
    pool = create_pool(get_settings(), 1, autocommit=True)
    yield pool
    await close_pool(pool)


@pytest.fixture
async def engine(db: MariaDB) -> AsyncIterator[AsyncEngine]:
    # One connection and no overflow: every transaction reuses what the previous one left.
    engine = create_engine(get_settings(), pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


def in_use(pool: asyncmy.Pool) -> int:
    return pool.size - pool.freesize


async def connection_id(pool: asyncmy.Pool) -> int:
    async with raw.transaction(pool) as tx:
        return (await raw.run(tx, CONNECTION_ID)).scalar()


async def test_an_exception_in_the_body_rolls_everything_back_and_keeps_the_connection(engine, pool, db: MariaDB):
    reseller_id = await new_reseller(engine, 50_000)
    before = await connection_id(pool)
    with pytest.raises(RuntimeError, match="after the debit"):
        async with raw.transaction(pool) as tx:
            await ledger.post_entry(tx, reseller_id, "koreksi", -20_000)
            raise RuntimeError("after the debit")
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 50_000
    assert db.ledger_matches_saldo(reseller_id)
    assert in_use(pool) == 0
    assert await connection_id(pool) == before  # rolled back and pooled, not closed


async def test_a_purchase_accepted_on_an_autocommit_connection_is_committed_by_its_call(engine, autocommit_pool, db: MariaDB):
    reseller_id = await new_reseller(engine, 50_000)
    async with raw.autocommitting(autocommit_pool) as conn:
        accepted = await accept_order(conn, reseller_id=reseller_id, ref_id="A1", **ORDER)
        # Seen committed from another connection before this one is given back: no COMMIT is to follow.
        assert db.value("SELECT status FROM purchase WHERE id = %s", accepted.purchase_id) == "pending"
        with pytest.raises(purchases.DuplicateRefId):
            await accept_order(conn, reseller_id=reseller_id, ref_id="A1", **ORDER)
        assert (await raw.run(conn, IN_TRANSACTION)).scalar() == 0  # the failed call rolled its own back
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 50_000 - accepted.harga
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 1
    assert db.ledger_matches_saldo(reseller_id)


@pytest.mark.parametrize("intake", ["accept", "receive", "create"])
async def test_an_intake_procedure_refuses_to_run_inside_a_transaction_and_commits_nothing_of_it(engine, pool, db: MariaDB, intake):
    """Its COMMIT would end the caller's transaction half-way: it refuses, and what the caller
    wrote before is still the caller's to roll back."""
    reseller_id = await new_reseller(engine, 50_000)
    location_id, price_id = new_location_with_price(db)
    calls = {
        "accept": lambda tx: accept_order(tx, reseller_id=reseller_id, ref_id=None, **ORDER),
        "receive": lambda tx: webhook_events.receive_all(
            tx, [webhook_events.IncomingEvent("digiflazz", uuid.uuid4().hex, "LKx", {})], lease_seconds=60
        ),
        "create": lambda tx: qris.create_all(
            tx, [qris.Creation(location_id, price_id, qris.new_external_id(location_id, dt.datetime.now(dt.UTC)))],
            default_amount=1, ttl_seconds=60, lease_seconds=60,
        ),
    }  # fmt: skip
    events_before = db.value("SELECT COUNT(*) FROM webhook_event")
    with pytest.raises(DBAPIError, match="commits its own transaction"):
        async with raw.transaction(pool) as tx:
            await ledger.post_entry(tx, reseller_id, "koreksi", -20_000)
            await calls[intake](tx)
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 50_000
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 0
    assert db.value("SELECT COUNT(*) FROM webhook_event") == events_before
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", price_id) == 0
    assert db.ledger_matches_saldo(reseller_id)


async def test_a_connection_killed_by_the_server_is_not_pooled_again(pool, db: MariaDB):
    with pytest.raises(OperationalError):
        async with raw.transaction(pool) as tx:
            killed = (await raw.run(tx, CONNECTION_ID)).scalar()
            db.rows(f"KILL CONNECTION {int(killed)}")
            await raw.run(tx, raw.sql("SELECT 1"))
    assert in_use(pool) == 0
    assert await connection_id(pool) != killed  # a fresh connection, and it works


async def test_a_transaction_cancelled_mid_statement_closes_its_connection(pool, db: MariaDB):
    started = asyncio.Event()
    ids: list[int] = []

    async def slow() -> None:
        async with raw.transaction(pool) as tx:
            ids.append((await raw.run(tx, CONNECTION_ID)).scalar())
            started.set()
            await raw.run(tx, raw.sql("SELECT SLEEP(5)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert in_use(pool) == 0
    # The cancelled connection still has a SLEEP's answer on its way: reusing it would read that.
    assert await connection_id(pool) != ids[0]


async def test_an_engine_or_pool_refuses_a_driver_that_the_hot_path_cannot_use():
    settings = get_settings().model_copy(update={"database_url": "mysql+aiomysql://root@127.0.0.1:3306/loket"})
    for make in (create_engine, lambda s: create_pool(s, 1)):
        with pytest.raises(ValueError, match="mysql\\+asyncmy"):
            make(settings)


async def test_a_pool_connection_is_set_up_as_the_engines_are(pool, autocommit_pool):
    """UTC, READ COMMITTED, and an UPDATE's rowcount counting the rows it matched (the engine's
    FOUND_ROWS): the same statement reads the same on either way to the database."""
    for each, autocommit in ((pool, 0), (autocommit_pool, 1)):
        async with raw.transaction(each) as conn:
            settings = (await raw.run(conn, raw.sql("SELECT @@time_zone, @@tx_isolation, @@autocommit"))).rows[0]
            unchanged = await raw.run(conn, raw.sql("UPDATE produk SET harga = harga WHERE id = 1"))
        assert settings == ("+00:00", "READ-COMMITTED", autocommit)
        assert unchanged.rowcount == 1


async def test_tasks_queueing_for_connections_are_served_in_turn(db: MariaDB):
    # More tasks than connections, each asking again as soon as it is done: without a fair queue
    # in front of the pool one of them got no connection for the whole run.
    pool = create_pool(get_settings(), 4)
    done = [0] * 32
    stop_at = asyncio.get_running_loop().time() + 1.5

    async def loop(n: int) -> None:
        while asyncio.get_running_loop().time() < stop_at:
            async with raw.transaction(pool) as tx:
                await raw.run(tx, CONNECTION_ID)
            done[n] += 1

    try:
        await asyncio.gather(*(loop(n) for n in range(32)))
    finally:
        await close_pool(pool)
    mean = sum(done) / len(done)
    assert min(done) >= mean / 4, done


async def test_a_group_of_webhook_events_is_stored_once_each_or_not_at_all(pool, db: MariaDB):
    """receive_webhook_events: an event stored before, and the same event twice in one group, are
    duplicates (no job); the same key from another source is another event; an event the table
    cannot hold fails the whole group, which stores nothing."""
    E = webhook_events.IncomingEvent
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    autocommit_pool = create_pool(get_settings(), 1, autocommit=True)
    try:
        async with raw.autocommitting(autocommit_pool) as conn:
            [first] = await webhook_events.receive_all(conn, [E("digiflazz", key, "LKg1", {"data": {"n": 1}})], lease_seconds=60)
            jobs = await webhook_events.receive_all(
                conn,
                [E("digiflazz", key, "LKg1", {}), E("digiflazz", other, None, {"é": [1, None]}), E("digiflazz", other, None, {}), E("xendit", key, "g1", {})],
                lease_seconds=60,
            )
            with pytest.raises(DBAPIError, match="Data too long"):
                await webhook_events.receive_all(conn, [E("digiflazz", uuid.uuid4().hex, "LKg2", {}), E("digiflazz", uuid.uuid4().hex, "x" * 65, {})], lease_seconds=60)
    finally:
        await close_pool(autocommit_pool)
    assert first is not None and jobs[0] is None and jobs[2] is None
    assert jobs[1] is not None and jobs[3] is not None
    stored = {job.args[0]: job for job in (first, jobs[1], jobs[3])}
    rows = db.rows("SELECT id, source, event_key, payload FROM webhook_event WHERE event_key IN (%s, %s) ORDER BY id", key, other)
    assert [(r["id"], r["source"], r["event_key"]) for r in rows] == [(first.args[0], "digiflazz", key), (jobs[1].args[0], "digiflazz", other), (jobs[3].args[0], "xendit", key)]
    assert json.loads(rows[1]["payload"]) == {"é": [1, None]}
    outbox_keys = {r["job_key"] for r in db.rows("SELECT job_key FROM outbox WHERE job_key IN (%s, %s, %s)", *(j.job_key for j in stored.values()))}
    assert outbox_keys == {j.job_key for j in stored.values()}
    assert db.value("SELECT COUNT(*) FROM webhook_event WHERE reference = 'LKg2'") == 0
    # Stored straight through the procedure, these events have no worker job behind them: take them
    # out so that the shared stack's workers never try to apply made-up payloads.
    db.rows("DELETE FROM outbox WHERE job_key IN (%s, %s, %s)", *(j.job_key for j in stored.values()))
    db.rows("DELETE FROM webhook_event WHERE event_key IN (%s, %s)", key, other)
