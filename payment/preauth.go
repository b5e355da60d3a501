package payment

// Pre-authorization (manual capture), as Stripe's capture_method=manual and
// WeChat Pay's deposit payments: an order created with capture_method
// MANUAL is AUTHORIZED when paid, its money held by a ledger hold, until
// the merchant captures all or part of it (Capture; the rest goes back to
// the payer), voids it (Void), or capture_before passes
// (ExpireAuthorizations). Each step is one transaction with its ledger
// journal, its notification and the payer's limit usage.

import (
	"context"
	"fmt"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/notify"
)

// DefaultAuthorizationPeriod is how long an authorization holds the
// payer's money when Config.AuthorizationPeriod is not set.
const DefaultAuthorizationPeriod = 7 * 24 * time.Hour

// AuthorizationGrace is how much later than capture_before the ledger hold
// itself times out. The order's expiry job (ExpireAuthorizations) thus
// releases an authorization, closing its order in the same transaction,
// well before the ledger's own hold expiry (ledger.ExpireHolds) could; the
// ledger's is the safety net should the order job not run, and the order
// job treats a hold the ledger already expired as released.
const AuthorizationGrace = time.Hour

// Ledger transfer ids of an authorization: the hold is "pay_"+order id (a
// pending transfer); capturing posts it as "cap_"+order id, voiding or
// expiring voids it as "void_"+order id. The fee is "fee_"+order id, as for
// automatic capture.
const (
	prefixCapture = "cap_"
	prefixVoid    = "void_"
)

// CaptureRequest is the body of "capture an order". A nil Amount captures
// everything authorized.
type CaptureRequest struct {
	Amount *CaptureAmount `json:"amount,omitempty"`
}

// CaptureAmount is how much of an authorization to capture: Total minor
// units (positive, at most the amount authorized), in Currency (the
// order's; empty means CNY, as everywhere in the API).
type CaptureAmount struct {
	Total    int64            `json:"total"`
	Currency paygate.Currency `json:"currency,omitempty"`
}

// payTrigger is the trigger a successful payment of o fires.
func payTrigger(o Order) Trigger {
	if o.CaptureMethod == CaptureManual {
		return TriggerAuthorized
	}
	return TriggerPaid
}

// checkCaptureMethod normalises a requested capture method ("" →
// AUTOMATIC). Errors: CodeInvalidArgument (field capture_method).
func checkCaptureMethod(m CaptureMethod) (CaptureMethod, error) {
	switch m {
	case "":
		return CaptureAutomatic, nil
	case CaptureAutomatic, CaptureManual:
		return m, nil
	}
	return "", paygate.EField(paygate.CodeInvalidArgument, "capture_method", "capture_method must be AUTOMATIC or MANUAL")
}

// authorized books a successful payment of an open manual-capture order:
// the order becomes AUTHORIZED until capture_before, the journal holds the
// money (from → merchant pending, pending, timing out AuthorizationGrace
// after capture_before), no fee yet, and TRANSACTION.AUTHORIZED is queued.
func (s *Service) authorized(ctx context.Context, tx Tx, o Order, at Attempt, paidAt, now time.Time, from string) (Order, error) {
	o.Status, o.AuthorizeTime, o.Amount.Authorized = StatusAuthorized, paidAt, at.Amount
	o.CaptureBefore = now.Add(s.cfg.AuthorizationPeriod)
	o.TransactionID, o.Channel, o.ChannelTradeNo, o.UpdateTime = at.ID, at.Channel, at.ChannelTradeNo, now
	if err := tx.UpdateAttempt(ctx, at); err != nil {
		return Order{}, err
	}
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Order{}, err
	}
	cur := at.Currency
	if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{{ID: "pay_" + o.ID, DebitAccountID: from,
		CreditAccountID: ledger.MerchantPending(o.MerchantID, cur).ID, Amount: at.Amount, Currency: cur, Flags: ledger.Pending,
		Timeout: s.cfg.AuthorizationPeriod + AuthorizationGrace, Code: TransferPayment, Ref: at.ID}}); err != nil {
		return Order{}, fmt.Errorf("payment: hold authorized payment: %w", err)
	}
	ev, err := s.event(o, EventAuthorized, "Payment authorized; awaiting capture", nil)
	if err != nil {
		return Order{}, err
	}
	return o, notify.Enqueue(ctx, tx, s.clock, ev)
}

// unresolvable explains why the authorization of o (not AUTHORIZED) can no
// longer be captured or voided: CodeAlreadyResolved once captured or
// voided, CodeHoldExpired once expired, CodeConflict when o never was an
// authorization (automatic capture, or not paid).
func unresolvable(o Order) error {
	switch {
	case o.CaptureMethod != CaptureManual:
		return paygate.E(paygate.CodeConflict, "the order was not created with capture_method MANUAL: there is no authorization to capture or void")
	case o.Status == StatusSuccess || o.Status == StatusRefund:
		return paygate.E(paygate.CodeAlreadyResolved, "the authorization was already captured")
	case o.Status == StatusClosed && o.CloseReason == CloseVoided:
		return paygate.E(paygate.CodeAlreadyResolved, "the authorization was already voided")
	case o.Status == StatusClosed && o.CloseReason == CloseAuthorizationExpired:
		return paygate.E(paygate.CodeHoldExpired, "the authorization expired at capture_before; its money went back to the payer")
	}
	return paygate.E(paygate.CodeConflict, "an order in status %s has no authorization", o.Status)
}

