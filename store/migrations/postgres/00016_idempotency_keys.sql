-- +goose Up
-- Idempotency-Key results of the merchant API's POSTs (httpapi/idempotency.go):
-- one row per merchant and key. status 0 marks a request still running;
-- otherwise the row keeps the answer (status and JSON body) that a retry
-- with the same key and the same request gets again. request_hash is the
-- hex SHA-256 of method, path and body. Times are BIGINT microseconds
-- since the Unix epoch (UTC); rows older than a day are deleted by a job.
CREATE TABLE idempotency_keys (
    merchant_id  TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    body         TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
