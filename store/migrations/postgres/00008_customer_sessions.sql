-- +goose Up
-- Customers' login sessions (the customer portal and the checkout). The
-- session token lives only in the customer's cookie: a row keeps the hex
-- SHA-256 of it, so a copy of the table logs nobody in. Times are BIGINT
-- microseconds since the Unix epoch (UTC). idle_expires_at slides forward
-- with use and never passes expires_at (the absolute lifetime), so a session
-- is live exactly while idle_expires_at is in the future.
CREATE TABLE customer_sessions (
    token_hash      TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    CHECK (idle_expires_at <= expires_at)
);
CREATE INDEX customer_sessions_customer ON customer_sessions (customer_id);
CREATE INDEX customer_sessions_idle ON customer_sessions (idle_expires_at);

-- +goose Down
DROP TABLE customer_sessions;
