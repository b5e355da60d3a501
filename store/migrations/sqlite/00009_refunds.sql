-- +goose Up
-- Refunds of paid orders (payment.Refund). Times are BIGINT microseconds
-- since the Unix epoch (UTC), 0 meaning "not yet" where a column is NOT NULL.
CREATE TABLE payment_refunds (
    id                TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    out_refund_no     TEXT NOT NULL,
    order_id          TEXT NOT NULL REFERENCES payment_orders (id),
    out_trade_no      TEXT NOT NULL,
    transaction_id    TEXT NOT NULL,             -- the payment attempt refunded
    channel           TEXT NOT NULL,
    channel_refund_no TEXT,                      -- NULL until the channel names it
    reason            TEXT NOT NULL DEFAULT '',
    notify_url        TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL')),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    total             BIGINT NOT NULL CHECK (total > 0),
    fee_refund        BIGINT NOT NULL DEFAULT 0 CHECK (fee_refund >= 0),
    currency          TEXT NOT NULL,
    funds_source      TEXT NOT NULL CHECK (funds_source IN ('PENDING', 'SETTLED')),
    if_insufficient   TEXT NOT NULL CHECK (if_insufficient IN ('FAIL', 'WAIT')),
    awaiting_funds    BOOLEAN NOT NULL DEFAULT FALSE, -- WAIT: nothing moved yet
    scenario          TEXT NOT NULL DEFAULT '',  -- the simulated channel's outcome
    fail_code         TEXT NOT NULL DEFAULT '',
    request_hash      TEXT NOT NULL,             -- fingerprint of the create request (idempotency)
    sandbox           BOOLEAN NOT NULL,
    query_count       INTEGER NOT NULL DEFAULT 0,
    next_query_at     BIGINT,                    -- NULL once final (and for refunds on us)
    success_time      BIGINT NOT NULL DEFAULT 0,
    close_time        BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    -- A merchant's refund numbers are its natural keys: one refund per number.
    UNIQUE (merchant_id, out_refund_no)
);
CREATE INDEX payment_refunds_order ON payment_refunds (order_id, id);
-- ReconcileRefunds looks at PROCESSING refunds only.
CREATE INDEX payment_refunds_due ON payment_refunds (next_query_at) WHERE status = 'PROCESSING';
-- A channel's refund number names one refund.
CREATE UNIQUE INDEX payment_refunds_channel_no ON payment_refunds (channel, channel_refund_no) WHERE channel_refund_no IS NOT NULL;

-- When settlement moved an order's net proceeds to the merchant's settled
-- balance (0: not settled); refunds after it are paid from that balance.
ALTER TABLE payment_orders ADD COLUMN settled_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE payment_orders DROP COLUMN settled_at;
DROP TABLE payment_refunds;
