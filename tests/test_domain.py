"""The domain layer against the real database: money moves and transitions, each once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncmy
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.settings import get_settings
from db import outbox, raw, resellers
from db import purchases as purchase_queries
from db.engine import close_pool, create_engine, create_pool
from db.products import Product
from domain import purchases, qris
from domain.ledger import InsufficientSaldo, post_entry
from domain.provider_answers import ProviderAnswer
from tests.harness import MariaDB

PULSA10 = Product(id=1, kode="pulsa10", nama="Pulsa 10k", kategori="pulsa", harga=12000, nominal=10000, deskripsi="")


@pytest.fixture
async def engine(db: MariaDB) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(get_settings(), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pool(db: MariaDB) -> AsyncIterator[asyncmy.Pool]:
    """The hot paths' pool, as a worker's (db.raw.transaction)."""
    pool = create_pool(get_settings(), 2)
    yield pool
    await close_pool(pool)


async def new_reseller(engine: AsyncEngine, saldo: int) -> int:
    async with engine.begin() as conn:
        reseller_id = await resellers.insert(
            conn, nama="Uji", email=f"{uuid.uuid4().hex}@uji.id", hp=None, callback_url=None,
            api_key_hash=uuid.uuid4().bytes * 2, private_key_enc=b"x",
        )  # fmt: skip
        if saldo:
            await post_entry(conn, reseller_id, "saldo_awal", saldo)
    return reseller_id


@asynccontextmanager
async def autocommit_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of the engine on which each statement is its own transaction, as on the web's
    autocommit pool: what the intake procedures (accept, receive, create) are called on."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


async def accept_order(conn: raw.Connection, *, lease_seconds: int, **order: Any) -> purchases.Accepted:
    """One order (purchases.Order's fields) through domain.purchases.accept_all: its Accepted, or
    its refusal raised, as POST /beli answers it."""
    [answer] = await purchases.accept_all(conn, [purchases.Order(**order)], lease_seconds=lease_seconds)
    if isinstance(answer, Exception):
        raise answer
    return answer


async def create_session(conn: raw.Connection, *, location_id: int, price_id: int | None, now: dt.datetime, **options: Any) -> qris.Created:
    """A kiosk's create through domain.qris.create_all, one at a time: its Created, or its refusal
    raised, as POST /api/v1/transactions answers it. options: qris.create's (new_id)."""

    async def alone(creation: qris.Creation) -> qris.Created | Exception:
        [answer] = await qris.create_all(conn, [creation], default_amount=1, ttl_seconds=60, lease_seconds=60)
        return answer

    return await qris.create(alone, location_id=location_id, price_id=price_id, now=now, **options)


async def accept(engine: AsyncEngine, reseller_id: int, ref_id: str | None = None) -> int:
    async with autocommit_connection(engine) as conn:
        accepted = await accept_order(
            conn, reseller_id=reseller_id, produk_id=PULSA10.id, nomor_tujuan="081234567890", nominal=None, ref_id=ref_id, lease_seconds=60
        )
    return accepted.purchase_id


def new_location_with_price(db: MariaDB) -> tuple[int, int]:
    """A kiosk location and its price of 30,000 with a quota of 5."""
    name = f"Loc {uuid.uuid4().hex[:8]}"
    db.rows("INSERT INTO location (ml_name) VALUES (%s)", name)
    location_id = db.value("SELECT ml_id FROM location WHERE ml_name = %s", name)
    db.rows("INSERT INTO price (mp_name, mp_amount, mp_location_id, mp_quota) VALUES (%s, 30000, %s, 5)", name, location_id)
    return location_id, db.value("SELECT mp_id FROM price WHERE mp_name = %s", name)


async def test_a_debit_never_overdraws_and_changes_nothing_when_refused(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 10_000)
    outbox_before = db.value("SELECT MAX(id) FROM outbox")
    with pytest.raises(InsufficientSaldo):
        await accept(engine, reseller_id)
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 10_000
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 0
    assert db.value("SELECT MAX(id) FROM outbox") == outbox_before
    assert db.ledger_matches_saldo(reseller_id)


async def test_every_refused_accept_writes_nothing(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 10_000)
    refusals = {
        InsufficientSaldo: {"produk_id": 1, "nomor_tujuan": "081234567890"},
        purchases.UnknownProduct: {"produk_id": 999, "nomor_tujuan": "081234567890"},
        purchases.InvalidDestination: {"produk_id": 3, "nomor_tujuan": "0812"},
    }
    for refusal, body in refusals.items():
        async with autocommit_connection(engine) as conn:
            with pytest.raises(refusal):
                await accept_order(conn, reseller_id=reseller_id, nominal=None, ref_id=f"R-{refusal.__name__}", lease_seconds=60, **body)
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 0
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 10_000
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE reseller_id = %s", reseller_id) == 1  # saldo_awal only


async def test_accept_writes_purchase_ledger_and_outbox_together(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 30_000)
    purchase_id = await accept(engine, reseller_id, ref_id="R1")
    [entry] = db.rows("SELECT jenis, jumlah, saldo_akhir FROM ledger_entry WHERE purchase_id = %s", purchase_id)
    assert entry == {"jenis": "pembelian", "jumlah": -12000, "saldo_akhir": 18_000}
    assert db.value("SELECT actor_name FROM outbox WHERE job_key = %s", f"purchase:{purchase_id}") == "execute_purchase"
    with pytest.raises(purchases.DuplicateRefId):
        await accept(engine, reseller_id, ref_id="R1")
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 18_000


async def test_start_moves_pending_to_proses_once_and_keeps_the_job_from_falling_due_mid_call(engine, pool, db: MariaDB):
    reseller_id = await new_reseller(engine, 30_000)
    purchase_id = await accept(engine, reseller_id)
    job_key = f"purchase:{purchase_id}"
    db.rows("UPDATE outbox SET due_at = NOW(6) + INTERVAL 50 SECOND WHERE job_key = %s", job_key)
    far = db.value("SELECT due_at FROM outbox WHERE job_key = %s", job_key)
    async with raw.transaction(pool) as tx:
        started = await purchases.start(tx, purchase_id, lease_seconds=60)
    assert started is not None and started.status == "proses"
    assert db.value("SELECT due_at FROM outbox WHERE job_key = %s", job_key) == far  # more than half a lease away: not rewritten

    db.rows("UPDATE outbox SET due_at = NOW(6) - INTERVAL 1 SECOND WHERE job_key = %s", job_key)  # due: a worker took it late
    other = await accept(engine, reseller_id)
    db.rows("UPDATE outbox SET due_at = NOW(6) - INTERVAL 1 SECOND WHERE job_key = %s", f"purchase:{other}")
    async with raw.transaction(pool) as tx:
        again = await purchases.start(tx, purchase_id, lease_seconds=60)
    assert again is not None and again.status == "proses"
    seconds_left = db.value("SELECT TIMESTAMPDIFF(SECOND, NOW(6), due_at) FROM outbox WHERE job_key = %s", job_key)
    assert 55 <= seconds_left <= 60
    assert db.value("SELECT due_at < NOW(6) FROM outbox WHERE job_key = %s", f"purchase:{other}") == 1  # only its own row
    assert db.value("SELECT status FROM purchase WHERE id = %s", other) == "pending"


async def test_keep_due_moves_only_the_given_rows_that_are_near_due(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 50_000)
    near, far, other = [f"purchase:{await accept(engine, reseller_id)}" for _ in range(3)]
    db.rows("UPDATE outbox SET due_at = NOW(6) + INTERVAL 5 SECOND WHERE job_key IN (%s, %s)", near, other)
    db.rows("UPDATE outbox SET due_at = NOW(6) + INTERVAL 50 SECOND WHERE job_key = %s", far)
    before = {key: db.value("SELECT due_at FROM outbox WHERE job_key = %s", key) for key in (far, other)}
    async with engine.begin() as conn:
        await outbox.keep_due(conn, [near, far], lease_seconds=60)
    assert 55 <= db.value("SELECT TIMESTAMPDIFF(SECOND, NOW(6), due_at) FROM outbox WHERE job_key = %s", near) <= 60
    assert {key: db.value("SELECT due_at FROM outbox WHERE job_key = %s", key) for key in (far, other)} == before


async def test_keep_due_skips_rows_another_transaction_holds_instead_of_waiting(engine, pool, db: MariaDB):
    reseller_id = await new_reseller(engine, 50_000)
    held, free = [f"purchase:{await accept(engine, reseller_id)}" for _ in range(2)]
    db.rows("UPDATE outbox SET due_at = NOW(6) + INTERVAL 5 SECOND WHERE job_key IN (%s, %s)", held, free)
    before = db.value("SELECT due_at FROM outbox WHERE job_key = %s", held)
    async with raw.transaction(pool) as holder:  # a settle, say, that has the row locked
        await raw.run(holder, raw.sql("SELECT id FROM outbox WHERE job_key = :key FOR UPDATE"), {"key": held})
        async with engine.begin() as conn:
            await asyncio.wait_for(outbox.keep_due(conn, [held, free], lease_seconds=60), timeout=2)
    assert 55 <= db.value("SELECT TIMESTAMPDIFF(SECOND, NOW(6), due_at) FROM outbox WHERE job_key = %s", free) <= 60
    assert db.value("SELECT due_at FROM outbox WHERE job_key = %s", held) == before


async def test_accept_by_api_key_checks_the_key_in_the_same_call(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 30_000)
    key_hash = db.value("SELECT api_key_hash FROM reseller WHERE id = %s", reseller_id)
    order = {"produk_id": PULSA10.id, "nomor_tujuan": "081234567890", "nominal": None, "lease_seconds": 60}
    async with autocommit_connection(engine) as conn:
        accepted = await accept_order(conn, api_key_hash=key_hash, ref_id="K1", **order)
    assert db.value("SELECT reseller_id FROM purchase WHERE id = %s", accepted.purchase_id) == reseller_id
    assert accepted.saldo == 18_000
    db.rows("UPDATE reseller SET require_signature = TRUE WHERE id = %s", reseller_id)
    refusals = {purchases.SignatureRequired: key_hash, purchases.UnknownApiKey: b"\0" * 32}
    for refusal, refused_hash in refusals.items():
        async with autocommit_connection(engine) as conn:
            with pytest.raises(refusal):
                await accept_order(conn, api_key_hash=refused_hash, ref_id=f"R-{refusal.__name__}", **order)
    for neither_or_both in ({}, {"reseller_id": reseller_id, "api_key_hash": key_hash}):
        async with autocommit_connection(engine) as conn:
            with pytest.raises(ValueError):
                await accept_order(conn, ref_id="X", **neither_or_both, **order)
    assert db.value("SELECT COUNT(*) FROM purchase WHERE reseller_id = %s", reseller_id) == 1
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 18_000


async def test_settle_gagal_refunds_once_however_often_it_is_called(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 12_000)
    purchase_id = await accept(engine, reseller_id)
    results = []
    for _ in range(3):
        async with engine.begin() as conn:
            purchase = await purchase_queries.by_id(conn, purchase_id)
            results.append(await purchases.settle(conn, purchase, sukses=False, sn=None, message="Transaksi Gagal", rc="02", lease_seconds=60))
    assert results == [True, False, False]
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 12_000
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase_id) == 1
    assert db.value("SELECT COUNT(*) FROM outbox WHERE job_key = %s", f"purchase:{purchase_id}") == 0
    # Even a bug that skipped the state guard could not refund twice: the schema refuses it.
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await post_entry(conn, reseller_id, "refund", 12_000, purchase_id=purchase_id)


