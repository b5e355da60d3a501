package payment

import (
	"context"
	"fmt"

	"paygate"
	"paygate/channel"
	"paygate/ledger"
)

// ChannelOnUs names payments paygate books itself, from an account it keeps
// (a card of the institution's own, or a customer's balance): "on us" in
// banking terms. Such a payment has no external channel and succeeds or
// fails inside one transaction.
const ChannelOnUs = "onus"

// AwaitingPayer is the checkout method whose PROCESSING attempts wait for
// the payer at the channel's own pages (online banking): they do not stop
// another method from paying the order.
const AwaitingPayer = "ONLINE_BANKING"

// Payer names who pays at the hosted checkout, and how. Ids are paygate's
// internal ids, never a card number.
type Payer struct {
	// Method is the checkout method (customer.Method: QUICK_PAY,
	// CARD_NUMBER, ONLINE_BANKING, BALANCE).
	Method     string `json:"method,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	CardID     string `json:"card_id,omitempty"`
}

// IsZero reports whether no payer is named (open API sandbox payments).
func (p Payer) IsZero() bool { return p == Payer{} }

// Authorize runs inside a checkout payment's transaction, after the order
// is locked and found payable and before any money moves: the checkout
// consumes the payer's one-time code and reserves the payer's limits there,
// so both commit or roll back with the payment. It returns the business
// day whose limit usage it reserved ("" for none); an error aborts the
// payment and changes nothing.
type Authorize func(ctx context.Context, tx Tx, o Order) (limitDay paygate.Date, err error)

// AttemptFailed is called inside the transaction that marks an attempt
// with a reserved limit day (Attempt.LimitDay) FAILED, to give the usage
// back; an error rolls the confirmation back (it is retried).
type AttemptFailed func(ctx context.Context, tx Tx, a Attempt) error

// payableOrder loads the order and its merchant for a checkout payment.
// Errors: CodeNotFound, CodeForbidden (merchant may not transact).
func (s *Service) payableOrder(ctx context.Context, orderID string) (paygate.Merchant, Order, error) {
	if len(orderID) > maxOrderIDLen {
		return paygate.Merchant{}, Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	o, err := s.store.OrderByID(ctx, orderID)
	if err != nil {
		return paygate.Merchant{}, Order{}, err
	}
	m, err := s.merchant(ctx, o.MerchantID)
	return m, o, err
}

// startable checks, inside the order's lock, that a new attempt may start:
// the state machine allows paying, time_expire has not passed, and no
// other checkout card payment is in flight (two tabs, a double click).
// Errors: CodeConflict saying which.
func (s *Service) startable(ctx context.Context, tx Tx, o Order, p Payer) error {
	if _, refused := next(o.Status, TriggerPay); refused {
		if o.Status == StatusSuccess || o.Status == StatusRefund || o.Status == StatusAuthorized {
			return paygate.E(paygate.CodeConflict, "the order is already paid")
		}
		return paygate.E(paygate.CodeConflict, "an order in status %s cannot be paid", o.Status)
	}
	if !s.now().Before(o.TimeExpire) {
		return paygate.E(paygate.CodeConflict, "the order has expired")
	}
	if p.IsZero() {
		return nil
	}
	as, err := tx.ProcessingAttempts(ctx, o.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.Payer.Method != "" && a.Payer.Method != AwaitingPayer {
			return paygate.E(paygate.CodeConflict, "a payment of this order is already in progress")
		}
	}
	return nil
}

// PayFromAccount pays an open order at once from an account paygate keeps
// (from: the ledger id of a card account of the institution's own cards or
// of a customer's balance), in one transaction with everything it
// touches: authorize (one-time code, limits), a SUCCESS attempt on
// ChannelOnUs, the order's status, the journal from → merchant pending
// (and pending → platform fee), and the TRANSACTION.SUCCESS notification.
// A double click, a reload or a second tab pays once: the second request
// finds the order paid.
//
// Errors (nothing changes): CodeNotFound (order), CodeForbidden (merchant
// may not transact), CodeConflict (paid, closed, expired, or a card
// payment in flight), authorize's errors, and the ledger's
// CodeInsufficientFunds / CodeAccountNotFound / CodeAccountClosed /
// CodeCurrencyMismatch for the source account.
func (s *Service) PayFromAccount(ctx context.Context, orderID string, p Payer, from string, authorize Authorize) (Order, Attempt, error) {
	if p.IsZero() || from == "" {
		return Order{}, Attempt{}, paygate.E(paygate.CodeInvalidArgument, "payment: a payer and a source account are required")
	}
	m, o0, err := s.payableOrder(ctx, orderID)
	if err != nil {
		return Order{}, Attempt{}, err
	}
	// Accounts are created before the transaction: the embedded store has
	// one writer, which the transaction holds.
	if err := s.ensureAccounts(ctx, ChannelOnUs, o0.MerchantID, o0.Amount.Currency); err != nil {
		return Order{}, Attempt{}, err
	}
	var (
		out Order
		at  Attempt
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		o, err := tx.LockOrder(ctx, orderID)
		if err != nil {
			return err
		}
		if err := s.startable(ctx, tx, o, p); err != nil {
			return err
		}
		var day paygate.Date
		if authorize != nil {
			if day, err = authorize(ctx, tx, o); err != nil {
				return err
			}
		}
		now := s.now()
		id := paygate.NewID(PrefixAttempt)
		at = Attempt{ID: id, OrderID: o.ID, MerchantID: o.MerchantID, Channel: ChannelOnUs, ChannelTradeNo: id,
			Amount: o.Amount.Total, Currency: o.Amount.Currency, Status: channel.StatusSuccess, PaidAt: now,
			CreatedAt: now, UpdatedAt: now, Payer: p, LimitDay: day}
		if err := tx.InsertAttempt(ctx, at); err != nil {
			return err
		}
		out, err = s.paid(ctx, tx, m, o, at, now, now, from)
		return err
	})
	if err != nil {
		return Order{}, Attempt{}, err
	}
	s.kick()
	return s.view(out), at, nil
}

// PayThrough starts a checkout payment of an order through an external
// channel (another bank's card through the interbank switch, online
// banking): authorize runs in the transaction that records the PROCESSING
// attempt, then the channel is asked. It returns the attempt as it stands
// after the channel's synchronous answer — PROCESSING (with RedirectURL
// when the payer must go to the channel), or FAILED when the channel
// refused at once (the limits authorize reserved are given back). The
// result arrives later through Callback / ReconcileUnknown.
//
// Errors: as PayFromAccount, plus CodeUnavailable for an unconfigured
// channel.
func (s *Service) PayThrough(ctx context.Context, orderID, channelName string, p Payer, scenario string, authorize Authorize) (Attempt, error) {
	ch, ok := s.channels[channelName]
	if !ok {
		return Attempt{}, paygate.E(paygate.CodeUnavailable, "payment: channel %q is not configured", channelName)
	}
	if p.IsZero() {
		return Attempt{}, paygate.E(paygate.CodeInvalidArgument, "payment: a payer is required")
	}
	m, _, err := s.payableOrder(ctx, orderID)
	if err != nil {
		return Attempt{}, err
	}
	return s.pay(ctx, m, orderID, ch, scenario, p, authorize)
}

// releaseFailed gives back the limit usage of an attempt that turned FAILED.
func (s *Service) releaseFailed(ctx context.Context, tx Tx, a Attempt) error {
	if a.LimitDay == "" || s.cfg.AttemptFailed == nil {
		return nil
	}
	if err := s.cfg.AttemptFailed(ctx, tx, a); err != nil {
		return fmt.Errorf("payment: release the limits of a failed payment: %w", err)
	}
	return nil
}

// fromAccount is the account a successful attempt's money comes from:
// the channel's clearing account.
func fromAccount(at Attempt) string { return ledger.ChannelClearing(at.Channel, at.Currency).ID }
