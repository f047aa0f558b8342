-- Loket's hot money moves, as stored procedures: one round trip where the statements would take
-- four or five. Each is the one home of its rule; a function of the domain layer (domain/) is
-- its only caller. The snapshot of the procedures at head, beside schema.sql: the migrations of
-- db/migrations create them (`make db`); a change is a new revision that drops and re-creates the
-- procedure, plus the same change here.
--
-- Why: each round trip costs the web process a socket write and a read, a third of its CPU per
-- accepted purchase when every statement is its own.
-- The intake procedures the web calls (accept_purchases, receive_webhook_events,
-- create_qris_transactions) open and commit their own transaction, so that the request takes one
-- round trip, not a CALL and then a COMMIT: they are called on an autocommit connection
-- (db.raw.autocommitting) and refuse to run inside a transaction, whose work their COMMIT would end.
-- They answer their row after the COMMIT, so an answer that says written means committed; on an
-- error they roll back and re-raise it. The others take part in the caller's transaction.

DELIMITER //

-- Change a saldo by p_jumlah and record the ledger entry. p_saldo_akhir is the new saldo, or NULL
-- when a debit would take the saldo below zero (then nothing was changed).
-- The condition in the UPDATE is what makes overspending impossible under any concurrency: the
-- row lock serialises debits and each one re-checks the saldo it sees.
DROP PROCEDURE IF EXISTS post_ledger_entry //
CREATE PROCEDURE post_ledger_entry(
  IN p_reseller_id INT UNSIGNED,
  IN p_jenis VARCHAR(16),
  IN p_jumlah BIGINT,
  IN p_purchase_id BIGINT UNSIGNED,
  IN p_qris_id BIGINT UNSIGNED,
  IN p_keterangan VARCHAR(255),
  OUT p_saldo_akhir BIGINT
)
BEGIN
  SET p_saldo_akhir = NULL;
  -- LAST_INSERT_ID(expr) hands the new saldo to the next statement of this session: the saldo
  -- this UPDATE wrote under its row lock, without a SELECT of its own (a statement per money move).
  UPDATE reseller SET saldo = LAST_INSERT_ID(saldo + p_jumlah) WHERE id = p_reseller_id AND saldo + p_jumlah >= 0;
  IF ROW_COUNT() = 1 THEN
    SET p_saldo_akhir = LAST_INSERT_ID();
    INSERT INTO ledger_entry (reseller_id, jenis, jumlah, saldo_akhir, purchase_id, qris_id, keterangan)
    VALUES (p_reseller_id, p_jenis, p_jumlah, p_saldo_akhir, p_purchase_id, p_qris_id, p_keterangan);
  END IF;
END //

-- Opens the transaction of an intake procedure (see the top): READ COMMITTED as every other
-- transaction of Loket's (db/engine.py), whatever the session's default; p_caller names the
-- procedure in the refusal.
DROP PROCEDURE IF EXISTS begin_own_transaction //
CREATE PROCEDURE begin_own_transaction(IN p_caller VARCHAR(64))
BEGIN
  DECLARE v_refusal VARCHAR(255);
  IF @@in_transaction OR NOT @@autocommit THEN
    SET v_refusal = CONCAT(p_caller, ' commits its own transaction: call it on an autocommit connection, outside a transaction');
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
  END IF;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
END //