async def test_a_group_start_moves_only_its_pending_purchases_and_answers_each_as_it_stands(engine, pool, db: MariaDB):
    reseller_id = await new_reseller(engine, 60_000)
    pending, ended, outside = [await accept(engine, reseller_id) for _ in range(3)]
    db.rows("UPDATE purchase SET status = 'sukses' WHERE id = %s", ended)
    async with raw.transaction(pool) as tx:
        started = await purchases.start_all(tx, [ended, pending, 2**62], lease_seconds=60)
    assert {purchase_id: p.status for purchase_id, p in started.items()} == {pending: "proses", ended: "sukses"}
    assert db.value("SELECT status FROM purchase WHERE id = %s", outside) == "pending"


async def test_a_group_settle_ends_each_purchase_once_refunds_gagal_and_schedules_callbacks(engine, pool, db: MariaDB):
    plain, with_callback = await new_reseller(engine, 36_000), await new_reseller(engine, 36_000)
    db.rows("UPDATE reseller SET callback_url = 'https://cb.example/loket' WHERE id = %s", with_callback)
    sukses, gagal, ended = [await accept(engine, plain) for _ in range(3)]
    theirs = await accept(engine, with_callback)
    async with raw.transaction(pool) as tx:
        assert await purchases.start_all(tx, [sukses, gagal, ended, theirs], lease_seconds=60)
    async with raw.transaction(pool) as tx:
        settled = await purchases.settle(tx, await purchase_queries.by_id(tx, ended), sukses=True, sn="SN0", message="ok", rc="00", lease_seconds=60)
    assert settled
    group = [
        purchases.Settlement(sukses, True, "SN1", "Transaksi Sukses", "00"),
        purchases.Settlement(theirs, False, "ignored", "Transaksi Gagal", "02"),
        purchases.Settlement(gagal, False, None, "Transaksi Gagal – nomor salah ✗", "02"),
        purchases.Settlement(ended, False, None, "late", "02"),
    ]
    async with raw.transaction(pool) as tx:
        ended_here = await purchases.settle_all(tx, group, lease_seconds=60)
    delivery_id = db.value("SELECT id FROM callback_delivery WHERE purchase_id = %s", theirs)
    assert ended_here == {sukses: None, gagal: None, theirs: purchases.callbacks.deliver_job(delivery_id)}
    rows = {r["id"]: (r["status"], r["sn"]) for r in db.rows(
        "SELECT id, status, sn FROM purchase WHERE id IN (%s, %s, %s, %s)", sukses, gagal, ended, theirs
    )}  # fmt: skip
    assert rows == {sukses: ("sukses", "SN1"), gagal: ("gagal", None), ended: ("sukses", "SN0"), theirs: ("gagal", None)}
    assert db.value("SELECT hasil_eksekusi FROM purchase WHERE id = %s", gagal) == "Transaksi Gagal – nomor salah ✗"
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", plain) == 36_000 - 2 * 12_000
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", with_callback) == 36_000
    assert db.ledger_matches_saldo(plain) and db.ledger_matches_saldo(with_callback)
    keys = [f"purchase:{p}" for p in (sukses, gagal, ended, theirs)]
    assert db.value("SELECT COUNT(*) FROM outbox WHERE job_key IN (%s, %s, %s, %s)", *keys) == 0
    assert db.value("SELECT COUNT(*) FROM outbox WHERE job_key = %s", f"callback:{delivery_id}") == 1


