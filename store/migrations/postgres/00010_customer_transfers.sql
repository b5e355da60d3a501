-- +goose Up
-- Customers' transfers (package transfer): balance account → another
-- customer's balance account, an own-bank card, or another bank's card
-- through the interbank channel. Times are BIGINT microseconds since the
-- Unix epoch (UTC), 0 meaning "not yet" where a column is NOT NULL.
CREATE TABLE customer_transfers (
    id                    TEXT PRIMARY KEY,
    customer_id           TEXT NOT NULL REFERENCES customers (id), -- the payer
    request_id            TEXT NOT NULL,             -- the payer's idempotency key
    request_hash          TEXT NOT NULL,             -- HMAC of recipient, amount and memo
    kind                  TEXT NOT NULL CHECK (kind IN ('CUSTOMER', 'OWN_CARD', 'OTHER_BANK_CARD')),
    recipient_customer_id TEXT REFERENCES customers (id), -- NULL for another bank's card
    recipient_card_id     TEXT,                      -- the own-bank card credited
    recipient_masked      TEXT NOT NULL,             -- 138****0002, 628888******0054
    recipient_name        TEXT NOT NULL DEFAULT '',  -- masked verified name
    sender_masked         TEXT NOT NULL,
    sender_name           TEXT NOT NULL DEFAULT '',
    card_enc              TEXT NOT NULL DEFAULT '',  -- another bank's card number, sealed
    card_kid              TEXT NOT NULL DEFAULT '',
    amount                BIGINT NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL,
    memo                  TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'FAILED')),
    fail_code             TEXT NOT NULL DEFAULT '',
    accounting_date       TEXT NOT NULL,             -- the business day its limit usage counts in
    scenario              TEXT NOT NULL DEFAULT '',  -- the simulated channel's outcome
    channel               TEXT NOT NULL DEFAULT '',
    channel_no            TEXT,                      -- NULL until the channel names it
    query_count           INTEGER NOT NULL DEFAULT 0,
    next_query_at         BIGINT,                    -- NULL once final (and for transfers on us)
    finished_at           BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    -- A payer's request id names one transfer.
    UNIQUE (customer_id, request_id)
);
-- A customer's transfers, sent and received, newest (greatest id) first.
CREATE INDEX customer_transfers_sent ON customer_transfers (customer_id, id);
CREATE INDEX customer_transfers_received ON customer_transfers (recipient_customer_id, id) WHERE recipient_customer_id IS NOT NULL;
-- Reconcile looks at PROCESSING transfers only.
CREATE INDEX customer_transfers_due ON customer_transfers (next_query_at) WHERE status = 'PROCESSING';

-- +goose Down
DROP TABLE customer_transfers;
