"""Schema migrations (Alembic) on the real MariaDB: a fresh database, one made before migrations
existed, one made by the schema.sql of the baseline, a second upgrade, and rows that a new UNIQUE
key would refuse."""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from db.apply import ROOT, apply_schema, apply_snapshot, create_database, server_connection
from db.sqlfile import file_statements
from tests.harness import MariaDB

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
BEFORE_MIGRATIONS = FIXTURES / "schema_before_migrations.sql"
BASELINE = ROOT / "db" / "migrations" / "baseline"
HEAD = "0003"

# What 0002 logs as missing on a database made by BEFORE_MIGRATIONS.
REPAIRED = [
    "column reseller.require_signature",
    "column ledger_entry.qris_id",
    "unique key ledger_entry.uq_ledger_deposit",
    "NULL allowed in qris_transaction.tr_location_id",
    "column qris_transaction.tr_reseller_id",
    "column qris_transaction.tr_gateway",
    "key qris_transaction.ix_qris_reseller",
]

# A working database as an old deployment holds it: two resellers, purchases in every state, their
# ledger (a manual deposit, debits, a refund), a paid kiosk session with its photos, pending jobs.
OLD_ROWS = [
    "INSERT INTO reseller (id, nama, email, saldo, api_key_hash, private_key_enc, callback_url) VALUES"
    " (1, 'Toko Satu', 'satu@loket.test', 138000, UNHEX(SHA2('k1', 256)), UNHEX('00ff'), 'https://satu.test/cb'),"
    " (2, 'Toko Dua', 'dua@loket.test', 8000, UNHEX(SHA2('k2', 256)), UNHEX('01fe'), NULL)",
    "INSERT INTO purchase (id, reseller_id, ref_id, produk_id, kode, nomor_tujuan, nominal, harga, status, provider_ref, sn) VALUES"
    " (1, 1, 'a-1', 1, 'pulsa10', '081200000001', 10000, 12000, 'sukses', 'LKT000000000000000000001', 'SN1'),"
    " (2, 1, 'a-2', 2, 'pulsa20', '081200000002', 20000, 22000, 'gagal', 'LKT000000000000000000002', NULL),"
    " (3, 2, 'b-1', 1, 'pulsa10', '081200000003', 10000, 12000, 'proses', 'LKT000000000000000000003', NULL)",
    "INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, purchase_id, keterangan) VALUES"
    " (1, 'saldo_awal', 100000, 100000, NULL, 'opening'),"
    " (1, 'deposit', 50000, 150000, NULL, 'transfer BCA'),"
    " (1, 'pembelian', -12000, 138000, 1, NULL),"
    " (1, 'pembelian', -22000, 116000, 2, NULL),"
    " (1, 'refund', 22000, 138000, 2, NULL),"
    " (2, 'saldo_awal', 20000, 20000, NULL, 'opening'),"
    " (2, 'pembelian', -12000, 8000, 3, NULL)",
    "INSERT INTO location (ml_id, ml_name) VALUES (1, 'Mall Satu')",
    "INSERT INTO price (mp_id, mp_name, mp_amount, mp_location_id, mp_quota, mp_used) VALUES (1, 'Strip', 25000, 1, 10, 1)",
    "INSERT INTO qris_transaction (tr_id, tr_external_id, tr_location_id, tr_price_id, tr_amount, tr_status, tr_xendit_id, tr_expired_at, tr_paid_at)"
    " VALUES (1, 'kiosk-1', 1, 1, 25000, 'COMPLETED', 'qr_1', NOW(6), NOW(6)), (2, 'kiosk-2', 1, 1, 25000, 'EXPIRED', 'qr_2', NOW(6), NULL)",
    "INSERT INTO photo_delivery (pd_tr_id, pd_email, pd_photos, pd_photo_count) VALUES (1, 'tamu@loket.test', '[\"a.jpg\", \"b.jpg\"]', 2)",
    "INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at) VALUES ('purchase:3', 'purchases', 'execute_purchase', '[3]', NOW(6))",
    "INSERT INTO webhook_event (source, event_key, reference, payload, outcome) VALUES ('digiflazz', REPEAT('a', 64), 'LKT000000000000000000001', '{}', 'applied')",
    "INSERT INTO callback_delivery (id, delivery_id, reseller_id, purchase_id, url, status, attempts) VALUES (1, REPEAT('d', 32), 1, 1, 'https://satu.test/cb', 'delivered', 1)",
    "INSERT INTO callback_attempt (delivery_id, attempt, status_code, duration_ms) VALUES (1, 1, 200, 35)",
]

SUMS = {
    "saldo": "SELECT SUM(saldo) FROM reseller",
    "ledger": "SELECT SUM(jumlah) FROM ledger_entry",
    "purchases": "SELECT SUM(harga) FROM purchase",
    "payments": "SELECT SUM(tr_amount) FROM qris_transaction",
}


