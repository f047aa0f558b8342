"""Runs last (by name): after every other test of the session, the money is still right."""

from __future__ import annotations

from tests.harness import LoketStack


def test_every_saldo_equals_its_ledger_and_none_is_negative(stack: LoketStack):
    mismatched = stack.db.rows(
        "SELECT r.id, r.saldo, COALESCE(SUM(l.jumlah), 0) AS total FROM reseller r LEFT JOIN ledger_entry l ON l.reseller_id = r.id "
        "GROUP BY r.id, r.saldo HAVING r.saldo <> total"
    )
    assert mismatched == []
    assert stack.db.value("SELECT COUNT(*) FROM reseller WHERE saldo < 0") == 0
    assert stack.db.value("SELECT COUNT(*) FROM ledger_entry l JOIN reseller r ON r.id = l.reseller_id WHERE l.saldo_akhir < 0") == 0


def test_every_purchase_was_debited_once_and_refunded_only_when_gagal(stack: LoketStack):
    wrong = stack.db.rows(
        "SELECT p.id, p.status, SUM(l.jenis = 'pembelian') AS debits, SUM(l.jenis = 'refund') AS refunds "
        "FROM purchase p LEFT JOIN ledger_entry l ON l.purchase_id = p.id GROUP BY p.id, p.status "
        "HAVING debits <> 1 OR refunds <> (p.status = 'gagal')"
    )
    assert wrong == []


def test_every_deposit_was_credited_once_and_only_when_completed(stack: LoketStack):
    wrong = stack.db.rows(
        "SELECT q.tr_id, q.tr_status, COUNT(l.id) AS credits FROM qris_transaction q LEFT JOIN ledger_entry l ON l.qris_id = q.tr_id "
        "WHERE q.tr_reseller_id IS NOT NULL GROUP BY q.tr_id, q.tr_status HAVING credits <> (q.tr_status = 'COMPLETED')"
    )
    assert wrong == []