async def test_group_settles_refunding_the_same_resellers_in_opposite_orders_do_not_deadlock(engine, db: MariaDB):
    first, second = await new_reseller(engine, 24_000), await new_reseller(engine, 24_000)
    first_a, second_a, second_b, first_b = [await accept(engine, r) for r in (first, second, second, first)]
    gagal = [purchases.Settlement(p, False, None, "Transaksi Gagal", "02") for p in (first_a, second_a, second_b, first_b)]
    group_pool = create_pool(get_settings(), 3)
    try:
        async with raw.transaction(group_pool) as blocker:
            await raw.run(blocker, raw.sql("SELECT saldo FROM reseller WHERE id = :id FOR UPDATE"), {"id": first})

            async def settle(group: list[purchases.Settlement]) -> dict[int, object]:
                async with raw.transaction(group_pool) as tx:
                    return await purchases.settle_all(tx, group, lease_seconds=60)

            # Both groups queue on the first reseller's row, the first group ahead. Taken in the
            # groups' own order, the second would hold the second reseller's row meanwhile, and
            # the two would deadlock once the blocker lets go.
            groups = [asyncio.create_task(settle(gagal[:2]))]
            await asyncio.sleep(0.25)
            groups.append(asyncio.create_task(settle(gagal[2:])))
            await asyncio.sleep(0.25)
        ended = await asyncio.gather(*groups)
    finally:
        await close_pool(group_pool)
    assert [set(e) for e in ended] == [{first_a, second_a}, {second_b, first_b}]
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", first) == 24_000
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", second) == 24_000
    assert db.ledger_matches_saldo(first) and db.ledger_matches_saldo(second)