-- Accept purchases: for each order, insert it, debit its price and record its execute job in the
-- outbox; then commit them all (one transaction of its own: see the top). The orders a web
-- process accepts at the same moment share it, one round trip and one COMMIT (web.intake); an
-- order that is refused leaves nothing of itself and takes nothing from the others.
-- p_orders: a JSON array of {reseller_id, key, produk_id, nomor_tujuan, nominal, ref_id,
-- provider_ref}. The buyer is reseller_id, or, when that is null, the active reseller whose API
-- key hashes to key (hex; an unsigned request: the key check and the debit in one round trip).
-- provider_ref is the order's own, the same whenever the order is sent again: a second accept of
-- an order that was committed finds it instead of buying again.
-- The orders are taken in their resellers' order (as settle_purchases takes its refunds), so two
-- groups never wait for each other's saldo rows in a cycle.
-- Answers one row: a JSON array of [n, outcome, purchase_id, harga, saldo], n being the order's
-- place in p_orders (from 1). outcome is
--   accepted             everything was written (or had been, for this provider_ref);
--   invalid_api_key      no active reseller has that key; nothing was written;
--   signature_required   the key's reseller requires signed requests; nothing was written;
--   unknown_product      nothing was written;
--   invalid_destination  a PLN number that is not 11-12 digits; nothing was written;
--   insufficient_saldo   nothing was written;
--   duplicate_ref_id     the reseller's ref_id names another purchase; nothing was written.
-- An error rolls back every order of the group.
-- p_message_id: the Redis message that will carry the group's execute jobs (one for all), noted in
-- their outbox rows for the relay (workers.enqueue.still_in_redis); NULL when each job goes alone.
DROP PROCEDURE IF EXISTS accept_purchases //
CREATE PROCEDURE accept_purchases(
  IN p_orders LONGTEXT,
  IN p_job_key_prefix VARCHAR(32),
  IN p_queue_name VARCHAR(32),
  IN p_actor_name VARCHAR(64),
  IN p_lease_seconds INT,
  IN p_message_id VARCHAR(64)
)
BEGIN
  DECLARE v_done BOOLEAN DEFAULT FALSE;
  DECLARE v_n INT;
  DECLARE v_reseller_id INT UNSIGNED;
  DECLARE v_require_signature BOOLEAN;
  DECLARE v_produk_id INT UNSIGNED;
  -- Wider than the table's columns: an overlong value fails its INSERT (strict mode), never cut.
  DECLARE v_nomor_tujuan, v_ref_id, v_provider_ref VARCHAR(255);
  DECLARE v_nominal INT UNSIGNED;
  DECLARE v_kode VARCHAR(32);
  DECLARE v_kategori VARCHAR(16);
  DECLARE v_harga INT UNSIGNED;
  DECLARE v_purchase_id BIGINT UNSIGNED;
  DECLARE v_saldo BIGINT;
  DECLARE v_duplicate BOOLEAN;
  DECLARE v_outcome VARCHAR(32);
  DECLARE v_answers LONGTEXT DEFAULT '';
  DECLARE v_new_ids LONGTEXT DEFAULT '';
  -- The product is read here, with the buyer, not by a statement per order: each statement in a
  -- procedure pays MariaDB's open, optimise and execute (perf of mariadbd at load).
  DECLARE c_orders CURSOR FOR
    SELECT j.n, COALESCE(j.reseller_id, r.id), j.reseller_id IS NULL AND r.require_signature,
           j.produk_id, j.nomor_tujuan, j.nominal, j.ref_id, j.provider_ref, p.kode, p.kategori, p.harga
    FROM JSON_TABLE(p_orders, '$[*]' COLUMNS (
      n FOR ORDINALITY, reseller_id INT UNSIGNED PATH '$.reseller_id', k CHAR(64) PATH '$.key',
      produk_id INT UNSIGNED PATH '$.produk_id', nomor_tujuan VARCHAR(255) PATH '$.nomor_tujuan',
      nominal INT UNSIGNED PATH '$.nominal', ref_id VARCHAR(255) PATH '$.ref_id',
      provider_ref VARCHAR(255) PATH '$.provider_ref')) j
    LEFT JOIN reseller r FORCE INDEX (uq_reseller_api_key) ON j.reseller_id IS NULL AND r.api_key_hash = UNHEX(j.k) AND r.aktif
    LEFT JOIN produk p FORCE INDEX (PRIMARY) ON p.id = j.produk_id AND p.aktif
    ORDER BY COALESCE(j.reseller_id, r.id), j.n;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;

  CALL begin_own_transaction('accept_purchases');
  BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    OPEN c_orders;
    each_order: LOOP
      FETCH c_orders INTO v_n, v_reseller_id, v_require_signature, v_produk_id, v_nomor_tujuan, v_nominal, v_ref_id, v_provider_ref,
                          v_kode, v_kategori, v_harga;
      IF v_done THEN LEAVE each_order; END IF;
      SET v_purchase_id = NULL, v_saldo = NULL;
      an_order: BEGIN
        IF v_reseller_id IS NULL THEN SET v_outcome = 'invalid_api_key', v_harga = NULL; LEAVE an_order; END IF;
        IF v_require_signature THEN SET v_outcome = 'signature_required', v_harga = NULL; LEAVE an_order; END IF;
        IF v_kode IS NULL THEN SET v_outcome = 'unknown_product'; LEAVE an_order; END IF;
        IF v_kategori = 'pln' AND CHAR_LENGTH(v_nomor_tujuan) NOT BETWEEN 11 AND 12 THEN
          SET v_outcome = 'invalid_destination'; LEAVE an_order;
        END IF;

        SET v_duplicate = FALSE;
        BEGIN
          DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;
          INSERT INTO purchase (reseller_id, ref_id, produk_id, kode, nomor_tujuan, nominal, harga, provider_ref)
          VALUES (v_reseller_id, v_ref_id, v_produk_id, v_kode, v_nomor_tujuan, v_nominal, v_harga, v_provider_ref);
        END;
        IF v_duplicate THEN
          BEGIN
            DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_purchase_id = NULL;
            SELECT id, harga INTO v_purchase_id, v_harga FROM purchase
            WHERE provider_ref = v_provider_ref AND reseller_id = v_reseller_id AND produk_id = v_produk_id;
          END;
          IF v_purchase_id IS NULL AND v_ref_id IS NULL THEN  -- another order's provider_ref: never by chance
            SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'accept_purchases: provider_ref taken by another purchase';
          END IF;
          IF v_purchase_id IS NULL THEN SET v_outcome = 'duplicate_ref_id'; LEAVE an_order; END IF;
          SET v_saldo = (SELECT saldo FROM reseller WHERE id = v_reseller_id);  -- no NOT FOUND: that would end the cursor's loop
          -- Its job goes again in this group's message (its first one may never have been pushed).
          UPDATE outbox SET message_id = p_message_id WHERE job_key = CONCAT(p_job_key_prefix, v_purchase_id);
          SET v_outcome = 'accepted'; LEAVE an_order;  -- this very order, committed before
        END IF;
        SET v_purchase_id = LAST_INSERT_ID();

        CALL post_ledger_entry(v_reseller_id, 'pembelian', -CAST(v_harga AS SIGNED), v_purchase_id, NULL, NULL, v_saldo);
        IF v_saldo IS NULL THEN
          -- The purchase row goes again: nothing else refers to it yet. A DELETE in this rare case
          -- rather than a SAVEPOINT before every order, a statement each (perf).
          DELETE FROM purchase WHERE id = v_purchase_id;
          SET v_purchase_id = NULL, v_outcome = 'insufficient_saldo'; LEAVE an_order;
        END IF;

        SET v_new_ids = CONCAT(v_new_ids, ',', v_purchase_id), v_outcome = 'accepted';
      END;
      SET v_answers = CONCAT(v_answers, ',[', v_n, ',"', v_outcome, '",', IFNULL(v_purchase_id, 'null'), ',',
                             IFNULL(v_harga, 'null'), ',', IFNULL(v_saldo, 'null'), ']');
    END LOOP;
    CLOSE c_orders;
    -- The new purchases' execute jobs, one statement for the group rather than one per order.
    IF v_new_ids <> '' THEN
      INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at, sent_at, message_id)
      SELECT CONCAT(p_job_key_prefix, j.id), p_queue_name, p_actor_name, CONCAT('[', j.id, ']'),
             NOW(6) + INTERVAL p_lease_seconds SECOND, NOW(6), p_message_id
      FROM JSON_TABLE(CONCAT('[', SUBSTRING(v_new_ids, 2), ']'), '$[*]' COLUMNS (n FOR ORDINALITY, id BIGINT UNSIGNED PATH '$')) j
      ORDER BY j.n;
    END IF;
    COMMIT;
  END;
  SELECT CONCAT('[', SUBSTRING(v_answers, 2), ']');
