-- +goose Up
-- Pre-authorization (manual capture): an order created with capture_method
-- MANUAL is AUTHORIZED when paid — the payer's money held by a ledger hold
-- ("pay_" + id, a pending transfer) — until the merchant captures all or
-- part of it (SUCCESS), voids it, or capture_before passes (CLOSED).
-- authorized_amount is what was held, captured_amount what was captured;
-- authorize_time and capture_before are BIGINT microseconds (0: none).
ALTER TABLE payment_orders ADD COLUMN capture_method TEXT NOT NULL DEFAULT 'AUTOMATIC'
    CHECK (capture_method IN ('AUTOMATIC', 'MANUAL'));
ALTER TABLE payment_orders ADD COLUMN authorized_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN captured_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN authorize_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN capture_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders DROP CONSTRAINT payment_orders_status_check;
ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_status_check
    CHECK (status IN ('NOTPAY', 'PAYERROR', 'SUCCESS', 'CLOSED', 'REFUND', 'AUTHORIZED'));
-- The authorization expiry job looks at authorized orders only.
CREATE INDEX payment_orders_authorized ON payment_orders (capture_before) WHERE status = 'AUTHORIZED';

-- +goose Down
DROP INDEX payment_orders_authorized;
ALTER TABLE payment_orders DROP CONSTRAINT payment_orders_status_check;
ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_status_check
    CHECK (status IN ('NOTPAY', 'PAYERROR', 'SUCCESS', 'CLOSED', 'REFUND'));
ALTER TABLE payment_orders DROP COLUMN capture_before;
ALTER TABLE payment_orders DROP COLUMN authorize_time;
ALTER TABLE payment_orders DROP COLUMN captured_amount;
ALTER TABLE payment_orders DROP COLUMN authorized_amount;
ALTER TABLE payment_orders DROP COLUMN capture_method;
