-- +goose Up
-- Merchants' agreements (mandates, 协议支付; package agreement): a
-- customer signs on the hosted sign page with a card, a holder check and a
-- one-time code; the merchant then charges the card without the customer
-- present, within the agreement's limits, until it is revoked or ends.
-- Times are BIGINT microseconds since the Unix epoch (UTC), 0 meaning
-- "not yet" / "none".
CREATE TABLE merchant_agreements (
    id                TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,             -- like payment_orders: no foreign key to merchants
    out_agreement_no  TEXT NOT NULL,
    request_hash      TEXT NOT NULL,             -- fingerprint of the create request (idempotency)
    plan              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    currency          TEXT NOT NULL,
    per_payment_limit BIGINT NOT NULL DEFAULT 0 CHECK (per_payment_limit >= 0), -- 0: none of its own
    daily_limit       BIGINT NOT NULL DEFAULT 0 CHECK (daily_limit >= 0),
    end_date          TEXT NOT NULL DEFAULT '',  -- last day charges are taken (YYYY-MM-DD), '' for none
    ends_at           BIGINT NOT NULL DEFAULT 0, -- the instant after end_date ends (business calendar)
    notify_url        TEXT NOT NULL,
    return_url        TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL CHECK (status IN ('PENDING', 'SIGNED', 'REVOKED', 'EXPIRED')),
    customer_id       TEXT REFERENCES customers (id), -- the signer, NULL until signed
    card_id           TEXT,                      -- the signed card, by reference only
    card_masked       TEXT NOT NULL DEFAULT '',
    card_bank         TEXT NOT NULL DEFAULT '',
    sign_expires_at   BIGINT NOT NULL,           -- a PENDING agreement not signed by then expires
    signed_at         BIGINT NOT NULL DEFAULT 0,
    revoked_at        BIGINT NOT NULL DEFAULT 0,
    revoked_by        TEXT NOT NULL DEFAULT '',  -- MERCHANT or CUSTOMER
    expired_at        BIGINT NOT NULL DEFAULT 0,
    sandbox           BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    -- A merchant's out_agreement_no names one agreement.
    UNIQUE (merchant_id, out_agreement_no)
);
-- A merchant's agreements and a customer's, newest (greatest id) first.
CREATE INDEX merchant_agreements_merchant ON merchant_agreements (merchant_id, id);
CREATE INDEX merchant_agreements_customer ON merchant_agreements (customer_id, id) WHERE customer_id IS NOT NULL;
-- The expiry job: pending sign requests and signed agreements past their end.
CREATE INDEX merchant_agreements_sign_due ON merchant_agreements (sign_expires_at) WHERE status = 'PENDING';
CREATE INDEX merchant_agreements_end_due ON merchant_agreements (ends_at) WHERE status = 'SIGNED' AND ends_at > 0;

-- One row per charge of an agreement: its order, amount and the business
-- day its per-day limit counts in. A charge whose payment failed stops
-- counting (its order's attempt is FAILED).
CREATE TABLE merchant_agreement_charges (
    order_id        TEXT PRIMARY KEY REFERENCES payment_orders (id),
    agreement_id    TEXT NOT NULL REFERENCES merchant_agreements (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    accounting_date TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX merchant_agreement_charges_day ON merchant_agreement_charges (agreement_id, accounting_date);

-- +goose Down
DROP TABLE merchant_agreement_charges;
DROP TABLE merchant_agreements;
