"""The web's group calls (web.intake) against the real database: one stuck order does not hold the others."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pymysql
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import get_settings
from db.engine import close_pool, create_engine, create_pool
from domain import purchases
from tests.harness import MariaDB
from tests.test_domain import PULSA10, new_reseller
from web.intake import purchase_intake


@pytest.fixture
async def engine(db: MariaDB) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(get_settings(), pool_size=2)
    yield engine
    await engine.dispose()


async def test_an_order_behind_a_held_saldo_row_fails_alone_and_the_group_goes_on(engine: AsyncEngine, db: MariaDB):
    """Another transaction holds one reseller's row: that reseller's order fails after the lock
    wait (DB_LOCK_WAIT_SECONDS), the group is run again order by order, and the other resellers'
    orders are accepted; the stuck one wrote nothing."""
    stuck, free = await new_reseller(engine, 30_000), await new_reseller(engine, 100_000)
    pool = create_pool(get_settings(), 4, autocommit=True, lock_wait_seconds=1)
    holder = pymysql.connect(host="127.0.0.1", user="root", database=db.name, autocommit=False)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT saldo FROM reseller WHERE id = %s FOR UPDATE", (stuck,))
        accept = purchase_intake(pool, lease_seconds=60)

        def order(reseller_id: int) -> purchases.Order:
            return purchases.Order(produk_id=PULSA10.id, nomor_tujuan="081234567890", nominal=None, ref_id=uuid.uuid4().hex, reseller_id=reseller_id)

        started = time.monotonic()
        answers = await asyncio.gather(*(accept(order(r)) for r in (free, stuck, free, free)), return_exceptions=True)
        took = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
        await close_pool(pool)
    assert [type(a).__name__ for a in answers] == ["Accepted", "OperationalError", "Accepted", "Accepted"]
    assert isinstance(answers[1], OperationalError) and "Lock wait timeout" in str(answers[1])
    assert took < 10, took  # a lock wait of 1 s for the group, then one for the order alone: not MariaDB's 50 s
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", stuck) == 0
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", stuck) == 30_000
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", free) == 3
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", free) == 100_000 - 3 * 12_000
    for reseller_id in (stuck, free):
        assert db.ledger_matches_saldo(reseller_id)
