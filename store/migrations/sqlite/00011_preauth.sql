-- +goose Up
-- Pre-authorization (manual capture): an order created with capture_method
-- MANUAL is AUTHORIZED when paid — the payer's money held by a ledger hold
-- ("pay_" + id, a pending transfer) — until the merchant captures all or
-- part of it (SUCCESS), voids it, or capture_before passes (CLOSED).
-- authorized_amount is what was held, captured_amount what was captured;
-- authorize_time and capture_before are BIGINT microseconds (0: none).
--
-- SQLite cannot alter a CHECK constraint, so payment_orders is rebuilt with
-- the new status and columns. Inside goose's transaction foreign keys
-- cannot be switched off; they are deferred instead, and the rows are
-- copied back only after the rename, so that the attempts and refunds
-- referencing them find their orders again before the commit checks.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE payment_orders_copy AS SELECT id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at FROM payment_orders;
CREATE TABLE payment_orders_new (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    out_trade_no     TEXT NOT NULL,
    description      TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('NOTPAY', 'PAYERROR', 'SUCCESS', 'CLOSED', 'REFUND', 'AUTHORIZED')),
    notify_url       TEXT NOT NULL,
    return_url       TEXT NOT NULL DEFAULT '',
    attach           TEXT NOT NULL DEFAULT '',
    metadata         TEXT NOT NULL DEFAULT '',
    payment_methods  TEXT NOT NULL DEFAULT '',
    time_expire      BIGINT NOT NULL,
    sandbox          BOOLEAN NOT NULL,
    request_hash     TEXT NOT NULL,
    payer_total      BIGINT NOT NULL DEFAULT 0,
    fee              BIGINT NOT NULL DEFAULT 0,
    transaction_id   TEXT NOT NULL DEFAULT '',
    channel          TEXT NOT NULL DEFAULT '',
    channel_trade_no TEXT NOT NULL DEFAULT '',
    success_time     BIGINT NOT NULL DEFAULT 0,
    close_time       BIGINT NOT NULL DEFAULT 0,
    close_reason     TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    settled_at       BIGINT NOT NULL DEFAULT 0,
    capture_method   TEXT NOT NULL DEFAULT 'AUTOMATIC' CHECK (capture_method IN ('AUTOMATIC', 'MANUAL')),
    authorized_amount BIGINT NOT NULL DEFAULT 0,
    captured_amount  BIGINT NOT NULL DEFAULT 0,
    authorize_time   BIGINT NOT NULL DEFAULT 0,
    capture_before   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (merchant_id, out_trade_no)
);
DROP TABLE payment_orders;
ALTER TABLE payment_orders_new RENAME TO payment_orders;
INSERT INTO payment_orders (id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at) SELECT id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at FROM payment_orders_copy;
DROP TABLE payment_orders_copy;
CREATE INDEX payment_orders_merchant ON payment_orders (merchant_id, id);
CREATE INDEX payment_orders_merchant_status ON payment_orders (merchant_id, status, id);
CREATE INDEX payment_orders_expiring ON payment_orders (time_expire) WHERE status IN ('NOTPAY', 'PAYERROR');
-- The authorization expiry job looks at authorized orders only.
CREATE INDEX payment_orders_authorized ON payment_orders (capture_before) WHERE status = 'AUTHORIZED';

-- +goose Down
PRAGMA defer_foreign_keys = ON;
CREATE TABLE payment_orders_copy AS SELECT id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at FROM payment_orders;
CREATE TABLE payment_orders_new (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    out_trade_no     TEXT NOT NULL,
    description      TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('NOTPAY', 'PAYERROR', 'SUCCESS', 'CLOSED', 'REFUND')),
    notify_url       TEXT NOT NULL,
    return_url       TEXT NOT NULL DEFAULT '',
    attach           TEXT NOT NULL DEFAULT '',
    metadata         TEXT NOT NULL DEFAULT '',
    payment_methods  TEXT NOT NULL DEFAULT '',
    time_expire      BIGINT NOT NULL,
    sandbox          BOOLEAN NOT NULL,
    request_hash     TEXT NOT NULL,
    payer_total      BIGINT NOT NULL DEFAULT 0,
    fee              BIGINT NOT NULL DEFAULT 0,
    transaction_id   TEXT NOT NULL DEFAULT '',
    channel          TEXT NOT NULL DEFAULT '',
    channel_trade_no TEXT NOT NULL DEFAULT '',
    success_time     BIGINT NOT NULL DEFAULT 0,
    close_time       BIGINT NOT NULL DEFAULT 0,
    close_reason     TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    settled_at       BIGINT NOT NULL DEFAULT 0,
    UNIQUE (merchant_id, out_trade_no)
);
DROP TABLE payment_orders;
ALTER TABLE payment_orders_new RENAME TO payment_orders;
INSERT INTO payment_orders (id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at) SELECT id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
    metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
    channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at FROM payment_orders_copy;
DROP TABLE payment_orders_copy;
CREATE INDEX payment_orders_merchant ON payment_orders (merchant_id, id);
CREATE INDEX payment_orders_merchant_status ON payment_orders (merchant_id, status, id);
CREATE INDEX payment_orders_expiring ON payment_orders (time_expire) WHERE status IN ('NOTPAY', 'PAYERROR');