@pytest.fixture
def scratch() -> Iterator[Callable[[str], MariaDB]]:
    """Databases of this test's own, named by a purpose, dropped afterwards."""
    made: list[MariaDB] = []

    def make(purpose: str) -> MariaDB:
        made.append(MariaDB(f"{os.environ['DATABASE_URL']}_mig_{purpose}_{uuid.uuid4().hex[:6]}"))
        return made[-1]

    yield make
    for database in made:
        database.drop()


def load(database: MariaDB, statements: list[str]) -> None:
    """Create database if needed and run statements in it, as the mysql client would."""
    create_database(database.url)
    conn = server_connection(database.url, database.name)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def shape(database: MariaDB) -> dict[str, list[dict[str, Any]]]:
    """What information_schema says of database's tables, columns, keys, constraints and routines
    (the version table aside)."""
    queries = {
        "tables": "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        "columns": "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLLATION_NAME"
        " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s",
        "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s",
        "constraints": "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
        "checks": "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
        "foreign keys": "SELECT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE"
        " FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
        "routines": "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
        "triggers": "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
    }
    described = {}
    for what, query in queries.items():
        found = [row for row in database.rows(query, database.name) if row.get("TABLE_NAME") != "alembic_version"]
        described[what] = sorted(found, key=lambda row: tuple(str(value) for value in row.values()))
    return described


def assert_same_shape(built: MariaDB, snapshot: MariaDB) -> None:
    """built has exactly the schema that schema.sql and procedures.sql describe (loaded into snapshot)."""
    apply_snapshot(snapshot.url, drop_first=True)
    expected, found = shape(snapshot), shape(built)
    for what in expected:
        missing = [row for row in expected[what] if row not in found[what]]
        extra = [row for row in found[what] if row not in expected[what]]
        assert not missing and not extra, f"{what}: missing {missing}, not in the snapshot {extra}"
    assert built.rows("SELECT * FROM produk ORDER BY id") == snapshot.rows("SELECT * FROM produk ORDER BY id")


