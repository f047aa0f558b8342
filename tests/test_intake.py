"""The web's group calls (web.intake) and the group statements under them, against the real database:
each call of a group answered for itself, and one stuck order not holding the others."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator

import pymysql
import pytest
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import get_settings
from db import purchases as purchase_queries
from db import raw
from db.engine import close_pool, create_engine, create_pool
from domain import purchases, qris
from tests.harness import MariaDB, wait_until
from tests.test_domain import PULSA10, accept, autocommit_connection, new_location_with_price, new_reseller
from web.intake import purchase_intake, qris_intake
from workers.enqueue import NAMESPACE
from workers.pusher import Pusher


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


async def test_a_group_of_status_reads_answers_each_caller_its_own(engine: AsyncEngine, db: MariaDB):
    """GET /status's group read (db.purchases.owned): each query gets its own caller and only its
    own purchase, by id or by ref_id, in the order asked; a key of no active reseller gets nothing."""
    alice, bob, gone = [await new_reseller(engine, 30_000) for _ in range(3)]
    alices = await accept(engine, alice, ref_id="GRP-1")
    bobs = await accept(engine, bob, ref_id="GRP-1")
    key = {r: db.value("SELECT api_key_hash FROM reseller WHERE id = %s", r) for r in (alice, bob, gone)}
    db.rows("UPDATE reseller SET aktif = FALSE WHERE id = %s", gone)
    Q = purchase_queries.OwnedQuery
    queries = [
        Q(key[alice], purchase_id=alices),
        Q(key[bob], purchase_id=alices),  # another's purchase: the caller, no purchase
        Q(b"\x00" * 32, purchase_id=alices),  # no such key
        Q(key[bob], ref_id="GRP-1"),
        Q(key[gone], purchase_id=alices),  # deactivated
        Q(key[alice], ref_id="GRP-1"),
        Q(key[alice], purchase_id=alices),  # the same query twice in a group
        Q(key[alice], ref_id="GRP-1 but longer"),
    ]
    autocommit_pool = create_pool(get_settings(), 1, autocommit=True)
    try:
        async with raw.autocommitting(autocommit_pool) as conn:
            answers = await purchase_queries.owned(conn, queries)
    finally:
        await close_pool(autocommit_pool)
    seen = [(r.id if r else None, p.id if p else None) for r, p in answers]
    assert seen == [(alice, alices), (bob, None), (None, None), (bob, bobs), (None, None), (alice, alices), (alice, alices), (alice, None)]


async def test_a_group_of_orders_accepts_each_or_refuses_it_alone(engine, db: MariaDB):
    """accept_purchases: the orders of one group, two resellers mixed, each accepted or refused
    for itself in its own order: a refused one leaves nothing, and takes nothing from the rest."""
    alice, bob = await new_reseller(engine, 30_000), await new_reseller(engine, 12_000)
    bob_key = db.value("SELECT api_key_hash FROM reseller WHERE id = %s", bob)
    Order = purchases.Order
    pulsa, pln = {"produk_id": PULSA10.id, "nomor_tujuan": "081234567890", "nominal": None}, {"produk_id": 3, "nominal": None}
    orders = [
        Order(**pulsa, ref_id="G-1", reseller_id=alice),
        Order(**pulsa, ref_id="G-1", api_key_hash=bob_key),  # the same ref_id, another reseller's: fine
        Order(**pulsa, ref_id="G-1", reseller_id=alice),  # taken by the first, in the same group
        Order(**pulsa, ref_id="G-2", api_key_hash=bob_key),  # bob's saldo went on G-1
        Order(**pulsa, ref_id="G-3", reseller_id=alice),
        Order(**pulsa, ref_id="G-4", reseller_id=alice),  # 30,000 covers two at 12,000
        Order(**{**pulsa, "produk_id": 999}, ref_id="G-5", reseller_id=alice),
        Order(**pln, nomor_tujuan="0812345678", ref_id="G-6", reseller_id=alice),
        Order(**pulsa, ref_id="G-7", api_key_hash=b"\x01" * 32),
    ]
    outbox_before = db.value("SELECT COALESCE(MAX(id), 0) FROM outbox")
    async with autocommit_connection(engine) as conn:
        answers = await purchases.accept_all(conn, orders, lease_seconds=60)
    kinds = [type(a).__name__ for a in answers]
    assert kinds == ["Accepted", "Accepted", "DuplicateRefId", "InsufficientSaldo", "Accepted", "InsufficientSaldo", "UnknownProduct", "InvalidDestination", "UnknownApiKey"]
    assert [(a.harga, a.saldo) for a in answers if isinstance(a, purchases.Accepted)] == [(12_000, 18_000), (12_000, 0), (12_000, 6_000)]
    for reseller_id, refs in ((alice, ["G-1", "G-3"]), (bob, ["G-1"])):
        assert [r["ref_id"] for r in db.rows("SELECT ref_id FROM purchase WHERE reseller_id = %s ORDER BY id", reseller_id)] == refs
        assert db.ledger_matches_saldo(reseller_id)
    accepted_ids = [a.purchase_id for a in answers if isinstance(a, purchases.Accepted)]
    jobs = db.rows("SELECT job_key, args FROM outbox WHERE id > %s ORDER BY id", outbox_before)
    assert [(j["job_key"], j["args"]) for j in jobs] == [(f"purchase:{i}", f"[{i}]") for i in sorted(accepted_ids)]  # the refused: none
    assert [e["saldo_akhir"] for e in db.rows("SELECT saldo_akhir FROM ledger_entry WHERE reseller_id = %s AND jenis = 'pembelian' ORDER BY id", alice)] == [18_000, 6_000]


async def test_an_order_accepted_again_finds_its_purchase_and_debits_once(engine, db: MariaDB):
    """A group run again after its answer was lost (web.intake) sends the same orders, with the
    same provider_ref: the one committed before is found, not bought twice, even without a ref_id."""
    reseller_id = await new_reseller(engine, 30_000)
    order = purchases.Order(produk_id=PULSA10.id, nomor_tujuan="081234567890", nominal=None, ref_id=None, reseller_id=reseller_id)
    async with autocommit_connection(engine) as conn:
        [first] = await purchases.accept_all(conn, [order], lease_seconds=60)
        [again, other] = await purchases.accept_all(conn, [order, dataclasses.replace(order, provider_ref="LKother")], lease_seconds=60)
    assert isinstance(first, purchases.Accepted) and isinstance(again, purchases.Accepted) and isinstance(other, purchases.Accepted)
    assert again.purchase_id == first.purchase_id and (again.saldo, other.saldo) == (18_000, 6_000)
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 2
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 6_000
    assert db.ledger_matches_saldo(reseller_id)


async def test_an_order_never_takes_another_purchases_provider_ref(engine, db: MariaDB):
    """A provider_ref names one purchase: an order of another reseller that came with the same one
    (never by chance: 88 random bits) fails, with nothing written, rather than answer that purchase."""
    alice, bob = await new_reseller(engine, 30_000), await new_reseller(engine, 30_000)
    order = purchases.Order(produk_id=PULSA10.id, nomor_tujuan="081234567890", nominal=None, ref_id=None, reseller_id=alice)
    async with autocommit_connection(engine) as conn:
        [first] = await purchases.accept_all(conn, [order], lease_seconds=60)
        with pytest.raises(DBAPIError, match="provider_ref taken"):
            await purchases.accept_all(conn, [dataclasses.replace(order, reseller_id=bob)], lease_seconds=60)
    assert isinstance(first, purchases.Accepted)
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", bob) == 0
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", bob) == 30_000


async def test_a_group_of_kiosk_creates_creates_each_or_refuses_it_alone(engine, db: MariaDB):
    """create_qris_transactions: the creates of one group, each created or refused for itself: a
    refused one leaves no row, no job and no quota slot taken."""
    here, price = new_location_with_price(db)  # quota 5
    there, other_price = new_location_with_price(db)
    db.rows("UPDATE price SET mp_quota = 2 WHERE mp_id = %s", price)
    taken = f"TRX-{here}-TAKEN-{uuid.uuid4().hex[:8]}"
    db.rows("INSERT INTO qris_transaction (tr_external_id, tr_location_id, tr_amount, tr_expired_at) VALUES (%s, %s, 1, NOW())", taken, here)
    C = qris.Creation

    def new_id() -> str:
        return f"TRX-{here}-G-{uuid.uuid4().hex[:8]}"

    twice = new_id()
    creations = [
        C(here, price, new_id()),
        C(here, None, new_id()),  # no price: the default amount, no slot
        C(here, price, twice),
        C(here, price, new_id()),  # the quota of 2 went on the first and the third
        C(here, other_price, new_id()),  # another location's price
        C(999_999, None, new_id()),
        C(here, 999_999, new_id()),
        C(here, None, taken),  # an older transaction's id
        C(there, other_price, twice),  # taken inside the group by the third
    ]
    async with autocommit_connection(engine) as conn:
        answers = await qris.create_all(conn, creations, default_amount=40_000, ttl_seconds=60, lease_seconds=60)
    kinds = [type(a).__name__ for a in answers]
    assert kinds == ["Created", "Created", "Created", "QuotaExhausted", "PriceNotForLocation", "LocationNotFound", "PriceNotFound", "ExternalIdTaken", "ExternalIdTaken"]
    created = [a for a in answers if isinstance(a, qris.Created)]
    assert [a.external_id for a in created] == [creations[0].external_id, creations[1].external_id, twice]
    assert [(a.row["tr_amount"], a.row["tr_status"], a.row["tr_price_id"]) for a in created] == [(30_000, "PENDING", price), (40_000, "PENDING", None), (30_000, "PENDING", price)]
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", price) == 2
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", other_price) == 0
    assert db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id IN (%s, %s)", here, there) == 4  # the three and the older one
    jobs = db.value(f"SELECT COUNT(*) FROM outbox WHERE job_key IN ({', '.join(['%s'] * 3)})", *(f"qris:{a.tr_id}" for a in created))
    assert jobs == 3


async def test_concurrent_kiosk_creates_share_groups_and_keep_the_quota(engine, db: MariaDB):
    """Through the web's group call (web.intake.qris_intake): 40 creates at once on a price with a
    quota of 25, each answered for itself."""
    location_id, price = new_location_with_price(db)
    db.rows("UPDATE price SET mp_quota = 25 WHERE mp_id = %s", price)
    pool = create_pool(get_settings(), 4, autocommit=True)
    try:
        intake = qris_intake(pool, default_amount=40_000, ttl_seconds=60, lease_seconds=60)
        answers = await asyncio.gather(
            *(qris.create(intake, location_id=location_id, price_id=price, now=dt.datetime.now(dt.UTC)) for _ in range(40)), return_exceptions=True
        )
    finally:
        await close_pool(pool)
    created = [a for a in answers if isinstance(a, qris.Created)]
    assert len(created) == 25 and all(isinstance(a, qris.QuotaExhausted) for a in answers if a not in created)
    assert len({a.tr_id for a in created}) == 25
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", price) == 25
    assert db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", location_id) == 25


async def test_a_caller_cancelled_while_its_group_is_pushed_leaves_the_push_to_the_others(engine: AsyncEngine, db: MariaDB, redis_server):
    """Two orders accepted in one group, whose one message waits on a stalled Redis; one caller
    is cancelled meanwhile (the process stopping, say): the other still gets its answer once
    Redis is back, and the group's message carries both purchases."""
    reseller_id = await new_reseller(engine, 100_000)
    pool = create_pool(get_settings(), 2, autocommit=True)
    redis = Redis.from_url(redis_server.url)
    intake = purchase_intake(pool, lease_seconds=60, pusher=Pusher(redis))

    def order() -> purchases.Order:
        return purchases.Order(produk_id=PULSA10.id, nomor_tujuan="081234567890", nominal=None, ref_id=uuid.uuid4().hex, reseller_id=reseller_id)

    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        cancelled, waiting = asyncio.create_task(intake(order())), asyncio.create_task(intake(order()))

        async def both_committed() -> bool:
            return db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 2

        await wait_until(both_committed, timeout=10, every=0.02)
        await asyncio.sleep(0.2)  # both now wait for the group's push
        cancelled.cancel()
        redis_server.process.send_signal(signal.SIGCONT)
        answer = await asyncio.wait_for(waiting, timeout=10)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        [payload] = (await redis.hgetall(f"{NAMESPACE}:{purchases.PURCHASE_QUEUE}.msgs")).values()
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await redis.aclose()
        await close_pool(pool)
    assert isinstance(answer, purchases.Accepted)
    message = json.loads(payload)
    assert message["actor_name"] == purchases.EXECUTE_ALL_ACTOR
    assert sorted(args[0] for args, _ in message["args"][0]) == [
        row["id"] for row in db.rows("SELECT id FROM purchase WHERE reseller_id = %s ORDER BY id", reseller_id)
    ]