async def test_a_late_gagal_after_sukses_changes_nothing(engine, db: MariaDB):
    reseller_id = await new_reseller(engine, 12_000)
    purchase_id = await accept(engine, reseller_id)
    async with engine.begin() as conn:
        purchase = await purchase_queries.by_id(conn, purchase_id)
        assert await purchases.apply_provider_answer(conn, purchase, ProviderAnswer("Sukses", "00", "SN1", "ok"), 60)
        assert not await purchases.apply_provider_answer(conn, purchase, ProviderAnswer("Gagal", "02", None, "late"), 60)
    assert db.rows("SELECT status, sn FROM purchase WHERE id = %s", purchase_id) == [{"status": "sukses", "sn": "SN1"}]
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 0


@pytest.mark.parametrize("rc", ["41", "45", "85", "99", "03"])
async def test_rejections_and_pending_keep_the_purchase_open(engine, db: MariaDB, rc):
    reseller_id = await new_reseller(engine, 12_000)
    purchase_id = await accept(engine, reseller_id)
    status = "Pending" if rc in ("99", "03") else "Gagal"
    async with engine.begin() as conn:
        purchase = await purchase_queries.by_id(conn, purchase_id)
        assert not await purchases.apply_provider_answer(conn, purchase, ProviderAnswer(status, rc, None, "wait"), 60)
    assert db.value("SELECT status FROM purchase WHERE id = %s", purchase_id) == "pending"
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", purchase_id) == 0


