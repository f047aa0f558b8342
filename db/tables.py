"""The schema mirror: schema.sql is the source of truth, this is how queries name it.

tests/test_schema.py checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

produk = Table(
    "produk",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kode", String(32)),
    Column("nama", String(100)),
    Column("kategori", String(16)),
    Column("harga", Integer),
    Column("nominal", Integer),
    Column("deskripsi", String(255)),
    Column("aktif", Boolean),
)

reseller = Table(
    "reseller",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("nama", String(100)),
    Column("email", String(190)),
    Column("hp", String(20)),
    Column("saldo", BigInteger),
    Column("api_key_hash", LargeBinary(32)),
    Column("private_key_enc", LargeBinary(128)),
    Column("callback_url", String(500)),
    Column("require_signature", Boolean),
    Column("aktif", Boolean),
    Column("created_at", DateTime),
)

purchase = Table(
    "purchase",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("reseller_id", Integer),
    Column("ref_id", String(64)),
    Column("produk_id", Integer),
    Column("kode", String(32)),
    Column("nomor_tujuan", String(20)),
    Column("nominal", Integer),
    Column("harga", Integer),
    Column("status", String(8)),
    Column("provider_ref", String(24)),
    Column("sn", String(100)),
    Column("hasil_eksekusi", String(255)),
    Column("provider_rc", String(4)),
    Column("waktu", DateTime),
    Column("updated_at", DateTime),
)

ledger_entry = Table(
    "ledger_entry",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("reseller_id", Integer),
    Column("jenis", String(16)),
    Column("jumlah", BigInteger),
    Column("saldo_akhir", BigInteger),
    Column("purchase_id", BigInteger),
    Column("qris_id", BigInteger),
    Column("keterangan", String(255)),
    Column("waktu", DateTime),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("job_key", String(64)),
    Column("queue_name", String(32)),
    Column("actor_name", String(64)),
    Column("args", JSON),
    Column("due_at", DateTime),
    Column("sent_at", DateTime),
    Column("attempts", Integer),
    Column("created_at", DateTime),
    Column("message_id", String(64)),
)

webhook_event = Table(
    "webhook_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source", String(16)),
    Column("event_key", String(64)),
    Column("reference", String(64)),
    Column("payload", JSON),
    Column("outcome", String(16)),
    Column("note", String(255)),
    Column("received_at", DateTime),
    Column("handled_at", DateTime),
)

location = Table(
    "location",
    metadata,
    Column("ml_id", Integer, primary_key=True),
    Column("ml_name", String(100)),
    Column("ml_address", String(255)),
    Column("ml_created_at", DateTime),
)

price = Table(
    "price",
    metadata,
    Column("mp_id", Integer, primary_key=True),
    Column("mp_name", String(100)),
    Column("mp_amount", Integer),
    Column("mp_location_id", Integer),
    Column("mp_quota", Integer),
    Column("mp_used", Integer),
    Column("mp_created_at", DateTime),
)

qris_transaction = Table(
    "qris_transaction",
    metadata,
    Column("tr_id", BigInteger, primary_key=True),
    Column("tr_external_id", String(64)),
    Column("tr_location_id", Integer),
    Column("tr_reseller_id", Integer),
    Column("tr_price_id", Integer),
    Column("tr_amount", Integer),
    Column("tr_status", String(10)),
    Column("tr_qris_string", String),
    Column("tr_qris_url", String(255)),
    Column("tr_gateway", String(16)),
    Column("tr_xendit_id", String(64)),
    Column("tr_payment_id", String(64)),
    Column("tr_failure_reason", String(255)),
    Column("tr_expired_at", DateTime),
    Column("tr_paid_at", DateTime),
    Column("tr_created_at", DateTime),
    Column("tr_updated_at", DateTime),
)

photo_delivery = Table(
    "photo_delivery",
    metadata,
    Column("pd_tr_id", BigInteger, primary_key=True),
    Column("pd_email", String(190)),
    Column("pd_photos", JSON),
    Column("pd_photo_count", Integer),
    Column("pd_email_sent_at", DateTime),
    Column("pd_sending_until", DateTime),
    Column("pd_expires_at", DateTime),
    Column("pd_purged_at", DateTime),
    Column("pd_created_at", DateTime),
)

callback_delivery = Table(
    "callback_delivery",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("delivery_id", String(32)),
    Column("reseller_id", Integer),
    Column("purchase_id", BigInteger),
    Column("url", String(500)),
    Column("payload", JSON),
    Column("status", String(10)),
    Column("attempts", Integer),
    Column("last_status", Integer),
    Column("last_error", String(255)),
    Column("next_attempt_at", DateTime),
    Column("created_at", DateTime),
    Column("delivered_at", DateTime),
)

callback_attempt = Table(
    "callback_attempt",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("delivery_id", BigInteger),
    Column("attempt", Integer),
    Column("attempted_at", DateTime),
    Column("status_code", Integer),
    Column("error", String(255)),
    Column("duration_ms", Integer),
)

staff_token_revocation = Table(
    "staff_token_revocation",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("revoked_by", String(100)),
    Column("reason", String(255)),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
)