def contents(database: MariaDB, columns_of: dict[str, list[str]]) -> dict[str, Any]:
    """Every row of each table, in the columns given (those that existed before an upgrade), and the sums of money."""
    rows = {table: database.rows(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1") for table, columns in columns_of.items()}
    return {"rows": rows, "sums": {name: database.value(query) for name, query in SUMS.items()}}


def columns_now(database: MariaDB) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in database.rows(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME <> 'alembic_version'"
        " ORDER BY TABLE_NAME, ORDINAL_POSITION", database.name,
    ):  # fmt: skip
        found.setdefault(row["TABLE_NAME"], []).append(row["COLUMN_NAME"])
    return found


def version(database: MariaDB) -> list[str]:
    return [row["version_num"] for row in database.rows("SELECT version_num FROM alembic_version")]


def repairs_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("db.migrations")]


def test_a_fresh_database_upgrades_to_head_with_the_alembic_command_and_matches_the_snapshot(scratch):
    fresh, snapshot = scratch("fresh"), scratch("snapshot")
    create_database(fresh.url)
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env={**os.environ, "DATABASE_URL": fresh.url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Running upgrade 0001 -> 0002" in done.stderr
    assert version(fresh) == [HEAD]
    assert_same_shape(fresh, snapshot)


def test_a_database_made_before_migrations_upgrades_with_nothing_lost_and_every_constraint(scratch, caplog):
    old, snapshot = scratch("old"), scratch("snapshot")
    load(old, file_statements(BEFORE_MIGRATIONS) + OLD_ROWS)
    assert "require_signature" not in columns_now(old)["reseller"]
    before = columns_now(old)
    held = contents(old, before)

    with caplog.at_level(logging.INFO, logger="db.migrations"):
        apply_schema(old.url)

    logged = repairs_logged(caplog)
    for what in REPAIRED:
        assert any(what in message for message in logged), (what, logged)
    assert version(old) == [HEAD]
    assert contents(old, before) == held
    assert_same_shape(old, snapshot)
    assert old.value("SELECT COUNT(*) FROM qris_transaction WHERE tr_gateway = 'xendit'") == 2
    assert old.value("SELECT require_signature FROM reseller WHERE id = 1") == 0

    # The guarantee the old database lacked: a deposit is credited at most once, through the app's procedure.
    old.rows("INSERT INTO qris_transaction (tr_id, tr_external_id, tr_reseller_id, tr_amount, tr_status, tr_gateway, tr_expired_at)"
             " VALUES (3, 'deposit-1', 2, 20000, 'COMPLETED', 'midtrans', NOW(6))")  # fmt: skip
    conn = server_connection(old.url, old.name)
    try:
        with conn.cursor() as cur:
            conn.begin()
            cur.execute("CALL post_ledger_entry(2, 'deposit', 20000, NULL, 3, 'QRIS deposit', @saldo)")
            conn.commit()
            conn.begin()
            with pytest.raises(pymysql.err.IntegrityError, match="uq_ledger_deposit"):
                cur.execute("CALL post_ledger_entry(2, 'deposit', 20000, NULL, 3, 'QRIS deposit', @saldo)")
            conn.rollback()
    finally:
        conn.close()
    assert old.value("SELECT COUNT(*) FROM ledger_entry WHERE qris_id = 3") == 1
    assert old.value("SELECT saldo FROM reseller WHERE id = 2") == 28000
    assert old.ledger_matches_saldo(2)


def test_a_database_made_by_the_baseline_schema_sql_upgrades_without_changes(scratch, caplog):
    """The state before migrations existed at its newest: today's files loaded by hand, no version table."""
    current, snapshot = scratch("current"), scratch("snapshot")
    load(current, file_statements(BASELINE / "schema.sql", BASELINE / "procedures.sql") + OLD_ROWS)
    before = columns_now(current)
    held = contents(current, before)

    with caplog.at_level(logging.INFO, logger="db.migrations"):
        apply_schema(current.url)

    assert repairs_logged(caplog) == ["nothing to repair: every column and key of schema.sql is present"]
    after = columns_now(current)
    assert {table: after[table] for table in before} == before  # every table as it was
    assert set(after) - set(before) == {"staff_token_revocation"}  # what the revisions after 0002 create
    assert contents(current, before) == held
    assert version(current) == [HEAD]
    assert_same_shape(current, snapshot)


def test_upgrading_twice_changes_nothing(scratch, caplog):
    old = scratch("twice")
    load(old, file_statements(BEFORE_MIGRATIONS) + OLD_ROWS)
    apply_schema(old.url)
    tables = [row["TABLE_NAME"] for row in old.rows("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", old.name)]
    first = {
        "shape": shape(old),
        "ddl": {table: old.rows(f"SHOW CREATE TABLE `{table}`") for table in tables},
        "rows": contents(old, columns_now(old)),
    }
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="db.migrations"):
        apply_schema(old.url)

    assert repairs_logged(caplog) == []
    assert version(old) == [HEAD]
    assert {
        "shape": shape(old),
        "ddl": {table: old.rows(f"SHOW CREATE TABLE `{table}`") for table in tables},
        "rows": contents(old, columns_now(old)),
    } == first


def test_duplicate_deposit_credits_stop_the_upgrade_with_their_ids_and_change_nothing(scratch):
    """An old database whose operator added ledger_entry.qris_id by hand, without the key, and
    credited one deposit twice."""
    broken = scratch("dupes")
    load(broken, file_statements(BEFORE_MIGRATIONS) + OLD_ROWS + [
        "ALTER TABLE ledger_entry ADD COLUMN qris_id BIGINT UNSIGNED NULL AFTER purchase_id",
        "INSERT INTO ledger_entry (id, reseller_id, jenis, jumlah, saldo_akhir, qris_id) VALUES"
        " (101, 1, 'deposit', 25000, 163000, 1), (102, 1, 'deposit', 25000, 188000, 1)",
        "UPDATE reseller SET saldo = 188000 WHERE id = 1",
    ])  # fmt: skip
    before = columns_now(broken)
    held = contents(broken, before)

    done = subprocess.run(
        [sys.executable, "-m", "db.apply"], cwd=ROOT, env={**os.environ, "DATABASE_URL": broken.url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "upgrade stopped: revision 0002 cannot add a UNIQUE key" in done.stderr
    assert "ledger_entry rows 101,102 share qris_id=1, jenis='deposit' (2 copies)" in done.stderr
    assert "Traceback" not in done.stderr
    # The baseline is recorded; nothing of 0002 happened, no row changed.
    assert version(broken) == ["0001"]
    assert not broken.rows("SHOW INDEX FROM ledger_entry WHERE Key_name = 'uq_ledger_deposit'")
    for table, name in (("reseller", "require_signature"), ("qris_transaction", "tr_gateway"), ("qris_transaction", "tr_reseller_id")):
        assert name not in columns_now(broken)[table], name
    assert contents(broken, before) == held

    # Settled by hand (the extra credit taken back), the upgrade completes.
    broken.rows("DELETE FROM ledger_entry WHERE id = 102")
    broken.rows("UPDATE reseller SET saldo = 163000 WHERE id = 1")
    apply_schema(broken.url)
    assert version(broken) == [HEAD]
    assert broken.rows("SHOW INDEX FROM ledger_entry WHERE Key_name = 'uq_ledger_deposit'")
