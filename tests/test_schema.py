"""schema.sql and its mirror in db/tables.py name the same columns."""

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
