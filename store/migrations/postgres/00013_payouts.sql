-- +goose Up
-- Merchants' batch payments (package payout). A batch's lines are its
-- items; a line refused at acceptance is REJECTED and holds nothing. Times
-- are BIGINT microseconds since the Unix epoch (UTC), 0 meaning "not yet"
-- where a column is NOT NULL.
CREATE TABLE payout_batches (
    id              TEXT PRIMARY KEY,
    mchid           TEXT NOT NULL,
    out_batch_no    TEXT NOT NULL,
    request_hash    TEXT NOT NULL,             -- HMAC of the normalised request
    currency        TEXT NOT NULL,
    remark          TEXT NOT NULL DEFAULT '',
    notify_url      TEXT NOT NULL DEFAULT '',
    sandbox         BOOLEAN NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PROCESSING', 'FINISHED')),
    total_count     INTEGER NOT NULL,
    rejected_count  INTEGER NOT NULL,
    accepted_count  INTEGER NOT NULL,
    accepted_amount BIGINT NOT NULL,
    success_count   INTEGER NOT NULL DEFAULT 0,
    success_amount  BIGINT NOT NULL DEFAULT 0,
    fail_count      INTEGER NOT NULL DEFAULT 0,
    fail_amount     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL DEFAULT 0,
    -- A merchant's batch number names one batch.
    UNIQUE (mchid, out_batch_no)
);

CREATE TABLE payout_items (
    id                    TEXT PRIMARY KEY,
    batch_id              TEXT NOT NULL REFERENCES payout_batches (id),
    mchid                 TEXT NOT NULL,
    seq                   INTEGER NOT NULL,          -- position in the batch, from 1
    out_detail_no         TEXT NOT NULL,
    amount                BIGINT NOT NULL,           -- as asked; only accepted items are positive for sure
    currency              TEXT NOT NULL,
    recipient_type        TEXT NOT NULL CHECK (recipient_type IN ('ACCOUNT', 'CARD')),
    kind                  TEXT NOT NULL DEFAULT '',  -- ACCOUNT, OWN_CARD, OTHER_BANK_CARD; '' if rejected early
    recipient_customer_id TEXT,
    recipient_card_id     TEXT,
    recipient_masked      TEXT NOT NULL DEFAULT '',
    recipient_name        TEXT NOT NULL DEFAULT '',  -- masked
    card_enc              TEXT NOT NULL DEFAULT '',  -- another bank's card number, sealed
    card_kid              TEXT NOT NULL DEFAULT '',
    remark                TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL CHECK (status IN ('REJECTED', 'PENDING', 'PROCESSING', 'SUCCESS', 'FAILED')),
    fail_reason           TEXT NOT NULL DEFAULT '',
    scenario              TEXT NOT NULL DEFAULT '',
    channel               TEXT NOT NULL DEFAULT '',
    channel_no            TEXT,
    query_count           INTEGER NOT NULL DEFAULT 0,
    next_query_at         BIGINT,                    -- NULL unless PROCESSING
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    finished_at           BIGINT NOT NULL DEFAULT 0,
    UNIQUE (batch_id, seq)
);
-- A merchant's out_detail_no names one accepted item across batches.
CREATE UNIQUE INDEX payout_items_detail_no ON payout_items (mchid, out_detail_no) WHERE status <> 'REJECTED';
-- The worker takes PENDING items, oldest first.
CREATE INDEX payout_items_pending ON payout_items (id) WHERE status = 'PENDING';
-- Reconcile looks at PROCESSING items only.
CREATE INDEX payout_items_due ON payout_items (next_query_at) WHERE status = 'PROCESSING';

-- +goose Down
DROP TABLE payout_items;
DROP TABLE payout_batches;
