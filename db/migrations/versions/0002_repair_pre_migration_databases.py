"""Repair databases made before migrations: what was added inside existing CREATE TABLE statements.

Revision ID: 0002
Revises: 0001

CREATE TABLE IF NOT EXISTS left such a database without these columns and keys. Each one is read
from information_schema, logged when missing and added; on a database made by schema.sql as it
is today nothing is missing and nothing changes. A UNIQUE key is added only when no rows break
it: otherwise the upgrade stops, naming the rows, before this revision changes anything.
"""

from __future__ import annotations

import logging

from db.migrations.helpers import Repair, apply_repairs, lacks_column, lacks_index, not_nullable

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("db.migrations.0002")

REPAIRS = [
    Repair("reseller", "column reseller.require_signature", lacks_column("reseller", "require_signature"),
           "ADD COLUMN require_signature BOOLEAN NOT NULL DEFAULT FALSE AFTER callback_url"),
    Repair("ledger_entry", "column ledger_entry.qris_id", lacks_column("ledger_entry", "qris_id"),
           "ADD COLUMN qris_id BIGINT UNSIGNED NULL AFTER purchase_id"),
    Repair("ledger_entry", "unique key ledger_entry.uq_ledger_deposit (a deposit is credited at most once)",
           lacks_index("ledger_entry", "uq_ledger_deposit"),
           "ADD UNIQUE KEY uq_ledger_deposit (qris_id, jenis)", unique=("qris_id", "jenis"),
           settle="one deposit credited more than once; keep one credit, take the others back with a koreksi entry and delete them"),
    Repair("qris_transaction", "NULL allowed in qris_transaction.tr_location_id (deposits have no location)",
           not_nullable("qris_transaction", "tr_location_id"), "MODIFY COLUMN tr_location_id INT UNSIGNED NULL"),
    Repair("qris_transaction", "column qris_transaction.tr_reseller_id", lacks_column("qris_transaction", "tr_reseller_id"),
           "ADD COLUMN tr_reseller_id INT UNSIGNED NULL AFTER tr_location_id"),
    Repair("qris_transaction", "column qris_transaction.tr_gateway", lacks_column("qris_transaction", "tr_gateway"),
           "ADD COLUMN tr_gateway VARCHAR(16) NOT NULL DEFAULT 'xendit' AFTER tr_qris_url"),
    Repair("qris_transaction", "key qris_transaction.ix_qris_reseller", lacks_index("qris_transaction", "ix_qris_reseller"),
           "ADD KEY ix_qris_reseller (tr_reseller_id, tr_id)"),
    Repair("outbox", "column outbox.message_id", lacks_column("outbox", "message_id"),
           "ADD COLUMN message_id VARCHAR(64) NULL AFTER created_at"),
    Repair("photo_delivery", "column photo_delivery.pd_sending_until", lacks_column("photo_delivery", "pd_sending_until"),
           "ADD COLUMN pd_sending_until DATETIME(6) NULL AFTER pd_email_sent_at"),
]  # fmt: skip


def upgrade() -> None:
    apply_repairs(REPAIRS, revision, log)


def downgrade() -> None:
    raise NotImplementedError("Loket's migrations go forward only")
