-- +goose Up
-- One-time codes (OTP) and the SMS outbox. A code is never stored: only an
-- HMAC-SHA256 of it under a server key (key_id names the key). Message text
-- is stored only sealed (AES-256-GCM) while waiting to be sent and is wiped
-- once the message is SENT or FAILED; the clear text lives only in the
-- sandbox inbox, for sandbox phones. Times are BIGINT microseconds since the
-- Unix epoch (UTC), as everywhere.
CREATE TABLE otp_codes (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    phone      TEXT NOT NULL,
    code_mac   TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'USED', 'SUPERSEDED')),
    tries      INTEGER NOT NULL DEFAULT 0,
    max_tries  INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
-- At most one live code per purpose and subject: a new one supersedes it.
CREATE UNIQUE INDEX otp_codes_active ON otp_codes (purpose, subject) WHERE status = 'ACTIVE';
CREATE INDEX otp_codes_recent ON otp_codes (purpose, subject, created_at);
CREATE INDEX otp_codes_expires ON otp_codes (expires_at);

-- Codes sent per phone per local day, for the daily cap.
CREATE TABLE otp_phone_quota (
    phone TEXT NOT NULL,
    day   TEXT NOT NULL,
    sent  INTEGER NOT NULL,
    PRIMARY KEY (phone, day)
);

-- The SMS outbox: written in the transaction that issues the code, sent by
-- workers (claimed with FOR UPDATE SKIP LOCKED on PostgreSQL and a lease).
CREATE TABLE sms_messages (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    phone           TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    -- base64(nonce || AES-256-GCM(text)) under key_id; '' once SENT or FAILED.
    body_sealed     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- NULL once SENT or FAILED; while claimed it equals claimed_until.
    next_attempt_at BIGINT,
    claim_owner     TEXT NOT NULL DEFAULT '',
    claimed_until   BIGINT,
    -- An error class (never the text or the provider's answer).
    last_error      TEXT NOT NULL DEFAULT '',
    provider_id     TEXT NOT NULL DEFAULT '',
    -- Not sent after this (the code in it has expired); NULL: no limit.
    send_before     BIGINT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX sms_messages_due ON sms_messages (next_attempt_at, seq) WHERE status = 'PENDING';
CREATE INDEX sms_messages_phone ON sms_messages (phone, seq);
CREATE INDEX sms_messages_finished ON sms_messages (updated_at) WHERE status <> 'PENDING';

-- The sandbox inbox: what the sandbox sender "delivered", readable by
-- testers (paygate sms latest). The only table holding message text in clear.
CREATE TABLE sms_sandbox_inbox (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL UNIQUE,
    phone       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    text        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX sms_sandbox_inbox_phone ON sms_sandbox_inbox (phone, seq);
CREATE INDEX sms_sandbox_inbox_received ON sms_sandbox_inbox (received_at);

-- +goose Down
DROP TABLE sms_sandbox_inbox;
DROP TABLE sms_messages;
DROP TABLE otp_phone_quota;
DROP TABLE otp_codes;
