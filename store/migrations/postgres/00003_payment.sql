-- +goose Up
-- Unified orders and their payment attempts. Times are BIGINT microseconds
-- since the Unix epoch (UTC), 0 meaning "not yet" where a column is NOT NULL.
CREATE TABLE payment_orders (
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
    metadata         TEXT NOT NULL DEFAULT '',   -- JSON object, '' when none
    payment_methods  TEXT NOT NULL DEFAULT '',   -- JSON array, '' when none
    time_expire      BIGINT NOT NULL,
    sandbox          BOOLEAN NOT NULL,
    request_hash     TEXT NOT NULL,              -- fingerprint of the create request (idempotency)
    payer_total      BIGINT NOT NULL DEFAULT 0,
    fee              BIGINT NOT NULL DEFAULT 0,
    transaction_id   TEXT NOT NULL DEFAULT '',   -- the attempt that paid it
    channel          TEXT NOT NULL DEFAULT '',
    channel_trade_no TEXT NOT NULL DEFAULT '',
    success_time     BIGINT NOT NULL DEFAULT 0,
    close_time       BIGINT NOT NULL DEFAULT 0,
    close_reason     TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    -- A merchant's numbers are its natural keys: one order per number.
    UNIQUE (merchant_id, out_trade_no)
);
-- Lists: a merchant's orders newest first (ids are time-ordered), by status.
CREATE INDEX payment_orders_merchant ON payment_orders (merchant_id, id);
CREATE INDEX payment_orders_merchant_status ON payment_orders (merchant_id, status, id);
-- The expiry job looks at open orders only.
CREATE INDEX payment_orders_expiring ON payment_orders (time_expire) WHERE status IN ('NOTPAY', 'PAYERROR');

CREATE TABLE payment_attempts (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES payment_orders (id),
    merchant_id      TEXT NOT NULL,
    channel          TEXT NOT NULL,
    channel_trade_no TEXT,                       -- NULL until the channel names it
    amount           BIGINT NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'FAILED')),
    fail_code        TEXT NOT NULL DEFAULT '',
    review           TEXT NOT NULL DEFAULT '' CHECK (review IN ('', 'ORDER_CLOSED', 'ORDER_ALREADY_PAID')),
    paid_at          BIGINT NOT NULL DEFAULT 0,
    query_count      INTEGER NOT NULL DEFAULT 0,
    next_query_at    BIGINT,                     -- NULL once final
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- A channel's trade number names one payment.
CREATE UNIQUE INDEX payment_attempts_trade_no ON payment_attempts (channel, channel_trade_no) WHERE channel_trade_no IS NOT NULL;
CREATE INDEX payment_attempts_order ON payment_attempts (order_id, id);
-- ReconcileUnknown looks at payments whose outcome is unknown only.
CREATE INDEX payment_attempts_unknown ON payment_attempts (next_query_at) WHERE status = 'PROCESSING';
-- The review work list: successful payments held in suspense.
CREATE INDEX payment_attempts_review ON payment_attempts (id) WHERE review <> '';

-- +goose Down
DROP TABLE payment_attempts;
DROP TABLE payment_orders;
