-- Loket schema for MySQL 8 / MariaDB 10.6+ (InnoDB, utf8mb4). Money is integer rupiah.
-- Applied by `make db` (python -m db.apply), which creates the database if needed.
-- The order matters only for foreign keys.

CREATE TABLE IF NOT EXISTS produk (
  id          INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kode        VARCHAR(32)  NOT NULL,
  nama        VARCHAR(100) NOT NULL,
  kategori    VARCHAR(16)  NOT NULL,               -- pulsa, data, pln
  harga       INT UNSIGNED NOT NULL,               -- what the reseller pays
  nominal     INT UNSIGNED NOT NULL,               -- face value
  deskripsi   VARCHAR(255) NOT NULL DEFAULT '',
  aktif       BOOLEAN      NOT NULL DEFAULT TRUE,
  UNIQUE KEY uq_produk_kode (kode)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS reseller (
  id               INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  nama             VARCHAR(100) NOT NULL,
  email            VARCHAR(190) NOT NULL,
  hp               VARCHAR(20)  NULL,
  saldo            BIGINT       NOT NULL DEFAULT 0,
  api_key_hash     BINARY(32)   NOT NULL,            -- SHA-256 of the API key; the key itself is never stored
  private_key_enc  VARBINARY(128) NOT NULL,          -- AES-256-GCM: 12-byte nonce || ciphertext || tag
  callback_url     VARCHAR(500) NULL,
  require_signature BOOLEAN     NOT NULL DEFAULT FALSE,  -- every request must carry X-Timestamp/X-Signature
  aktif            BOOLEAN      NOT NULL DEFAULT TRUE,
  created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_reseller_email (email),
  UNIQUE KEY uq_reseller_api_key (api_key_hash),
  CONSTRAINT ck_reseller_saldo CHECK (saldo >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS purchase (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  reseller_id     INT UNSIGNED NOT NULL,
  ref_id          VARCHAR(64)  NULL,                 -- the reseller's idempotency key
  produk_id       INT UNSIGNED NOT NULL,
  kode            VARCHAR(32)  NOT NULL,
  nomor_tujuan    VARCHAR(20)  NOT NULL,
  nominal         INT UNSIGNED NULL,
  harga           INT UNSIGNED NOT NULL,
  status          ENUM('pending','proses','sukses','gagal') NOT NULL DEFAULT 'pending',
  provider_ref    CHAR(24)     NOT NULL,             -- the ref_id sent to the provider on every attempt
  sn              VARCHAR(100) NULL,
  hasil_eksekusi  VARCHAR(255) NULL,
  provider_rc     VARCHAR(4)   NULL,
  waktu           DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_purchase_ref (reseller_id, ref_id),
  UNIQUE KEY uq_purchase_provider_ref (provider_ref),
  KEY ix_purchase_reseller (reseller_id, id),
  KEY ix_purchase_status (status, id),
  -- No foreign key to reseller on purpose: its shared lock on the reseller row, taken before the
  -- debit's exclusive lock, would deadlock two concurrent purchases of one reseller.
  CONSTRAINT fk_purchase_produk FOREIGN KEY (produk_id) REFERENCES produk (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every change of a saldo is one row here; saldo always equals the sum of jumlah.
CREATE TABLE IF NOT EXISTS ledger_entry (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  reseller_id  INT UNSIGNED NOT NULL,
  jenis        ENUM('saldo_awal','deposit','pembelian','refund','koreksi') NOT NULL,
  jumlah       BIGINT       NOT NULL,                -- signed: debits are negative
  saldo_akhir  BIGINT       NOT NULL,
  purchase_id  BIGINT UNSIGNED NULL,
  qris_id      BIGINT UNSIGNED NULL,                 -- the QRIS deposit this entry credits
  keterangan   VARCHAR(255) NULL,
  waktu        DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  -- a purchase is debited once and refunded at most once, whatever the code does
  UNIQUE KEY uq_ledger_purchase (purchase_id, jenis),
  UNIQUE KEY uq_ledger_deposit (qris_id, jenis),      -- a deposit is credited at most once
  KEY ix_ledger_reseller (reseller_id, id),
  CONSTRAINT fk_ledger_reseller FOREIGN KEY (reseller_id) REFERENCES reseller (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Durable jobs: written in the same transaction as the change that needs them, pushed to Redis
-- after commit, re-pushed by the relay in `clock` while the row exists and is due. The job
-- deletes its row when its work is done.
CREATE TABLE IF NOT EXISTS outbox (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  job_key     VARCHAR(64)  NOT NULL,                 -- e.g. purchase:42; one live job per subject
  queue_name  VARCHAR(32)  NOT NULL,
  actor_name  VARCHAR(64)  NOT NULL,
  args        JSON         NOT NULL,
  due_at      DATETIME(6)  NOT NULL,                 -- when the relay should push it again if still here
  sent_at     DATETIME(6)  NULL,
  attempts    INT UNSIGNED NOT NULL DEFAULT 0,
  created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  message_id  VARCHAR(64)  NULL,                     -- the Redis message that carried it, when not one of its own (a batch)
  UNIQUE KEY uq_outbox_job (job_key),
  KEY ix_outbox_due (due_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- Databases made before the column.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS message_id VARCHAR(64) NULL AFTER created_at;

-- The inbox: every verified webhook, stored before the 2xx, applied once by a worker.
CREATE TABLE IF NOT EXISTS webhook_event (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source       VARCHAR(16)  NOT NULL,                -- digiflazz, xendit, ...
  event_key    CHAR(64)     NOT NULL,                -- unique per source: duplicates are recognised
  reference    VARCHAR(64)  NULL,
  payload      JSON         NOT NULL,
  outcome      ENUM('received','applied','ignored','unmatched') NOT NULL DEFAULT 'received',
  note         VARCHAR(255) NULL,
  received_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  handled_at   DATETIME(6)  NULL,
  UNIQUE KEY uq_webhook_event (source, event_key),
  KEY ix_webhook_outcome (outcome, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Reseller callbacks: one delivery per ended purchase, every attempt recorded.
CREATE TABLE IF NOT EXISTS callback_delivery (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  delivery_id      CHAR(32)     NOT NULL,            -- X-Loket-Delivery: unique, the same on every attempt
  reseller_id      INT UNSIGNED NOT NULL,
  purchase_id      BIGINT UNSIGNED NOT NULL,
  url              VARCHAR(500) NOT NULL,
  payload          JSON         NULL,                -- fixed at the first attempt, so retries send the same body
  status           ENUM('pending','delivered','failed') NOT NULL DEFAULT 'pending',
  attempts         INT UNSIGNED NOT NULL DEFAULT 0,
  last_status      SMALLINT UNSIGNED NULL,
  last_error       VARCHAR(255) NULL,
  next_attempt_at  DATETIME(6)  NULL,
  created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  delivered_at     DATETIME(6)  NULL,
  UNIQUE KEY uq_callback_delivery (delivery_id),
  UNIQUE KEY uq_callback_purchase (purchase_id),
  KEY ix_callback_reseller (reseller_id, id),
  KEY ix_callback_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS callback_attempt (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  delivery_id   BIGINT UNSIGNED NOT NULL,
  attempt       INT UNSIGNED NOT NULL,
  attempted_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  status_code   SMALLINT UNSIGNED NULL,
  error         VARCHAR(255) NULL,
  duration_ms   INT UNSIGNED NOT NULL,
  KEY ix_attempt_delivery (delivery_id, id),
  CONSTRAINT fk_attempt_delivery FOREIGN KEY (delivery_id) REFERENCES callback_delivery (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Photobox kiosks (photobox-api.md): locations, prices, QRIS transactions, photo deliveries.
CREATE TABLE IF NOT EXISTS location (
  ml_id          INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ml_name        VARCHAR(100) NOT NULL,
  ml_address     VARCHAR(255) NULL,
  ml_created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_location_name (ml_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS price (
  mp_id          INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mp_name        VARCHAR(100) NOT NULL,
  mp_amount      INT UNSIGNED NOT NULL,
  mp_location_id INT UNSIGNED NULL,                  -- NULL: valid at every location
  mp_quota       INT UNSIGNED NULL,                  -- NULL: unlimited
  mp_used        INT UNSIGNED NOT NULL DEFAULT 0,    -- open or paid transactions holding a slot
  mp_created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  CONSTRAINT ck_price_amount CHECK (mp_amount > 0),
  CONSTRAINT ck_price_quota CHECK (mp_quota IS NULL OR mp_used <= mp_quota),
  CONSTRAINT fk_price_location FOREIGN KEY (mp_location_id) REFERENCES location (ml_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS qris_transaction (
  tr_id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  tr_external_id    VARCHAR(64)  NOT NULL,
  tr_location_id    INT UNSIGNED NULL,                -- NULL for a reseller's deposit
  tr_reseller_id    INT UNSIGNED NULL,                -- the reseller a deposit credits; NULL for kiosks
  tr_price_id       INT UNSIGNED NULL,
  tr_amount         INT UNSIGNED NOT NULL,
  tr_status         ENUM('PENDING','COMPLETED','FAILED','EXPIRED') NOT NULL DEFAULT 'PENDING',
  tr_qris_string    TEXT         NULL,
  tr_qris_url       VARCHAR(255) NULL,
  tr_gateway        VARCHAR(16)  NOT NULL DEFAULT 'xendit',  -- xendit; deposits may use midtrans or paystack
  tr_xendit_id      VARCHAR(64)  NULL,               -- the gateway's reference: a Xendit QR id, a Midtrans token, a Paystack reference
  tr_payment_id     VARCHAR(64)  NULL,               -- the gateway's id of the payment that completed it
  tr_failure_reason VARCHAR(255) NULL,
  tr_expired_at     DATETIME(6)  NOT NULL,
  tr_paid_at        DATETIME(6)  NULL,
  tr_created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  tr_updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_qris_external (tr_external_id),
  KEY ix_qris_expiry (tr_status, tr_expired_at),
  KEY ix_qris_created (tr_created_at),
  KEY ix_qris_reseller (tr_reseller_id, tr_id),
  CONSTRAINT fk_qris_location FOREIGN KEY (tr_location_id) REFERENCES location (ml_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One photo delivery per paid session: the gallery, its e-mail, and its purge.
CREATE TABLE IF NOT EXISTS photo_delivery (
  pd_tr_id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  pd_email          VARCHAR(190) NOT NULL,
  pd_photos         JSON         NOT NULL,
  pd_photo_count    INT UNSIGNED NOT NULL,
  pd_email_sent_at  DATETIME(6)  NULL,
  pd_sending_until  DATETIME(6)  NULL,               -- one copy of the send job has the e-mail until then
  pd_expires_at     DATETIME(6)  NULL,               -- email_sent_at + PHOTO_RETENTION_DAYS
  pd_purged_at      DATETIME(6)  NULL,
  pd_created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_photo_expiry (pd_purged_at, pd_expires_at),
  CONSTRAINT fk_photo_transaction FOREIGN KEY (pd_tr_id) REFERENCES qris_transaction (tr_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- A database made before the column gets it here.
ALTER TABLE photo_delivery ADD COLUMN IF NOT EXISTS pd_sending_until DATETIME(6) NULL AFTER pd_email_sent_at;

-- The demo products of ppob-api.md, with the codes the provider (and the simulator) knows.
INSERT INTO produk (id, kode, nama, kategori, harga, nominal, deskripsi) VALUES
  (1, 'pulsa10', 'Pulsa 10k', 'pulsa', 12000, 10000, 'Pulsa Reguler 10.000'),
  (2, 'pulsa20', 'Pulsa 20k', 'pulsa', 22000, 20000, 'Pulsa Reguler 20.000'),
  (3, 'pln50', 'Token Listrik 50k', 'pln', 51000, 50000, 'Token Listrik Prabayar 50.000')
ON DUPLICATE KEY UPDATE nama = VALUES(nama);
