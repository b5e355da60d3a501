-- +goose Up
-- Merchants and their credentials. Secrets (the APIv3 key, the platform's
-- private keys) are stored only sealed with AES-256-GCM under a master key
-- (column *_enc, base64 nonce||ciphertext) with the master key's id beside
-- them (*_kid), so the master key can rotate and a process holding the wrong
-- one says so.
CREATE TABLE merchants (
    id                  TEXT PRIMARY KEY,
    parent_id           TEXT REFERENCES merchants (id),
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('SANDBOX', 'PENDING_REVIEW', 'LIVE', 'SUSPENDED', 'CLOSED')),
    settlement_currency TEXT NOT NULL,
    fee_rate_bps        BIGINT NOT NULL CHECK (fee_rate_bps BETWEEN 0 AND 10000),
    notify_hosts        TEXT NOT NULL,
    ip_allow_list       TEXT NOT NULL,
    apiv3_key_enc       TEXT NOT NULL,
    apiv3_key_kid       TEXT NOT NULL,
    live_since          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX merchants_parent ON merchants (parent_id);

-- A merchant's request-signing public keys. Several may be active at once
-- (rotation); a revoked key (revoked_at set) stops working at once.
CREATE TABLE merchant_keys (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    serial_no   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('GENERATED', 'UPLOADED')),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (merchant_id, serial_no)
);

-- The platform's response and notification signing keys. generation orders
-- them and, being unique, lets only one of several racing processes add the
-- next key.
CREATE TABLE platform_keys (
    serial_no       TEXT PRIMARY KEY,
    generation      BIGINT NOT NULL UNIQUE,
    public_key      TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    private_key_kid TEXT NOT NULL,
    valid_from      BIGINT NOT NULL,
    valid_until     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Request nonces seen within the timestamp window, shared by every server
-- process; expired rows are deleted by a job (and may be reused meanwhile).
CREATE TABLE auth_nonces (
    merchant_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX auth_nonces_expires ON auth_nonces (expires_at);

-- +goose Down
DROP TABLE auth_nonces;
DROP TABLE platform_keys;
DROP TABLE merchant_keys;
DROP TABLE merchants;