END //

-- pending -> proses for a group of purchases (p_ids: a JSON array of their ids), the moment they
-- go to the provider (from here on a purchase is never refunded on a mere error, only on the
-- provider's own Gagal). A worker starts the purchases that queue up while its last start is on
-- its way in one call (core/group_call.py): one commit instead of one per purchase.
-- Answers the purchases as they now stand (no row for an id there is none of): the caller leaves
-- ended ones alone. Their execute jobs' outbox rows (p_job_key_prefix + id) are kept due at least
-- half a lease away (rewritten only when nearer): the worker acknowledges a message before the
-- provider answers (workers/in_flight.py), and the relay must not push the job again while its
-- call is in flight.
-- STRAIGHT_JOIN and the forced keys lock the named rows only, whatever the tables' statistics say:
-- on the status or due_at index the statements locked other purchases' rows and deadlocked with
-- settle_purchases.
DROP PROCEDURE IF EXISTS start_purchases //
CREATE PROCEDURE start_purchases(IN p_ids JSON, IN p_job_key_prefix VARCHAR(32), IN p_lease_seconds INT)
BEGIN
  UPDATE JSON_TABLE(p_ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j
         STRAIGHT_JOIN purchase p FORCE INDEX (PRIMARY) ON p.id = j.id
  SET p.status = 'proses' WHERE p.status = 'pending';
  UPDATE JSON_TABLE(p_ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j
         STRAIGHT_JOIN outbox o FORCE INDEX (uq_outbox_job) ON o.job_key = CONCAT(p_job_key_prefix, j.id)
  SET o.due_at = NOW(6) + INTERVAL p_lease_seconds SECOND
  WHERE o.due_at < NOW(6) + INTERVAL (p_lease_seconds DIV 2) SECOND;
  SELECT p.id, p.reseller_id, p.ref_id, p.produk_id, p.kode, p.nomor_tujuan, p.nominal, p.harga, p.status,
         p.provider_ref, p.sn, p.hasil_eksekusi, p.waktu, p.updated_at
  FROM JSON_TABLE(p_ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j
       STRAIGHT_JOIN purchase p FORCE INDEX (PRIMARY) ON p.id = j.id;
END //

-- pending|proses -> sukses|gagal, once, for a group of purchases (p_settlements: a JSON array of
-- objects with id, status, sn, message, rc and delivery_key, one per purchase, in the order of
-- their ids) in one transaction: a worker settles the purchases whose answers arrive while its
-- last settle is on its way in one call. A gagal is refunded; the execute job is done; the
-- reseller's callback delivery (if it has a callback URL) and its job are recorded.
-- Set-based: the purchases are locked, updated and their execute jobs deleted by a statement each
-- for the whole group, and only refunds and callbacks take statements of their own: about a
-- third less of MariaDB's CPU per purchase than a statement per purchase (bench/procedures.py).
-- Locks: the purchases first, in the order of their ids (the caller sorts the group), then the
-- resellers of the refunds in their order, as accept_purchases takes them: two groups that
-- settle or refund the same rows take them in the same order and cannot deadlock, and nothing
-- locks a reseller before a purchase that already exists.
-- Answers one row: {"ended": [ids that ended here], "deliveries": [[id, delivery id], ...]}; the
-- other purchases of the group had already ended and were left unchanged.
DROP PROCEDURE IF EXISTS settle_purchases //
CREATE PROCEDURE settle_purchases(
  IN p_settlements JSON,
  IN p_execute_job_key_prefix VARCHAR(32),
  IN p_callback_job_key_prefix VARCHAR(32),
  IN p_callback_queue_name VARCHAR(32),
  IN p_callback_actor_name VARCHAR(64),
  IN p_lease_seconds INT
)
BEGIN
  DECLARE v_done BOOLEAN DEFAULT FALSE;
  DECLARE v_ending JSON;
  DECLARE v_ended_ids JSON;
  DECLARE v_id BIGINT UNSIGNED;
  DECLARE v_status VARCHAR(8);
  DECLARE v_delivery_key CHAR(32);
  DECLARE v_reseller_id INT UNSIGNED;
  DECLARE v_harga INT UNSIGNED;
  DECLARE v_callback_url VARCHAR(500);
  DECLARE v_saldo BIGINT;
  DECLARE v_delivery_id BIGINT UNSIGNED;
  DECLARE v_deliveries LONGTEXT DEFAULT '';
  DECLARE c_follow_ups CURSOR FOR
    SELECT j.id, j.status, j.delivery_key, p.reseller_id, p.harga, r.callback_url
    FROM JSON_TABLE(v_ending, '$[*]' COLUMNS (
           id BIGINT UNSIGNED PATH '$.id', status VARCHAR(8) PATH '$.status', delivery_key CHAR(32) PATH '$.delivery_key')) j
         STRAIGHT_JOIN purchase p FORCE INDEX (PRIMARY) ON p.id = j.id
         STRAIGHT_JOIN reseller r FORCE INDEX (PRIMARY) ON r.id = p.reseller_id
    WHERE j.status = 'gagal' OR r.callback_url IS NOT NULL
    ORDER BY p.reseller_id, p.id;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;

  -- The purchases of the group that have not ended, locked: only these are settled below.
  SELECT JSON_ARRAYAGG(JSON_OBJECT('id', p.id, 'status', j.status, 'delivery_key', j.delivery_key)), JSON_ARRAYAGG(p.id)
  INTO v_ending, v_ended_ids
  FROM JSON_TABLE(p_settlements, '$[*]' COLUMNS (
         id BIGINT UNSIGNED PATH '$.id', status VARCHAR(8) PATH '$.status', delivery_key CHAR(32) PATH '$.delivery_key')) j
       STRAIGHT_JOIN purchase p FORCE INDEX (PRIMARY) ON p.id = j.id
  WHERE p.status IN ('pending', 'proses')
  FOR UPDATE;

  IF v_ending IS NOT NULL THEN
    UPDATE JSON_TABLE(p_settlements, '$[*]' COLUMNS (
             id BIGINT UNSIGNED PATH '$.id', status VARCHAR(8) PATH '$.status', sn VARCHAR(100) PATH '$.sn',
             message VARCHAR(255) PATH '$.message', rc VARCHAR(4) PATH '$.rc')) j
           STRAIGHT_JOIN purchase p FORCE INDEX (PRIMARY) ON p.id = j.id
    SET p.status = j.status, p.sn = IF(j.status = 'sukses', j.sn, NULL), p.hasil_eksekusi = j.message, p.provider_rc = j.rc
    WHERE p.status IN ('pending', 'proses');
    DELETE o FROM JSON_TABLE(v_ended_ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) j
           STRAIGHT_JOIN outbox o FORCE INDEX (uq_outbox_job) ON o.job_key = CONCAT(p_execute_job_key_prefix, j.id);

    OPEN c_follow_ups;
    follow_ups: LOOP
      -- A NOT FOUND inside the CALL below would reach this procedure's handler too.
      SET v_done = FALSE;
      FETCH c_follow_ups INTO v_id, v_status, v_delivery_key, v_reseller_id, v_harga, v_callback_url;
      IF v_done THEN
        LEAVE follow_ups;
      END IF;
      IF v_status = 'gagal' THEN
        CALL post_ledger_entry(v_reseller_id, 'refund', v_harga, v_id, NULL, NULL, v_saldo);
      END IF;
      IF v_callback_url IS NOT NULL THEN
        INSERT INTO callback_delivery (delivery_id, reseller_id, purchase_id, url) VALUES (v_delivery_key, v_reseller_id, v_id, v_callback_url);
        SET v_delivery_id = LAST_INSERT_ID();
        INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at, sent_at)
        VALUES (CONCAT(p_callback_job_key_prefix, v_delivery_id), p_callback_queue_name, p_callback_actor_name,
                CONCAT('[', v_delivery_id, ']'), NOW(6) + INTERVAL p_lease_seconds SECOND, NOW(6));
        SET v_deliveries = CONCAT(v_deliveries, IF(v_deliveries = '', '', ','), '[', v_id, ',', v_delivery_id, ']');
      END IF;
    END LOOP;
    CLOSE c_follow_ups;
  END IF;
  SELECT CONCAT('{"ended":', IFNULL(v_ended_ids, '[]'), ',"deliveries":[', v_deliveries, ']}');
END //

-- The inbox: store verified external events once per (source, event_key), each with its apply
-- job, and commit (its own transaction: see the top): the events a web process receives at the
-- same moment share one transaction and one round trip (web.intake).
-- Answers one row: a JSON array with, for each event in order, its id, or null when the same
-- event was stored before (then nothing was written for it). An error rolls back them all.
DROP PROCEDURE IF EXISTS receive_webhook_events //
CREATE PROCEDURE receive_webhook_events(
  IN p_events LONGTEXT,            -- JSON array of {source, event_key, reference, payload}
  IN p_job_key_prefix VARCHAR(32),
  IN p_queue_name VARCHAR(32),
  IN p_actor_name VARCHAR(64),
  IN p_lease_seconds INT,
  IN p_message_id VARCHAR(64)      -- as accept_purchases' p_message_id, for the apply jobs
)
BEGIN
  DECLARE v_done BOOLEAN DEFAULT FALSE;
  DECLARE v_duplicate BOOLEAN;
  DECLARE v_event_id BIGINT UNSIGNED;
  DECLARE v_ids LONGTEXT DEFAULT '';
  DECLARE v_source, v_event_key, v_reference VARCHAR(255);
  DECLARE v_payload LONGTEXT;
  -- Wider than the table's columns: an overlong value fails its INSERT (strict mode), never cut.
  DECLARE c_events CURSOR FOR
    SELECT source, event_key, reference, payload FROM JSON_TABLE(p_events, '$[*]' COLUMNS (
      n FOR ORDINALITY, source VARCHAR(255) PATH '$.source', event_key VARCHAR(255) PATH '$.event_key',
      reference VARCHAR(255) PATH '$.reference', payload JSON PATH '$.payload')) j
    ORDER BY n;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;

  CALL begin_own_transaction('receive_webhook_events');
  BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    OPEN c_events;
    each_event: LOOP
      FETCH c_events INTO v_source, v_event_key, v_reference, v_payload;
      IF v_done THEN LEAVE each_event; END IF;
      SET v_duplicate = FALSE;
      BEGIN
        DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;
        INSERT INTO webhook_event (source, event_key, reference, payload) VALUES (v_source, v_event_key, v_reference, v_payload);
      END;
      IF v_duplicate THEN
        SET v_ids = CONCAT(v_ids, ',null');
      ELSE
        SET v_event_id = LAST_INSERT_ID();
        SET v_ids = CONCAT(v_ids, ',', v_event_id);
        INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at, sent_at, message_id)
        VALUES (CONCAT(p_job_key_prefix, v_event_id), p_queue_name, p_actor_name, CONCAT('[', v_event_id, ']'),
                NOW(6) + INTERVAL p_lease_seconds SECOND, NOW(6), p_message_id);
      END IF;
    END LOOP;
    CLOSE c_events;
    COMMIT;
  END;
  SELECT CONCAT('[', SUBSTRING(v_ids, 2), ']');
END //

-- Kiosk sessions: for each create, a PENDING QRIS transaction, its price's quota slot and its
-- create-QR job; then commit them all (one transaction of its own: see the top). The creates a
-- web process takes at the same moment share it, one round trip and one COMMIT (web.intake); a
-- create that is refused leaves nothing of itself and takes nothing from the others.
-- p_creates: a JSON array of {location_id, price_id, external_id}; price_id null takes
-- p_default_amount. The creates are taken in their prices' order, so two groups never wait for
-- each other's price rows in a cycle; the conditional increment is the quota: concurrent creates
-- serialise on the price row.
-- Answers a row per create, in p_creates' order: (n, outcome, then the transaction's columns as
-- committed, which the create's answer shows without reading them again; NULL if not created),
-- n being the create's place in p_creates (from 1). outcome is created, or (nothing written)
-- unknown_location, unknown_price, price_not_for_location, quota_exhausted,
-- duplicate_external_id (the caller's random external id is taken: it tries another).
-- An error rolls back every create of the group.
DROP PROCEDURE IF EXISTS create_qris_transactions //
CREATE PROCEDURE create_qris_transactions(
  IN p_creates LONGTEXT,
  IN p_default_amount INT UNSIGNED,
  IN p_ttl_seconds INT,
  IN p_job_key_prefix VARCHAR(32),
  IN p_queue_name VARCHAR(32),
  IN p_actor_name VARCHAR(64),
  IN p_lease_seconds INT,
  IN p_message_id VARCHAR(64)      -- as accept_purchases' p_message_id, for the create-QR jobs
)
BEGIN
  DECLARE v_done BOOLEAN DEFAULT FALSE;
  DECLARE v_n INT;
  DECLARE v_location_id, v_known_location, v_price_id, v_known_price, v_price_location INT UNSIGNED;
  DECLARE v_price_amount INT UNSIGNED;
  -- Wider than the column: an overlong id fails its INSERT (strict mode), never cut.
  DECLARE v_external_id VARCHAR(255);
  DECLARE v_tr_id BIGINT UNSIGNED;
  DECLARE v_duplicate BOOLEAN;
  DECLARE v_outcome VARCHAR(32);
  DECLARE v_answers LONGTEXT DEFAULT '';
  DECLARE c_creates CURSOR FOR
    SELECT j.n, j.location_id, l.ml_id, j.price_id, p.mp_id, p.mp_location_id, p.mp_amount, j.external_id
    FROM JSON_TABLE(p_creates, '$[*]' COLUMNS (
      n FOR ORDINALITY, location_id INT UNSIGNED PATH '$.location_id', price_id INT UNSIGNED PATH '$.price_id',
      external_id VARCHAR(255) PATH '$.external_id')) j
    LEFT JOIN location l ON l.ml_id = j.location_id
    LEFT JOIN price p ON p.mp_id = j.price_id
    ORDER BY j.price_id, j.n;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = TRUE;

  CALL begin_own_transaction('create_qris_transactions');
  BEGIN
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    OPEN c_creates;
    each_create: LOOP
      FETCH c_creates INTO v_n, v_location_id, v_known_location, v_price_id, v_known_price, v_price_location, v_price_amount, v_external_id;
      IF v_done THEN LEAVE each_create; END IF;
      SET v_tr_id = NULL;
      a_create: BEGIN
        IF v_known_location IS NULL THEN SET v_outcome = 'unknown_location'; LEAVE a_create; END IF;
        IF v_price_id IS NOT NULL THEN
          IF v_known_price IS NULL THEN SET v_outcome = 'unknown_price'; LEAVE a_create; END IF;
          IF v_price_location IS NOT NULL AND v_price_location <> v_location_id THEN
            SET v_outcome = 'price_not_for_location'; LEAVE a_create;
          END IF;
        END IF;

        SAVEPOINT before_the_create;
        IF v_price_id IS NOT NULL THEN
          UPDATE price SET mp_used = mp_used + 1 WHERE mp_id = v_price_id AND (mp_quota IS NULL OR mp_used < mp_quota);
          IF ROW_COUNT() = 0 THEN SET v_outcome = 'quota_exhausted'; LEAVE a_create; END IF;
        END IF;
        SET v_duplicate = FALSE;
        BEGIN
          DECLARE CONTINUE HANDLER FOR 1062 SET v_duplicate = TRUE;
          INSERT INTO qris_transaction (tr_external_id, tr_location_id, tr_price_id, tr_amount, tr_expired_at)
          VALUES (v_external_id, v_location_id, v_price_id, IF(v_price_id IS NULL, p_default_amount, v_price_amount),
                  NOW(6) + INTERVAL p_ttl_seconds SECOND);
        END;
        IF v_duplicate THEN
          ROLLBACK TO SAVEPOINT before_the_create;  -- the quota slot goes back: a caller who tries again takes one in all
          SET v_outcome = 'duplicate_external_id'; LEAVE a_create;
        END IF;
        SET v_tr_id = LAST_INSERT_ID();
        INSERT INTO outbox (job_key, queue_name, actor_name, args, due_at, sent_at, message_id)
        VALUES (CONCAT(p_job_key_prefix, v_tr_id), p_queue_name, p_actor_name, CONCAT('[', v_tr_id, ']'),
                NOW(6) + INTERVAL p_lease_seconds SECOND, NOW(6), p_message_id);
        SET v_outcome = 'created';
      END;
      SET v_answers = CONCAT(v_answers, ',[', v_n, ',"', v_outcome, '",', IFNULL(v_tr_id, 'null'), ']');
    END LOOP;
    CLOSE c_creates;
    COMMIT;
  END;
  SELECT a.n, a.outcome, t.tr_id, t.tr_external_id, t.tr_location_id, t.tr_price_id, t.tr_amount, t.tr_status,
         t.tr_qris_string, t.tr_qris_url, t.tr_expired_at, t.tr_paid_at, t.tr_created_at
  FROM JSON_TABLE(CONCAT('[', SUBSTRING(v_answers, 2), ']'), '$[*]' COLUMNS (
         n INT PATH '$[0]', outcome VARCHAR(32) PATH '$[1]', tr_id BIGINT UNSIGNED PATH '$[2]')) a
       LEFT JOIN qris_transaction t ON t.tr_id = a.tr_id
  ORDER BY a.n;
END //

-- The QR codes the gateway made for a group of transactions (p_codes: a JSON array of objects
-- with id, qr_id, qr_string and qr_url), each stored once, on a PENDING transaction that has
-- none yet; the create jobs (p_job_key_prefix + id) are done either way. A worker attaches the
-- codes that arrive while its last attach is on its way in one call (core/group_call.py).
-- Answers one row: a JSON array of the ids attached here.
DROP PROCEDURE IF EXISTS attach_qr_codes //
CREATE PROCEDURE attach_qr_codes(IN p_codes JSON, IN p_job_key_prefix VARCHAR(32))
BEGIN
  DECLARE v_attached LONGTEXT;
  -- Locked, so the UPDATE below attaches exactly these.
  SELECT CONCAT('[', IFNULL(GROUP_CONCAT(t.tr_id), ''), ']') INTO v_attached
  FROM JSON_TABLE(p_codes, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$.id')) j
       STRAIGHT_JOIN qris_transaction t FORCE INDEX (PRIMARY) ON t.tr_id = j.id
  WHERE t.tr_status = 'PENDING' AND t.tr_xendit_id IS NULL
  FOR UPDATE;
  UPDATE JSON_TABLE(p_codes, '$[*]' COLUMNS (
           id BIGINT UNSIGNED PATH '$.id', qr_id VARCHAR(64) PATH '$.qr_id', qr_string TEXT PATH '$.qr_string',
           qr_url VARCHAR(255) PATH '$.qr_url')) j
         STRAIGHT_JOIN qris_transaction t FORCE INDEX (PRIMARY) ON t.tr_id = j.id
  SET t.tr_xendit_id = j.qr_id, t.tr_qris_string = j.qr_string, t.tr_qris_url = j.qr_url
  WHERE t.tr_status = 'PENDING' AND t.tr_xendit_id IS NULL;
  DELETE o FROM JSON_TABLE(p_codes, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$.id')) j
         STRAIGHT_JOIN outbox o FORCE INDEX (uq_outbox_job) ON o.job_key = CONCAT(p_job_key_prefix, j.id);
  SELECT v_attached;
END //

DELIMITER ;
