"""schema.sql and its mirror in db/tables.py name the same columns; procedures.sql loads."""

from db.apply import PROCEDURES, apply_schema, statements
from db.tables import metadata
from tests.harness import MariaDB


def test_the_mirror_matches_the_database(db: MariaDB):
    for table in metadata.sorted_tables:
        columns = [r["COLUMN_NAME"] for r in db.rows(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            db.name, table.name,
        )]  # fmt: skip
        assert columns == [c.name for c in table.columns], table.name


def test_demo_products_are_seeded(db: MariaDB):
    assert [r["kode"] for r in db.rows("SELECT kode FROM produk ORDER BY id")] == ["pulsa10", "pulsa20", "pln50"]


def test_procedures_are_loaded_and_reapplying_keeps_the_data(db: MariaDB):
    created = [s.split("(")[0].split()[-1] for s in statements(PROCEDURES.read_text()) if s.startswith("CREATE PROCEDURE")]
    assert created == ["post_ledger_entry", "begin_own_transaction", "accept_purchases", "start_purchases", "settle_purchases", "receive_webhook_events", "create_qris_transactions", "attach_qr_codes"]
    loaded = {r["ROUTINE_NAME"] for r in db.rows(
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = 'PROCEDURE'", db.name
    )}  # fmt: skip
    assert loaded == set(created)
    products = db.value("SELECT COUNT(*) FROM produk")
    apply_schema(db.url)
    assert db.value("SELECT COUNT(*) FROM produk") == products
