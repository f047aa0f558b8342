"""workers.status_tally against the real MariaDB: the counts by status stay those of a GROUP BY
over the whole table, while a refresh reads only the new rows and the ones still open."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.settings import get_settings
from db.engine import create_engine
from tests.harness import MariaDB
from workers.exporter import Exporter
from workers.status_tally import StatusTally

pytestmark = pytest.mark.asyncio

TABLE = "tally_probe"


@pytest.fixture
async def engine(db: MariaDB) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(get_settings(), pool_size=3)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        await conn.execute(text(
            f"CREATE TABLE {TABLE} (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
            "status ENUM('pending','proses','sukses','gagal') NOT NULL, KEY ix_status (status, id)) ENGINE=InnoDB"
        ))  # fmt: skip
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
    await engine.dispose()


def tally(settled_after: float = 0.0) -> StatusTally:
    return StatusTally(TABLE, "id", "status", "status IN ('pending', 'proses')", settled_after=settled_after)


async def run(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def add(engine: AsyncEngine, *statuses: str) -> None:
    async with engine.begin() as conn:
        for status in statuses:
            await conn.execute(text(f"INSERT INTO {TABLE} (status) VALUES (:s)"), {"s": status})


async def counted(engine: AsyncEngine, counter: StatusTally, *, isolation: str = "REPEATABLE READ") -> tuple[Counter, Counter]:
    """The tally's counts and a GROUP BY's, read in one transaction, as the exporter reads them."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level=isolation)
        async with conn.begin():
            counts = await counter.count(conn)
            truth = Counter({(s,): n for s, n in await conn.execute(text(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status"))})
    return counts, truth


class EndsARowMidRead:
    """A connection that commits, through another one, a pending row's end just before the tally
    reads which rows are open: the moment between the two statements of a first read."""

    def __init__(self, conn: AsyncConnection, engine: AsyncEngine, row_id: int) -> None:
        self._conn, self._engine, self._row_id = conn, engine, row_id

    async def execute(self, statement: Any, params: Any = None) -> Any:
        if self._row_id and str(statement).startswith(f"SELECT id FROM {TABLE} WHERE"):
            await run(self._engine, f"UPDATE {TABLE} SET status = 'sukses' WHERE id = :id", id=self._row_id)
            self._row_id = 0
        return await self._conn.execute(statement, params)


async def test_the_counts_follow_every_change_yet_old_final_rows_are_read_once(engine: AsyncEngine) -> None:
    counter = tally()
    await add(engine, "sukses", "gagal", "pending", "proses", "sukses")
    counts, truth = await counted(engine, counter)
    assert counts == truth == Counter({("sukses",): 2, ("gagal",): 1, ("pending",): 1, ("proses",): 1})
    assert counter.read_for_good_upto == 5

    # The open rows end, a new one comes and ends, one comes and stays open.
    await run(engine, f"UPDATE {TABLE} SET status = 'sukses' WHERE status = 'proses'")
    await run(engine, f"UPDATE {TABLE} SET status = 'gagal' WHERE status = 'pending'")
    await add(engine, "pending", "pending")
    await run(engine, f"UPDATE {TABLE} SET status = 'sukses' WHERE id = 6")
    for _ in range(2):
        counts, truth = await counted(engine, counter)
        assert counts == truth == Counter({("sukses",): 4, ("gagal",): 2, ("pending",): 1})

    # A final row is final: the tally does not read it again (were it changed behind the
    # domain's back, the tally would not see it; a GROUP BY over the table would).
    await run(engine, f"UPDATE {TABLE} SET status = 'gagal' WHERE id = 1")
    counts, truth = await counted(engine, counter)
    assert counts[("sukses",)] == 4 and truth[("sukses",)] == 3


async def test_rows_are_counted_for_good_only_once_their_ids_are_old_enough(engine: AsyncEngine) -> None:
    """A transaction that has not committed holds an id below ids that others committed: the
    rows up to the highest id seen settled_after seconds ago are counted for good, no further."""
    counter = tally(settled_after=0.5)
    await add(engine, "sukses")
    late = await engine.connect()
    await late.begin()
    await late.execute(text(f"INSERT INTO {TABLE} (status) VALUES ('pending')"))  # id 2, not committed
    await add(engine, "sukses")  # id 3, committed
    counts, truth = await counted(engine, counter)
    assert counts == truth == Counter({("sukses",): 2}) and counter.read_for_good_upto == 0
    await asyncio.sleep(0.3)
    await late.commit()  # within settled_after of when id 3 was first seen
    await late.close()
    await asyncio.sleep(0.3)
    counts, truth = await counted(engine, counter)
    assert counter.read_for_good_upto == 3
    assert counts == truth == Counter({("sukses",): 2, ("pending",): 1})
    await run(engine, f"UPDATE {TABLE} SET status = 'gagal' WHERE id = 2")
    counts, truth = await counted(engine, counter)
    assert counts == truth == Counter({("sukses",): 2, ("gagal",): 1})


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "READ COMMITTED"])
async def test_a_row_that_ends_while_the_tally_reads_is_counted_once(engine: AsyncEngine, isolation: str) -> None:
    """Under the exporter's REPEATABLE READ, a row that ends between the tally's statements is
    counted as it was, then as it is. Under READ COMMITTED it would be lost: this proves the test
    sees the difference."""
    counter = tally()
    await add(engine, "pending", "sukses")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level=isolation)
        async with conn.begin():
            await counter.count(EndsARowMidRead(conn, engine, row_id=1))  # type: ignore[arg-type]
    counts, truth = await counted(engine, counter)
    assert truth == Counter({("sukses",): 2})
    if isolation == "REPEATABLE READ":
        assert counts == truth
    else:
        assert counts == Counter({("sukses",): 1})  # why the exporter reads at REPEATABLE READ


async def test_a_deleted_open_row_leaves_the_counts(engine: AsyncEngine) -> None:
    counter = tally()
    await add(engine, "pending", "sukses")
    await counted(engine, counter)
    await run(engine, f"DELETE FROM {TABLE} WHERE id = 1")
    counts, truth = await counted(engine, counter)
    assert counts == truth == Counter({("sukses",): 1})


async def test_the_exporter_counts_purchases_qris_transactions_and_webhook_events_as_a_group_by(engine: AsyncEngine) -> None:
    """The exporter's own tallies on Loket's tables (whatever earlier tests left there, which the
    shared stack may still be changing: one REPEATABLE READ snapshot, as the exporter reads)."""
    exporter = Exporter()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            purchases = await exporter.purchase_tally.count(conn)
            purchase_truth = Counter({(s,): n for s, n in await conn.execute(text("SELECT status, COUNT(*) FROM purchase GROUP BY status"))})
            events = await exporter.event_tally.count(conn)
            event_truth = Counter(
                {(s, o): n for s, o, n in await conn.execute(text("SELECT source, outcome, COUNT(*) FROM webhook_event GROUP BY source, outcome"))}
            )
            qris = await exporter.qris_tally.count(conn)
            qris_truth = Counter({(s,): n for s, n in await conn.execute(text("SELECT tr_status, COUNT(*) FROM qris_transaction GROUP BY tr_status"))})
    assert (purchases, events, qris) == (purchase_truth, event_truth, qris_truth)


async def test_the_exporter_reports_the_age_of_the_oldest_purchase_in_proses(db: MariaDB, engine: AsyncEngine) -> None:
    """What the PurchasesStuckInProses alert reads: a purchase left in proses for 40 minutes shows
    as at least that old, and once it is decided the gauge no longer counts it."""
    produk = db.value("SELECT MIN(id) FROM produk")
    await run(
        engine,
        "INSERT INTO purchase (reseller_id, ref_id, produk_id, kode, nomor_tujuan, harga, status, provider_ref, waktu) "
        "VALUES (0, 'stuck-proses-probe', :produk, 'X', '081200000000', 1, 'proses', 'stuck-proses-probe', NOW(6) - INTERVAL 40 MINUTE)",
        produk=produk,
    )
    exporter, redis = Exporter(), Redis.from_url(get_settings().redis_url)
    try:
        await exporter.refresh(engine, redis)
        assert exporter.registry.get_sample_value("loket_purchase_oldest_proses_age_seconds") >= 40 * 60
        await run(engine, "UPDATE purchase SET status = 'sukses' WHERE provider_ref = 'stuck-proses-probe'")
        await exporter.refresh(engine, redis)
        assert exporter.registry.get_sample_value("loket_purchase_oldest_proses_age_seconds") < 40 * 60
    finally:
        await run(engine, "DELETE FROM purchase WHERE provider_ref = 'stuck-proses-probe'")
        await redis.aclose()
