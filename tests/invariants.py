"""The money invariants, checked on a database as an auditor would check it.

`money_violations` reads one consistent snapshot, so that a stack still at work (a purchase being
settled, a deposit being credited) is seen between two of its transactions, never inside one: every
write that moves money commits its status, its ledger entries and its saldo together.

The fixtures in tests/conftest.py run it after every test that touched a database, on every
database a test created, and fail the test that left a violation behind.
"""

from __future__ import annotations

from typing import Any

import pymysql

from tests.harness import MariaDB

# Each check is a query that returns the rows that break one rule; a row's columns say which and why.
CHECKS: dict[str, str] = {
    "saldo differs from the sum of its ledger entries": """
        SELECT r.id AS reseller_id, r.saldo, COALESCE(SUM(l.jumlah), 0) AS ledger
        FROM reseller r LEFT JOIN ledger_entry l ON l.reseller_id = r.id
        GROUP BY r.id, r.saldo HAVING r.saldo <> ledger
    """,
    "negative saldo": "SELECT id AS reseller_id, saldo FROM reseller WHERE saldo < 0",
    "ledger entry's saldo_akhir is not the running sum": """
        SELECT id, reseller_id, saldo_akhir, running FROM (
            SELECT id, reseller_id, saldo_akhir,
                   SUM(jumlah) OVER (PARTITION BY reseller_id ORDER BY id ROWS UNBOUNDED PRECEDING) AS running
            FROM ledger_entry
        ) t WHERE saldo_akhir <> running OR saldo_akhir < 0
    """,
    # COALESCE: a purchase without any ledger entry has NULL sums, and must still be caught.
    "purchase not debited exactly once with its price": """
        SELECT p.id AS purchase_id, p.harga,
               COALESCE(SUM(l.jenis = 'pembelian'), 0) AS debits,
               COALESCE(SUM(CASE WHEN l.jenis = 'pembelian' THEN l.jumlah END), 0) AS debited
        FROM purchase p LEFT JOIN ledger_entry l ON l.purchase_id = p.id AND l.reseller_id = p.reseller_id
        GROUP BY p.id, p.harga
        HAVING debits <> 1 OR debited <> -CAST(p.harga AS SIGNED)
    """,
    "refund not exactly once for gagal, never otherwise, or not the price": """
        SELECT p.id AS purchase_id, p.status, p.harga,
               COALESCE(SUM(l.jenis = 'refund'), 0) AS refunds,
               COALESCE(SUM(CASE WHEN l.jenis = 'refund' THEN l.jumlah END), 0) AS refunded
        FROM purchase p LEFT JOIN ledger_entry l ON l.purchase_id = p.id AND l.reseller_id = p.reseller_id
        GROUP BY p.id, p.status, p.harga
        HAVING refunds <> (p.status = 'gagal') OR refunded <> IF(p.status = 'gagal', CAST(p.harga AS SIGNED), 0)
    """,
    "purchase entry without its purchase, or of another reseller": """
        SELECT l.id, l.jenis, l.purchase_id, l.reseller_id FROM ledger_entry l
        LEFT JOIN purchase p ON p.id = l.purchase_id AND p.reseller_id = l.reseller_id
        WHERE (l.jenis IN ('pembelian', 'refund') AND p.id IS NULL)
           OR (l.purchase_id IS NOT NULL AND l.jenis NOT IN ('pembelian', 'refund'))
    """,
    "deposit not credited exactly when COMPLETED, with its amount": """
        SELECT q.tr_id, q.tr_status, q.tr_amount,
               COUNT(l.id) AS credits, COALESCE(SUM(l.jumlah), 0) AS credited
        FROM qris_transaction q LEFT JOIN ledger_entry l ON l.qris_id = q.tr_id
        WHERE q.tr_reseller_id IS NOT NULL
        GROUP BY q.tr_id, q.tr_status, q.tr_amount
        HAVING credits <> (q.tr_status = 'COMPLETED') OR credited <> IF(q.tr_status = 'COMPLETED', CAST(q.tr_amount AS SIGNED), 0)
    """,
    "deposit entry of no deposit, of another reseller or not a deposit": """
        SELECT l.id, l.jenis, l.qris_id, l.reseller_id FROM ledger_entry l
        LEFT JOIN qris_transaction q ON q.tr_id = l.qris_id AND q.tr_reseller_id = l.reseller_id
        WHERE l.qris_id IS NOT NULL AND (q.tr_id IS NULL OR l.jenis <> 'deposit')
    """,
}


def money_violations(db: MariaDB) -> list[str]:
    """Every broken money rule in the database `db`, one line each; empty when the money is right."""
    conn = pymysql.connect(**db.params, database=db.name, cursorclass=pymysql.cursors.DictCursor)
    found: list[str] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            for rule, sql in CHECKS.items():
                cur.execute(sql)
                rows: list[dict[str, Any]] = list(cur.fetchall())
                found += [f"{db.name}: {rule}: {row}" for row in rows[:20]]
            cur.execute("COMMIT")
    finally:
        conn.close()
    return found


def database_exists(db: MariaDB) -> bool:
    conn = pymysql.connect(**db.params)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (db.name,))
            return cur.fetchone() is not None
    finally:
        conn.close()
