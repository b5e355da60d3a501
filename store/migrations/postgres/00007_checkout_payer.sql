-- +goose Up
-- Who paid an attempt at the hosted checkout, and how: the checkout method
-- (customer.Method: QUICK_PAY, CARD_NUMBER, ONLINE_BANKING, BALANCE; '' for
-- payments made through the open API's sandbox endpoint), the customer and
-- card (internal ids, never a card number), and the business day whose
-- limit usage the payment reserved ('' when it reserved none). A failed
-- attempt gives that usage back.
ALTER TABLE payment_attempts ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_attempts ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_attempts ADD COLUMN card_id TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_attempts ADD COLUMN limit_day TEXT NOT NULL DEFAULT '';
-- The checkout refuses a second card payment while one is in flight.
CREATE INDEX payment_attempts_order_status ON payment_attempts (order_id, status);
CREATE INDEX payment_attempts_customer ON payment_attempts (customer_id, created_at) WHERE customer_id <> '';

-- +goose Down
DROP INDEX payment_attempts_customer;
DROP INDEX payment_attempts_order_status;
ALTER TABLE payment_attempts DROP COLUMN limit_day;
ALTER TABLE payment_attempts DROP COLUMN card_id;
ALTER TABLE payment_attempts DROP COLUMN customer_id;
ALTER TABLE payment_attempts DROP COLUMN method;
