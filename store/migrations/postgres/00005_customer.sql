-- +goose Up
-- Customers, their cards, quick-pay agreements and daily limit usage.
-- Times are BIGINT microseconds since the Unix epoch (UTC), 0 meaning
-- "never". No column holds a card number, password, payment password or ID
-- number in clear: secrets are argon2id hashes (*_hash), AES-256-GCM
-- ciphertexts with their master key id (*_enc, *_kid), or HMAC-SHA256
-- blind indexes (*_index, *_digest).
CREATE TABLE customers (
    id                 TEXT PRIMARY KEY,
    phone              TEXT,                       -- login phone; NULL when registered by username
    username           TEXT,                       -- NULL when registered by phone
    password_hash      TEXT NOT NULL,              -- argon2id, PHC string
    pay_password_hash  TEXT NOT NULL DEFAULT '',   -- argon2id; '' until set
    status             TEXT NOT NULL CHECK (status IN ('ACTIVE', 'FROZEN', 'CLOSED')),
    factors            INTEGER NOT NULL,           -- bit set of verification factors
    online_payment     BOOLEAN NOT NULL,
    identity_enc       TEXT NOT NULL DEFAULT '',   -- sealed JSON {name, id_number, phone} once verified
    identity_kid       TEXT NOT NULL DEFAULT '',
    id_index           TEXT,                       -- blind index of the ID number; NULL until verified
    name_masked        TEXT NOT NULL DEFAULT '',
    id_masked          TEXT NOT NULL DEFAULT '',
    phone_masked       TEXT NOT NULL DEFAULT '',   -- the verified phone, masked
    verified_at        BIGINT NOT NULL DEFAULT 0,
    login_failures     INTEGER NOT NULL DEFAULT 0,
    login_window_start BIGINT NOT NULL DEFAULT 0,
    login_locked_until BIGINT NOT NULL DEFAULT 0,
    pay_failures       INTEGER NOT NULL DEFAULT 0,
    pay_window_start   BIGINT NOT NULL DEFAULT 0,
    pay_locked_until   BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_phone ON customers (phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX customers_username ON customers (username) WHERE username IS NOT NULL;
CREATE INDEX customers_id_index ON customers (id_index) WHERE id_index IS NOT NULL;

CREATE TABLE customer_cards (
    id                  TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    kind                TEXT NOT NULL CHECK (kind IN ('DEBIT', 'CORPORATE', 'OTHER_BANK')),
    bank                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('ACTIVE', 'FROZEN', 'CLOSED')),
    pan_enc             TEXT NOT NULL,             -- sealed card number
    pan_kid             TEXT NOT NULL,
    pan_index           TEXT NOT NULL,             -- blind index of the card number
    first6              TEXT NOT NULL,
    last4               TEXT NOT NULL,
    pan_length          INTEGER NOT NULL,
    holder_digest       TEXT NOT NULL,             -- HMAC of holder name, ID number and phone
    holder_phone_enc    TEXT NOT NULL,             -- sealed reserved phone (OTPs go there)
    holder_phone_kid    TEXT NOT NULL,
    holder_phone_masked TEXT NOT NULL,
    account_id          TEXT NOT NULL DEFAULT '',  -- ledger account of own-bank cards
    currency            TEXT NOT NULL,
    single_limit        BIGINT NOT NULL DEFAULT 0, -- 0: the configured default
    daily_limit         BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
-- A card number belongs to one card.
CREATE UNIQUE INDEX customer_cards_pan ON customer_cards (pan_index);
CREATE INDEX customer_cards_customer ON customer_cards (customer_id, id);

CREATE TABLE customer_agreements (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    card_id     TEXT NOT NULL REFERENCES customer_cards (id),
    status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);
-- A card has at most one active binding.
CREATE UNIQUE INDEX customer_agreements_active ON customer_agreements (card_id) WHERE status = 'ACTIVE';
CREATE INDEX customer_agreements_customer ON customer_agreements (customer_id, id);

-- What each limit scope (a customer, a customer and method, a card) has
-- used on one business day. Reservations add to it with one conditional
-- upsert, so concurrent payments never overshoot.
CREATE TABLE customer_limit_usage (
    scope TEXT NOT NULL,
    day   TEXT NOT NULL,
    used  BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (scope, day)
);

-- +goose Down
DROP TABLE customer_limit_usage;
DROP TABLE customer_agreements;
DROP TABLE customer_cards;
DROP TABLE customers;
