-- +goose Up
-- Times are stored as BIGINT microseconds since the Unix epoch (UTC) in both
-- dialects, so the same SQL and scanning code serve PostgreSQL and SQLite.
CREATE TABLE ledger_accounts (
    id          TEXT PRIMARY KEY,
    currency    TEXT NOT NULL,
    code        INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    flags       INTEGER NOT NULL,
    shards      INTEGER NOT NULL CHECK (shards BETWEEN 1 AND 64),
    created_at  BIGINT NOT NULL
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner);

-- One row per shard of an account; an ordinary account has shard 0 only.
-- flags mirrors ledger_accounts.flags so that a transfer reads the account's
-- current state from the very rows it locks.
CREATE TABLE ledger_balances (
    account_id      TEXT NOT NULL REFERENCES ledger_accounts (id),
    shard           INTEGER NOT NULL,
    flags           INTEGER NOT NULL,
    debits_pending  BIGINT NOT NULL DEFAULT 0,
    debits_posted   BIGINT NOT NULL DEFAULT 0,
    credits_pending BIGINT NOT NULL DEFAULT 0,
    credits_posted  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, shard)
);

CREATE TABLE ledger_transfers (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    debit_account_id  TEXT NOT NULL REFERENCES ledger_accounts (id),
    credit_account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
    debit_shard       INTEGER NOT NULL,
    credit_shard      INTEGER NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('single', 'pending', 'post', 'void', 'expire')),
    flags             INTEGER NOT NULL,
    pending_id        TEXT REFERENCES ledger_transfers (id),
    timeout_s         BIGINT NOT NULL DEFAULT 0,
    expires_at        BIGINT,
    hold_status       TEXT CHECK (hold_status IN ('pending', 'posted', 'voided', 'expired')),
    code              INTEGER NOT NULL,
    ref               TEXT NOT NULL,
    accounting_date   TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
-- A hold is resolved at most once, whatever the code above does.
CREATE UNIQUE INDEX ledger_transfers_pending_id ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, seq);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, seq);
CREATE INDEX ledger_transfers_expiring ON ledger_transfers (expires_at) WHERE hold_status = 'pending' AND expires_at IS NOT NULL;
CREATE INDEX ledger_transfers_date ON ledger_transfers (accounting_date);

-- +goose Down
DROP TABLE ledger_transfers;
DROP TABLE ledger_balances;
DROP TABLE ledger_accounts;