// lockAuthorization locks the merchant's order for a capture or void.
// Errors: CodeNotFound (no such order of the merchant's).
func (s *Service) lockAuthorization(ctx context.Context, tx Tx, merchantID, orderID string) (Order, error) {
	o, err := tx.LockOrder(ctx, orderID)
	if err != nil {
		return Order{}, err
	}
	if o.MerchantID != merchantID {
		return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	return o, nil
}

// Capture captures the merchant's AUTHORIZED order: all of the amount
// authorized, or req.Amount.Total of it (the rest goes back to the payer).
// In one transaction: the hold is posted for the amount captured ("cap_" +
// order id; the ledger releases the rest), the platform fee on the amount
// captured is booked ("fee_" + order id), the payer's limit usage of the
// released rest is given back, the order becomes SUCCESS with
// amount.captured and amount.payer_total the amount captured (refunds may
// then give back up to it), and TRANSACTION.SUCCESS is queued. Concurrent
// captures and voids of one order resolve it once.
//
// Errors (nothing changes): CodeNotFound (no such order of the
// merchant's), CodeForbidden (merchant may not transact),
// CodeAmountNotPositive / CodeLimitExceeded (field amount.total: not a
// positive amount, or more than the amount authorized),
// CodeUnknownCurrency / CodeCurrencyMismatch (field amount.currency),
// CodeAlreadyResolved (already captured or voided), CodeHoldExpired
// (capture_before has passed), CodeConflict (not a manual-capture order,
// or not authorized), and the ledger's CodeAccountClosed.
func (s *Service) Capture(ctx context.Context, merchantID, orderID string, req CaptureRequest) (Order, error) {
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Order{}, err
	}
	var want int64 // 0: all
	var cur paygate.Currency
	if req.Amount != nil {
		if err := paygate.CheckAmount("amount.total", req.Amount.Total, s.cfg.MaxAmount); err != nil {
			return Order{}, err
		}
		cur = req.Amount.Currency
		if cur == "" {
			cur = "CNY"
		}
		if _, err := paygate.ParseCurrency(string(cur)); err != nil {
			return Order{}, paygate.EField(paygate.CodeUnknownCurrency, "amount.currency", "unknown currency %q", string(cur))
		}
		want = req.Amount.Total
	}
	if len(orderID) > maxOrderIDLen {
		return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	var (
		out Order
		rel ChannelRelease
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		rel = ChannelRelease{}
		o, err := s.lockAuthorization(ctx, tx, m.ID, orderID)
		if err != nil {
			return err
		}
		if _, refused := next(o.Status, TriggerCapture); refused {
			return unresolvable(o)
		}
		now := s.now()
		if !now.Before(o.CaptureBefore) {
			return paygate.E(paygate.CodeHoldExpired, "the authorization expired at capture_before; it can no longer be captured")
		}
		if cur != "" && cur != o.Amount.Currency {
			return paygate.EField(paygate.CodeCurrencyMismatch, "amount.currency", "the order is in %s", o.Amount.Currency)
		}
		n := o.Amount.Authorized
		if want > 0 {
			if want > n {
				return paygate.EField(paygate.CodeLimitExceeded, "amount.total", "the capture exceeds the amount authorized, %d", n)
			}
			n = want
		}
		fee := m.Fee(n)
		cur := o.Amount.Currency
		journal := []ledger.Transfer{{ID: prefixCapture + o.ID, PendingID: "pay_" + o.ID, Amount: n, Flags: ledger.PostPending,
			Code: TransferPayment, Ref: o.TransactionID}}
		if fee > 0 {
			journal = append(journal, ledger.Transfer{ID: "fee_" + o.ID, DebitAccountID: ledger.MerchantPending(o.MerchantID, cur).ID,
				CreditAccountID: ledger.PlatformFeeFor(cur, o.Sandbox).ID, Amount: fee, Currency: cur, Code: TransferFee, Ref: o.TransactionID})
		}
		if _, err := s.books.Apply(ctx, tx, journal); err != nil {
			return fmt.Errorf("payment: capture: %w", err)
		}
		if err := s.releaseLimits(ctx, tx, o, o.Amount.Authorized-n); err != nil {
			return err
		}
		if rel, err = s.recordRelease(ctx, tx, o, n); err != nil {
			return err
		}
		o.Status, o.SuccessTime, o.Amount.Captured, o.Amount.PayerTotal, o.Fee, o.UpdateTime = StatusSuccess, now, n, n, fee, now
		if err := tx.UpdateOrder(ctx, o); err != nil {
			return err
		}
		ev, err := s.event(o, EventSuccess, "Payment captured", nil)
		if err != nil {
			return err
		}
		out = o
		return notify.Enqueue(ctx, tx, s.clock, ev)
	})
	if err != nil {
		return Order{}, err
	}
	s.kick()
	s.tellChannels(ctx, rel)
	return s.view(out), nil
}

