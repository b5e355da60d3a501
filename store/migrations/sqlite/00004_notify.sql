-- +goose Up
-- The notification outbox. A row is written in the same transaction as the
-- state change the merchant must hear about, then delivered by workers.
-- Times are BIGINT microseconds since the Unix epoch (UTC), as everywhere.
CREATE TABLE notify_events (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    merchant_id       TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    original_type     TEXT NOT NULL,
    summary           TEXT NOT NULL,
    url               TEXT NOT NULL,
    sandbox           BOOLEAN NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    -- attempts counts every claim over the event's life (it numbers the
    -- attempts); attempts_in_round counts claims since the event was
    -- enqueued or last resent (it picks the retry delay).
    attempts          INTEGER NOT NULL DEFAULT 0,
    attempts_in_round INTEGER NOT NULL DEFAULT 0,
    -- When a worker may next claim the row: NULL once DELIVERED or FAILED;
    -- while claimed it equals claimed_until, so a vanished worker's claim
    -- falls due again when its lease ends.
    next_attempt_at   BIGINT,
    claim_owner       TEXT NOT NULL DEFAULT '',
    claimed_until     BIGINT,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX notify_events_due ON notify_events (next_attempt_at, seq) WHERE status = 'PENDING';
CREATE INDEX notify_events_merchant ON notify_events (merchant_id, seq);

-- One row per delivery attempt, written IN_PROGRESS when claimed. Only an
-- error class, the HTTP status and a short snippet of the merchant's answer
-- are kept; never secrets.
CREATE TABLE notify_attempts (
    event_id         TEXT NOT NULL REFERENCES notify_events (id),
    attempt          INTEGER NOT NULL,
    worker           TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('IN_PROGRESS', 'DELIVERED', 'FAILED', 'ABANDONED')),
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    duration_us      BIGINT NOT NULL DEFAULT 0,
    http_status      INTEGER NOT NULL DEFAULT 0,
    error_class      TEXT NOT NULL DEFAULT '',
    response_snippet TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, attempt)
);

-- +goose Down
DROP TABLE notify_attempts;
DROP TABLE notify_events;