async def test_a_taken_qris_external_id_is_replaced_and_the_quota_slot_taken_once(engine, db: MariaDB):
    location_id, price_id = new_location_with_price(db)
    now = dt.datetime.now(dt.UTC)
    taken = qris.new_external_id(location_id, now)
    session = {"location_id": location_id, "price_id": price_id, "now": now}
    async with autocommit_connection(engine) as conn:
        await create_session(conn, **session, new_id=lambda *_: taken)

    fresh = qris.new_external_id(location_id, now)
    ids = iter([taken, taken, fresh])
    async with autocommit_connection(engine) as conn:
        created = await create_session(conn, **session, new_id=lambda *_: next(ids))
    assert created.external_id == fresh
    assert db.value("SELECT tr_status FROM qris_transaction WHERE tr_external_id = %s", fresh) == "PENDING"
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", price_id) == 2  # one slot per transaction

    with pytest.raises(RuntimeError):
        async with autocommit_connection(engine) as conn:
            await create_session(conn, **session, new_id=lambda *_: taken)
    assert db.value("SELECT mp_used FROM price WHERE mp_id = %s", price_id) == 2
    assert db.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_location_id = %s", location_id) == 2


async def test_a_group_attach_stores_each_code_once_and_only_on_pending_transactions(engine, pool, db: MariaDB):
    location_id, price_id = new_location_with_price(db)
    waiting, coded, failed = [], [], []
    for group in (waiting, coded, failed):
        async with autocommit_connection(engine) as conn:
            group.append((await create_session(conn, location_id=location_id, price_id=price_id, now=dt.datetime.now(dt.UTC))).tr_id)
    [waiting], [coded], [failed] = waiting, coded, failed
    db.rows("UPDATE qris_transaction SET tr_xendit_id = 'qr-first', tr_qris_string = 'first' WHERE tr_id = %s", coded)
    async with raw.transaction(pool) as conn:
        assert await qris.fail(conn, failed, "gateway refused")

    codes = [qris.QrAttachment(tr_id, f"qr-{tr_id}", f"0002-{tr_id}", None) for tr_id in (waiting, coded, failed)]
    async with raw.transaction(pool) as conn:
        assert await qris.attach_qr_codes(conn, codes) == {waiting}
    async with raw.transaction(pool) as conn:  # the same codes again: a duplicate job
        assert await qris.attach_qr_codes(conn, codes) == set()

    stored = {r["tr_id"]: (r["tr_xendit_id"], r["tr_qris_string"]) for r in db.rows(
        "SELECT tr_id, tr_xendit_id, tr_qris_string FROM qris_transaction WHERE tr_id IN (%s, %s, %s)", waiting, coded, failed
    )}  # fmt: skip
    assert stored == {waiting: (f"qr-{waiting}", f"0002-{waiting}"), coded: ("qr-first", "first"), failed: (None, None)}
    keys = [qris.create_qr_job(tr_id).job_key for tr_id in (waiting, coded, failed)]
    assert db.value("SELECT COUNT(*) FROM outbox WHERE job_key IN (%s, %s, %s)", *keys) == 0


