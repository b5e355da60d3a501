-- +goose Up
-- Batch refunds (payment.RefundBatch): a merchant's list of up to 1,000
-- refunds, accepted at once and worked through item by item by the batch
-- worker, each item through the one-refund command (idempotent by
-- out_refund_no). Times are BIGINT microseconds since the Unix epoch (UTC),
-- 0 meaning "not yet" where a column is NOT NULL.
CREATE TABLE refund_batches (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL,
    out_batch_no    TEXT NOT NULL,
    request_hash    TEXT NOT NULL,             -- fingerprint of the request (idempotency)
    notify_url      TEXT NOT NULL DEFAULT '',  -- '' : the orders' notify_url, no batch notification
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PROCESSING', 'FINISHED')),
    total_count     INTEGER NOT NULL CHECK (total_count > 0),
    accepted_count  INTEGER NOT NULL DEFAULT 0,
    failed_count    INTEGER NOT NULL DEFAULT 0,
    accepted_amount BIGINT NOT NULL DEFAULT 0, -- sum of the accepted items' refunds
    sandbox         BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL DEFAULT 0,
    -- A merchant's batch numbers are its natural keys: one batch per number.
    UNIQUE (merchant_id, out_batch_no),
    CHECK (accepted_count + failed_count <= total_count)
);

-- One line of a batch, as sent (a line that failed its checks is kept as
-- sent, cleaned of NUL characters), and its outcome.
CREATE TABLE refund_batch_items (
    batch_id        TEXT NOT NULL REFERENCES refund_batches (id),
    line            INTEGER NOT NULL CHECK (line > 0), -- 1-based position in items
    merchant_id     TEXT NOT NULL,
    notify_url      TEXT NOT NULL DEFAULT '',  -- the batch's, for the refund's notifications
    out_refund_no   TEXT NOT NULL,
    order_id        TEXT NOT NULL DEFAULT '',
    out_trade_no    TEXT NOT NULL DEFAULT '',
    amount          BIGINT NOT NULL,           -- as sent: a bad line may carry 0 or less
    total           BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    if_insufficient TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'ACCEPTED', 'FAILED')),
    refund_id       TEXT,                      -- the refund, once ACCEPTED
    fail_code       TEXT NOT NULL DEFAULT '',
    fail_field      TEXT NOT NULL DEFAULT '',
    fail_message    TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,                    -- NULL once the line has its outcome
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (batch_id, line)
);
-- The worker claims PENDING lines whose next attempt is due.
CREATE INDEX refund_batch_items_due ON refund_batch_items (next_attempt_at, batch_id, line) WHERE status = 'PENDING';

-- +goose Down
DROP TABLE refund_batch_items;
DROP TABLE refund_batches;