// Void voids the merchant's AUTHORIZED order: in one transaction the hold
// is voided ("void_" + order id; the money goes back to the payer), the
// payer's limit usage is given back, the order becomes CLOSED with
// close_reason VOIDED, and TRANSACTION.CLOSED is queued. An authorization
// whose capture_before has passed but which the expiry job has not
// released yet may still be voided, and so may a merchant that may no
// longer transact: giving the payer's money back is always allowed.
//
// Errors (nothing changes): CodeNotFound, CodeAlreadyResolved (already captured or voided),
// CodeHoldExpired (already released by expiry), CodeConflict (not a
// manual-capture order, or not authorized).
func (s *Service) Void(ctx context.Context, merchantID, orderID string) (Order, error) {
	m, err := s.mchs.Merchant(ctx, merchantID)
	if err != nil {
		return Order{}, fmt.Errorf("payment: merchant: %w", err)
	}
	if len(orderID) > maxOrderIDLen {
		return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	var (
		out Order
		rel ChannelRelease
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		o, err := s.lockAuthorization(ctx, tx, m.ID, orderID)
		if err != nil {
			return err
		}
		if _, refused := next(o.Status, TriggerVoid); refused {
			return unresolvable(o)
		}
		out, rel, err = s.release(ctx, tx, o, CloseVoided)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	s.kick()
	s.tellChannels(ctx, rel)
	return s.view(out), nil
}

// ExpireAuthorizations releases up to limit (default 100) authorizations
// whose capture_before has passed, in one transaction: for each, the hold
// is voided, the payer's limit usage given back, the order CLOSED with
// close_reason AUTHORIZATION_EXPIRED, and TRANSACTION.CLOSED queued. A hold
// the ledger's own expiry job already released (it times out
// AuthorizationGrace later) counts as released. Several processes may run
// it at once: each authorization is released once (SKIP LOCKED). It
// returns how many it released.
func (s *Service) ExpireAuthorizations(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	n := 0
	var rels []ChannelRelease
	err := s.store.InTx(ctx, func(tx Tx) error {
		n, rels = 0, rels[:0]
		os, err := tx.LockExpiredAuthorizations(ctx, s.now(), limit)
		if err != nil {
			return err
		}
		for _, o := range os {
			if _, refused := next(o.Status, TriggerAuthExpire); refused || o.Status != StatusAuthorized {
				continue
			}
			_, rel, err := s.release(ctx, tx, o, CloseAuthorizationExpired)
			if err != nil {
				return err
			}
			rels = append(rels, rel)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.kick()
	}
	s.tellChannels(ctx, rels...)
	return n, nil
}

// release voids an AUTHORIZED order's hold inside tx, records the void its
// channel must be told of (when the authorization is held at a channel),
// and closes the order with reason (CloseVoided, CloseAuthorizationExpired).
func (s *Service) release(ctx context.Context, tx Tx, o Order, reason string) (Order, ChannelRelease, error) {
	_, err := s.books.Apply(ctx, tx, []ledger.Transfer{{ID: prefixVoid + o.ID, PendingID: "pay_" + o.ID, Flags: ledger.VoidPending,
		Code: TransferPayment, Ref: o.TransactionID}})
	if paygate.HasCode(err, paygate.CodeAlreadyResolved) {
		// Only the ledger's own expiry resolves a hold behind the order's
		// back; anything else is a bug to surface, not to paper over.
		hs, lerr := tx.TransfersByID(ctx, []string{"pay_" + o.ID})
		if lerr != nil {
			return Order{}, ChannelRelease{}, lerr
		}
		if len(hs) == 1 && hs[0].HoldStatus == ledger.HoldExpired {
			err = nil
		}
	}
	if err != nil {
		return Order{}, ChannelRelease{}, fmt.Errorf("payment: release authorization: %w", err)
	}
	if err := s.releaseLimits(ctx, tx, o, o.Amount.Authorized); err != nil {
		return Order{}, ChannelRelease{}, err
	}
	rel, err := s.recordRelease(ctx, tx, o, 0)
	if err != nil {
		return Order{}, ChannelRelease{}, err
	}
	out, err := s.closeOrder(ctx, tx, o, reason)
	return out, rel, err
}

// releaseLimits gives back amount of the limit usage the authorizing
// payment of o reserved (through Config.AttemptFailed), if it reserved any.
func (s *Service) releaseLimits(ctx context.Context, tx Tx, o Order, amount int64) error {
	if amount <= 0 || s.cfg.AttemptFailed == nil || o.TransactionID == "" {
		return nil
	}
	at, _, err := tx.LockAttemptWithOrder(ctx, o.TransactionID)
	if err != nil {
		return err
	}
	if at.LimitDay == "" {
		return nil
	}
	at.Amount = amount
	if err := s.cfg.AttemptFailed(ctx, tx, at); err != nil {
		return fmt.Errorf("payment: release the limits of an authorization: %w", err)
	}
	return nil
}