async def test_purchases_are_found_by_whole_provider_refs_only(engine, pool, db: MariaDB):
    """A webhook group's lookup (db.purchases.by_provider_refs): a callback naming a longer ref
    that starts with a purchase's finds nothing."""
    purchase_id = await accept(engine, await new_reseller(engine, 30_000))
    ref = db.value("SELECT provider_ref FROM purchase WHERE id = %s", purchase_id)
    async with raw.transaction(pool) as conn:
        assert await purchase_queries.by_provider_refs(conn, [ref + "Z" * 30]) == {}
        found = await purchase_queries.by_provider_refs(conn, [ref, "LKnobody"])
    assert list(found) == [ref] and found[ref].id == purchase_id


async def test_a_purchase_twice_in_one_settle_group_ends_once_as_its_first_settlement_says(engine, pool, db: MariaDB):
    """Two answers for one purchase in the same group (a job pushed again ran beside its first
    copy): the first ends it, the second finds it ended; one refund at most."""
    reseller_id = await new_reseller(engine, 24_000)
    twice, other = await accept(engine, reseller_id), await accept(engine, reseller_id)
    group = [
        purchases.Settlement(twice, False, None, "Transaksi Gagal", "02"),
        purchases.Settlement(other, True, "SN2", "Transaksi Sukses", "00"),
        purchases.Settlement(twice, True, "SN1", "Transaksi Sukses", "00"),
        purchases.Settlement(twice, False, None, "Transaksi Gagal", "02"),
    ]
    async with raw.transaction(pool) as tx:
        ended_here = await purchases.settle_all(tx, group, lease_seconds=60)
    assert ended_here == {twice: None, other: None}
    assert [(r["id"], r["status"], r["sn"]) for r in db.rows("SELECT id, status, sn FROM purchase WHERE reseller_id = %s ORDER BY id", reseller_id)] == [
        (twice, "gagal", None), (other, "sukses", "SN2"),
    ]  # fmt: skip
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE purchase_id = %s AND jenis = 'refund'", twice) == 1
    assert db.value("SELECT saldo FROM reseller WHERE id = %s", reseller_id) == 24_000 - 12_000
    assert db.ledger_matches_saldo(reseller_id)
