-- +goose Up
-- Authorizations through a channel (payment.ChannelRelease): a
-- manual-capture order paid through a channel that authorizes
-- (channel.Authorizer) leaves the payer's money held at the channel. The
-- transaction that captures, voids or expires the order writes here what
-- the channel must be told (CAPTURE of amount, the rest released; or VOID),
-- PENDING; the call is made after the commit and repeated by the release
-- job until the channel confirms (DONE) or refuses outright (DECLINED, an
-- operator's alert). One row per authorizing attempt: an authorization is
-- resolved once. Times are BIGINT microseconds since the Unix epoch (UTC),
-- 0 meaning "not yet".
CREATE TABLE payment_channel_releases (
    attempt_id       TEXT PRIMARY KEY REFERENCES payment_attempts (id),
    order_id         TEXT NOT NULL,
    merchant_id      TEXT NOT NULL,
    channel          TEXT NOT NULL,
    channel_trade_no TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL CHECK (kind IN ('CAPTURE', 'VOID')),
    amount           BIGINT NOT NULL CHECK (amount >= 0),     -- captured; 0 for VOID
    authorized       BIGINT NOT NULL CHECK (authorized > 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('PENDING', 'DONE', 'DECLINED')),
    tries            INTEGER NOT NULL DEFAULT 0,
    next_try_at      BIGINT NOT NULL DEFAULT 0,
    fail_code        TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    done_at          BIGINT NOT NULL DEFAULT 0,
    CHECK (amount <= authorized)
);
CREATE INDEX payment_channel_releases_order ON payment_channel_releases (order_id);
-- The release job looks at pending rows only.
CREATE INDEX payment_channel_releases_due ON payment_channel_releases (next_try_at) WHERE status = 'PENDING';

-- +goose Down
DROP TABLE payment_channel_releases;
