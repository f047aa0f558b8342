"""The suite's own safety: it refuses to touch what is not its own, and its money checker catches
every kind of violation it exists for."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import redis

from db.apply import apply_schema
from tests import isolation
from tests.harness import LoketStack, MariaDB, wait_quiet
from tests.invariants import CHECKS, money_violations

ROOT = Path(__file__).resolve().parent.parent


def run_suite(**environ: str) -> subprocess.CompletedProcess[str]:
    """`make test`'s pytest, as an operator would start it with `environ` exported."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_NAMESPACE")} | environ
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_domain.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def canary_database(db: MariaDB) -> Iterator[MariaDB]:
    """An operator's database, outside the names reserved for tests, with a row that must survive."""
    canary = MariaDB(db.url.rsplit("/", 1)[0] + f"/loket_canary_{uuid.uuid4().hex[:8]}")
    conn = pymysql.connect(**canary.params, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{canary.name}`")
    conn.close()
    canary.rows("CREATE TABLE reseller (id INT PRIMARY KEY, saldo BIGINT)")
    canary.rows("INSERT INTO reseller VALUES (1, 250000)")
    yield canary
    canary.drop()


def test_an_exported_production_database_url_stops_the_suite_before_it_drops_anything(canary_database: MariaDB):
    url = f"mysql+asyncmy://root@127.0.0.1:3306/{canary_database.name}"
    done = run_suite(DATABASE_URL=url)
    assert done.returncode != 0
    assert "DATABASE_URL" in done.stdout + done.stderr and canary_database.name in done.stdout + done.stderr
    assert "passed" not in done.stdout
    assert canary_database.rows("SELECT id, saldo FROM reseller") == [{"id": 1, "saldo": 250000}]


def test_an_exported_redis_namespace_or_url_stops_the_suite_before_it_deletes_a_key():
    client = redis.Redis.from_url(isolation.DEFAULT_REDIS_URL)
    key = f"loket:canary-{uuid.uuid4().hex[:8]}"
    client.set(key, "operator's")
    try:
        for environ in ({"REDIS_NAMESPACE": "loket"}, {"REDIS_URL": isolation.DEFAULT_REDIS_URL}):
            done = run_suite(**environ)
            assert done.returncode != 0, environ
            assert next(iter(environ)) in done.stdout + done.stderr
            assert client.get(key) == b"operator's"
    finally:
        client.delete(key)


def test_names_under_the_reserved_prefixes_and_the_server_choices_are_accepted():
    assert isolation.refusals({"DATABASE_URL": "mysql+asyncmy://root@db:3306/loket_test_ci", "REDIS_NAMESPACE": "loket-test-ci"}) == []
    assert isolation.refusals({"LOKET_TEST_MARIADB": "mysql+asyncmy://root@db:3306", "LOKET_TEST_REDIS_URL": "redis://r:6379/3"}) == []
    assert len(isolation.refusals({"LOKET_TEST_MARIADB": "mysql+asyncmy://root@db:3306/loket"})) == 1
    claimed = isolation.session_environ({"LOKET_TEST_MARIADB": "mysql+asyncmy://root@db:3306/"}, "42")
    assert claimed["DATABASE_URL"] == "mysql+asyncmy://root@db:3306/loket_test_42"
    assert claimed["REDIS_NAMESPACE"] == "loket-test-42"
    assert isolation.session_environ({"DATABASE_URL": "mysql+asyncmy://root@db:3306/loket"}, "42") == {}


def test_the_suite_itself_runs_on_its_own_names_only(db: MariaDB):
    assert db.name.startswith(isolation.DATABASE_PREFIX)
    assert os.environ["REDIS_NAMESPACE"].startswith(isolation.NAMESPACE_PREFIX)


# The money checker: a scratch database with money that is right, then each kind of violation.

CLEAN = [
    "INSERT INTO reseller (id, nama, email, saldo, api_key_hash, private_key_enc) VALUES (1, 'Toko', 'a@uji.id', 92000, UNHEX(SHA2('k', 256)), 'x')",
    "INSERT INTO ledger_entry (id, reseller_id, jenis, jumlah, saldo_akhir) VALUES (1, 1, 'saldo_awal', 100000, 100000)",
    "INSERT INTO purchase (id, reseller_id, produk_id, kode, nomor_tujuan, harga, status, provider_ref) "
    "VALUES (1, 1, 1, 'X', '0812', 5000, 'sukses', 'p1'), (2, 1, 1, 'X', '0812', 3000, 'gagal', 'p2'), (3, 1, 1, 'X', '0812', 6000, 'proses', 'p3')",
    "INSERT INTO ledger_entry (id, reseller_id, jenis, jumlah, saldo_akhir, purchase_id) VALUES "
    "(2, 1, 'pembelian', -5000, 95000, 1), (3, 1, 'pembelian', -3000, 92000, 2), (4, 1, 'refund', 3000, 95000, 2), (5, 1, 'pembelian', -6000, 89000, 3)",
    "INSERT INTO qris_transaction (tr_id, tr_external_id, tr_reseller_id, tr_amount, tr_status, tr_expired_at) VALUES "
    "(1, 'd1', 1, 3000, 'COMPLETED', NOW()), (2, 'd2', 1, 7000, 'PENDING', NOW()), (3, 'd3', 1, 7000, 'EXPIRED', NOW())",
    "INSERT INTO ledger_entry (id, reseller_id, jenis, jumlah, saldo_akhir, qris_id) VALUES (6, 1, 'deposit', 3000, 92000, 1)",
]

# Each violation: what it plants on top of CLEAN, and the rule that must catch it.
VIOLATIONS = {
    "saldo off its ledger": (["UPDATE reseller SET saldo = 92001"], "saldo differs"),
    "negative saldo": (
        ["SET SESSION check_constraint_checks = 0", "UPDATE reseller SET saldo = -1",
         "INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir) VALUES (1, 'koreksi', -92001, -1)"],
        "negative saldo",
    ),
    "a broken running balance": (["UPDATE ledger_entry SET saldo_akhir = 1 WHERE id = 3"], "running sum"),
    "a purchase never debited": (
        ["INSERT INTO purchase (id, reseller_id, produk_id, kode, nomor_tujuan, harga, status, provider_ref) VALUES (4, 1, 1, 'X', '0812', 1000, 'pending', 'p4')"],
        "not debited exactly once",
    ),
    "a debit of the wrong amount": (
        ["UPDATE ledger_entry SET jumlah = -4000, saldo_akhir = 96000 WHERE id = 2", "UPDATE reseller SET saldo = 93000"],
        "not debited exactly once",
    ),
    "a refund of a sukses purchase": (
        ["INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, purchase_id) VALUES (1, 'refund', 5000, 97000, 1)",
         "UPDATE reseller SET saldo = 97000"],
        "refund not exactly once",
    ),
    "a gagal purchase never refunded": (
        ["DELETE FROM ledger_entry WHERE id = 4", "UPDATE ledger_entry SET saldo_akhir = saldo_akhir - 3000 WHERE id > 4",
         "UPDATE reseller SET saldo = 89000"],
        "refund not exactly once",
    ),
    "a refund of the wrong amount": (
        ["UPDATE ledger_entry SET jumlah = 3500 WHERE id = 4", "UPDATE ledger_entry SET saldo_akhir = saldo_akhir + 500 WHERE id >= 4",
         "UPDATE reseller SET saldo = 92500"],
        "refund not exactly once",
    ),
    "a debit of another reseller's purchase": (
        ["INSERT INTO reseller (id, nama, email, saldo, api_key_hash, private_key_enc) VALUES (2, 'Lain', 'b@uji.id', 0, UNHEX(SHA2('l', 256)), 'x')",
         "UPDATE ledger_entry SET reseller_id = 2, saldo_akhir = -6000 WHERE id = 5"],
        "another reseller",
    ),
    "a deposit credited of the wrong amount": (
        ["UPDATE ledger_entry SET jumlah = 30000, saldo_akhir = 119000 WHERE id = 6", "UPDATE reseller SET saldo = 119000"],
        "deposit not credited exactly when COMPLETED",
    ),
    "a pending deposit credited": (
        ["INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, qris_id) VALUES (1, 'deposit', 7000, 99000, 2)",
         "UPDATE reseller SET saldo = 99000"],
        "deposit not credited exactly when COMPLETED",
    ),
    "a completed deposit never credited": (
        ["UPDATE qris_transaction SET tr_status = 'COMPLETED' WHERE tr_id = 3"],
        "deposit not credited exactly when COMPLETED",
    ),
    "a kiosk payment credited to a reseller": (
        ["INSERT INTO location (ml_id, ml_name) VALUES (1, 'Kiosk')",
         "INSERT INTO qris_transaction (tr_id, tr_external_id, tr_location_id, tr_amount, tr_status, tr_expired_at) VALUES (4, 'k1', 1, 20000, 'COMPLETED', NOW())",
         "INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, qris_id) VALUES (1, 'deposit', 20000, 112000, 4)",
         "UPDATE reseller SET saldo = 112000"],
        "deposit entry of no deposit",
    ),
}


@pytest.fixture(scope="module")
def scratch(db: MariaDB) -> Iterator[MariaDB]:
    url = f"{db.url}_money_{uuid.uuid4().hex[:6]}"
    apply_schema(url, drop_first=True)
    scratch = MariaDB(url)
    yield scratch
    scratch.drop()


def plant(db: MariaDB, statements: list[str]) -> None:
    conn = pymysql.connect(**db.params, database=db.name, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in ("ledger_entry", "purchase", "qris_transaction", "reseller"):
                cur.execute(f"DELETE FROM {table}")
            for statement in CLEAN + statements:
                cur.execute(statement)
    finally:
        conn.close()


def test_the_checker_finds_nothing_wrong_with_right_money(scratch: MariaDB):
    plant(scratch, [])
    assert money_violations(scratch) == []


@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_the_checker_catches(scratch: MariaDB, violation: str):
    statements, rule = VIOLATIONS[violation]
    plant(scratch, statements)
    found = money_violations(scratch)
    assert any(rule in line for line in found), found
    assert any(rule in name for name in CHECKS), rule


# The quiet the "once" assertions wait for: it must not be reached while work is left.


async def test_the_stack_is_not_quiet_while_a_job_is_open_or_a_message_is_unacknowledged(stack: LoketStack):
    await wait_quiet(stack)
    stack.db.rows("INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at) VALUES ('quiet-probe', 'nobody', 'nothing', '[]', NOW(6) + INTERVAL 1 HOUR)")
    try:
        with pytest.raises(AssertionError):
            await wait_quiet(stack, timeout=1.5)
    finally:
        stack.db.rows("DELETE FROM outbox WHERE job_key = 'quiet-probe'")
    await wait_quiet(stack)
    client = redis.Redis.from_url(stack.processes.env["REDIS_URL"])
    key = f"{os.environ['REDIS_NAMESPACE']}:nobody.msgs"
    client.hset(key, "probe", "{}")
    try:
        with pytest.raises(AssertionError):
            await wait_quiet(stack, timeout=1.5)
    finally:
        client.delete(key)
    await wait_quiet(stack)
