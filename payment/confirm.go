package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/ledger"
	"paygate/notify"
)

// Alerts: the stable values of the "alert" attribute on log records that
// need a human. Monitoring keys on them.
const (
	// AlertCallbackRejected: a channel callback failed authentication or
	// was malformed (forged, tampered, stale). Logged at Error.
	AlertCallbackRejected = "payment.callback_rejected"
	// AlertMismatch: a channel result disagrees with the payment it names
	// (unknown attempt, other order, amount, currency, channel or trade
	// number). Nothing was booked. Logged at Error.
	AlertMismatch = "payment.confirmation_mismatch"
	// AlertContradiction: a channel reported a final result opposite to
	// one it reported before. Logged at Error.
	AlertContradiction = "payment.channel_contradiction"
	// AlertHeldForReview: money arrived that its order could not take (late
	// or second payment); it sits in suspense. Logged at Warn.
	AlertHeldForReview = "payment.held_for_review"
)

// Fail codes paygate itself records on attempts.
const (
	FailDeclined     = "DECLINED"       // the channel refused the payment outright
	FailNotAtChannel = "NOT_AT_CHANNEL" // never accepted, and the channel has no record after GiveUpUnknown
)

// maxFailCode bounds a channel's fail code as stored.
const maxFailCode = 64

// sandboxOutcomes are the outcomes SandboxPay accepts (channel/sim's).
var sandboxOutcomes = []string{"success", "fail", "timeout", "duplicate", "late"}

// SandboxOutcomes lists the outcomes SandboxPay accepts.
func SandboxOutcomes() []string { return append([]string(nil), sandboxOutcomes...) }

// SandboxPay pays the sandbox merchant's order through the simulated
// channel, which ends the payment as outcome says ("success" when empty;
// "fail", "timeout", "duplicate", "late"). It returns the attempt as it
// stands after the channel's synchronous answer: PROCESSING while the
// result is on its way (it arrives through Callback), FAILED if the channel
// refused it at once. A channel that does not answer leaves the attempt
// PROCESSING for ReconcileUnknown.
//
// Errors: CodeForbidden for a merchant outside the sandbox (or one that
// may not transact), CodeInvalidArgument for an unknown outcome,
// CodeNotFound for an order that is not the merchant's, CodeConflict for an
// order that is paid, closed or expired, CodeUnavailable when no sandbox
// channel is configured.
func (s *Service) SandboxPay(ctx context.Context, merchantID, orderID, outcome string) (Attempt, error) {
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Attempt{}, err
	}
	if !m.Sandbox() {
		return Attempt{}, paygate.E(paygate.CodeForbidden, "sandbox payments are for sandbox merchants only")
	}
	if outcome == "" {
		outcome = "success"
	}
	known := false
	for _, o := range sandboxOutcomes {
		known = known || o == outcome
	}
	if !known {
		return Attempt{}, paygate.EField(paygate.CodeInvalidArgument, "outcome", "outcome must be one of success, fail, timeout, duplicate, late")
	}
	ch, ok := s.channels[s.cfg.SandboxChannel]
	if !ok {
		return Attempt{}, paygate.E(paygate.CodeUnavailable, "the sandbox channel is not configured")
	}
	return s.pay(ctx, m, orderID, ch, outcome, Payer{}, nil)
}

// pay starts an attempt on the order and submits it to ch; authorize (when
// set) runs in the attempt's transaction.
func (s *Service) pay(ctx context.Context, m paygate.Merchant, orderID string, ch channel.Channel, scenario string, p Payer, authorize Authorize) (Attempt, error) {
	var a Attempt
	var o Order
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		o, err = tx.LockOrder(ctx, orderID)
		if err != nil {
			return err
		}
		if o.MerchantID != m.ID {
			return paygate.E(paygate.CodeNotFound, "order not found")
		}
		if err := s.startable(ctx, tx, o, p); err != nil {
			return err
		}
		if err := canTake(ch, o); err != nil {
			return err
		}
		var day paygate.Date
		if authorize != nil {
			if day, err = authorize(ctx, tx, o); err != nil {
				return err
			}
		}
		now := s.now()
		a = Attempt{ID: paygate.NewID(PrefixAttempt), OrderID: o.ID, MerchantID: o.MerchantID, Channel: ch.Name(),
			Amount: o.Amount.Total, Currency: o.Amount.Currency, Status: channel.StatusProcessing,
			CreatedAt: now, UpdatedAt: now, NextQueryAt: now.Add(s.cfg.QueryBackoff[0]), Payer: p, LimitDay: day}
		return tx.InsertAttempt(ctx, a)
	})
	if err != nil {
		return Attempt{}, err
	}
	acc, err := ch.Pay(ctx, channel.PayRequest{AttemptID: a.ID, OrderID: o.ID, MerchantID: o.MerchantID, Amount: a.Amount,
		Currency: a.Currency, Description: o.Description, ExpiresAt: o.TimeExpire, ReturnURL: o.ReturnURL, Scenario: scenario,
		AuthorizeOnly: o.CaptureMethod == CaptureManual})
	switch {
	case err == nil:
		at, err := s.accepted(ctx, a, acc.ChannelTradeNo)
		at.RedirectURL = acc.RedirectURL
		return at, err
	case errors.Is(err, channel.ErrDeclined):
		s.log.Info("payment: channel declined the payment", "attempt_id", a.ID, "order_id", o.ID, "channel", a.Channel, "error", err)
		if _, err := s.Confirm(ctx, channel.Result{Channel: a.Channel, AttemptID: a.ID, OrderID: a.OrderID, Status: channel.StatusFailed,
			Amount: a.Amount, Currency: a.Currency, FailCode: FailDeclined}); err != nil {
			return Attempt{}, err
		}
	default:
		s.log.Warn("payment: channel outcome unknown; the payment will be queried", "attempt_id", a.ID, "order_id", o.ID, "channel", a.Channel, "error", err)
		return a, nil
	}
	return s.store.Attempt(ctx, a.ID)
}

// accepted records the channel's trade number of an accepted attempt and
// returns the attempt as it stands: one statement in the usual case, where
// the result has not arrived yet.
func (s *Service) accepted(ctx context.Context, a Attempt, tradeNo string) (Attempt, error) {
	if tradeNo != "" {
		now := s.now()
		ok, err := s.store.SetAttemptTradeNo(ctx, a.ID, tradeNo, now)
		if err != nil {
			return Attempt{}, err
		}
		if ok {
			a.ChannelTradeNo, a.UpdatedAt = tradeNo, now
			return a, nil
		}
	}
	at, err := s.store.Attempt(ctx, a.ID)
	if err != nil {
		return Attempt{}, err
	}
	if tradeNo != "" && at.ChannelTradeNo != "" && at.ChannelTradeNo != tradeNo {
		s.log.Error("payment: channel gave two trade numbers for one attempt", "alert", AlertMismatch, "attempt_id", a.ID,
			"channel", a.Channel, "field", "channel_trade_no")
	}
	return at, nil
}

// Callback handles a channel's result callback: it authenticates it with
// the channel's CallbackVerifier and books it with Confirm. A rejected
// callback changes nothing and is logged as an alert (AlertCallbackRejected)
// without its body or signature. Errors: CodeNotFound for a channel without
// callbacks, the verifier's CodeUnauthenticated / CodeInvalidArgument, and
// Confirm's errors.
func (s *Service) Callback(ctx context.Context, channelName string, h http.Header, body []byte) (Order, error) {
	ch, ok := s.channels[channelName]
	v, ok2 := ch.(channel.CallbackVerifier)
	if !ok || !ok2 {
		return Order{}, paygate.E(paygate.CodeNotFound, "unknown channel")
	}
	r, err := v.VerifyCallback(h, body)
	if err != nil {
		s.log.Error("payment: channel callback rejected", "alert", AlertCallbackRejected, "channel", channelName,
			"code", string(paygate.CodeOf(err)), "body_bytes", len(body))
		return Order{}, err
	}
	if r.Channel != channelName {
		s.alertMismatch(r, "channel")
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "channel", "the result is for another channel")
	}
	return s.Confirm(ctx, r)
}

func (s *Service) alertMismatch(r channel.Result, field string) {
	s.log.Error("payment: channel result does not match the payment", "alert", AlertMismatch, "field", field,
		"channel", r.Channel, "attempt_id", r.AttemptID, "order_id", r.OrderID, "channel_trade_no", r.ChannelTradeNo,
		"status", string(r.Status))
}

// match checks a channel result against the attempt it names.
func match(a Attempt, r channel.Result) error {
	switch {
	case r.Channel != a.Channel:
		return paygate.EField(paygate.CodeInvalidArgument, "channel", "the result is for another channel")
	case r.OrderID != "" && r.OrderID != a.OrderID:
		return paygate.EField(paygate.CodeInvalidArgument, "order_id", "the result names another order")
	case r.Amount != a.Amount:
		return paygate.EField(paygate.CodeInvalidArgument, "amount", "the amount differs from the payment's")
	case r.Currency != a.Currency:
		return paygate.EField(paygate.CodeCurrencyMismatch, "currency", "the currency differs from the payment's")
	case r.Status == channel.StatusSuccess && r.ChannelTradeNo == "":
		return paygate.EField(paygate.CodeInvalidArgument, "channel_trade_no", "a successful result must carry the channel's trade number")
	case a.ChannelTradeNo != "" && r.ChannelTradeNo != "" && r.ChannelTradeNo != a.ChannelTradeNo:
		return paygate.EField(paygate.CodeInvalidArgument, "channel_trade_no", "the channel trade number differs from the payment's")
	}
	return nil
}

// ensureAccounts creates, once per process, the ledger accounts a payment
// through channel for the merchant in cur may touch.
func (s *Service) ensureAccounts(ctx context.Context, ch, mch string, cur paygate.Currency) error {
	key := ch + "\x00" + mch + "\x00" + string(cur)
	if _, ok := s.accounts.Load(key); ok {
		return nil
	}
	if _, err := s.books.CreateAccounts(ctx, []ledger.Account{ledger.ChannelClearing(ch, cur), ledger.MerchantPending(mch, cur),
		ledger.PlatformFeeFor(cur, false), ledger.SuspenseFor(cur, false), ledger.PlatformFeeFor(cur, true), ledger.SuspenseFor(cur, true)}); err != nil {
		return fmt.Errorf("payment: create ledger accounts: %w", err)
	}
	s.accounts.Store(key, true)
	return nil
}

// Confirm books a channel's final result for a payment attempt, exactly
// once, in one transaction with its ledger journal and notification:
//
//   - SUCCESS for an open order paid before its time_expire: the order
//     becomes SUCCESS; journal channel clearing → merchant pending (total)
//     and merchant pending → platform fee (the merchant's fee, when not 0),
//     transfer ids "pay_"+order id and "fee_"+order id; TRANSACTION.SUCCESS.
//     An order with capture method MANUAL becomes AUTHORIZED instead: the
//     journal is a hold ("pay_"+order id, pending) and no fee;
//     TRANSACTION.AUTHORIZED (see Capture).
//   - SUCCESS paid at or after time_expire of a still open order: the order
//     is closed as EXPIRED (TRANSACTION.CLOSED) and the payment is late.
//   - SUCCESS for a closed or already paid order: the attempt is recorded
//     SUCCESS with Review set; journal channel clearing → suspense
//     ("susp_"+attempt id); TRANSACTION.LATE_PAYMENT or
//     TRANSACTION.DUPLICATE_PAYMENT; logged with AlertHeldForReview. An
//     authorization (a manual-capture order's channel attempt) was never
//     taken from the payer: it is recorded SUCCESS and voided at its
//     channel instead (a ChannelRelease), without journal or notification.
//   - FAILED: the attempt is FAILED; a NOTPAY order becomes PAYERROR.
//
// A result already booked (a duplicate callback, a query racing a
// callback) changes nothing and returns the order. A result that does not
// match its attempt changes nothing, is logged with AlertMismatch and fails
// with CodeNotFound (unknown attempt), CodeInvalidArgument (field: order_id,
// channel, amount, channel_trade_no) or CodeCurrencyMismatch. FAILED after
// SUCCESS fails with CodeConflict (AlertContradiction); SUCCESS after FAILED
// is booked (the money is real) and alerted.
func (s *Service) Confirm(ctx context.Context, r channel.Result) (Order, error) {
	if !r.Status.Final() {
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "status", "only a final result can be confirmed")
	}
	a, err := s.store.Attempt(ctx, r.AttemptID)
	if paygate.HasCode(err, paygate.CodeNotFound) || (err == nil && r.AttemptID == "") {
		s.alertMismatch(r, "attempt_id")
		return Order{}, paygate.EField(paygate.CodeNotFound, "attempt_id", "no such payment")
	}
	if err != nil {
		return Order{}, err
	}
	if err := match(a, r); err != nil {
		s.alertMismatch(r, err.(*paygate.Error).Field)
		return Order{}, err
	}
	m, err := s.mchs.Merchant(ctx, a.MerchantID)
	if err != nil {
		return Order{}, fmt.Errorf("payment: merchant of a confirmed payment: %w", err)
	}
	if r.Status == channel.StatusSuccess {
		if err := s.ensureAccounts(ctx, a.Channel, a.MerchantID, a.Currency); err != nil {
			return Order{}, err
		}
	}
	var (
		out           Order
		held          *Attempt
		stray         ChannelRelease
		contradiction bool
		mismatch      string
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		held, stray, contradiction, mismatch = nil, ChannelRelease{}, false, ""
		at, o, err := tx.LockAttemptWithOrder(ctx, a.ID)
		if err != nil {
			return err
		}
		if err := match(at, r); err != nil {
			mismatch = err.(*paygate.Error).Field
			return err
		}
		out = o
		switch {
		case at.Status == r.Status:
			return nil // already booked
		case at.Status == channel.StatusSuccess:
			contradiction = true
			return paygate.E(paygate.CodeConflict, "the payment already succeeded")
		case at.Status == channel.StatusFailed:
			contradiction = true // SUCCESS after FAILED: book the money, and say so
		}
		now := s.now()
		if at.ChannelTradeNo == "" {
			at.ChannelTradeNo = r.ChannelTradeNo
		}
		at.UpdatedAt, at.NextQueryAt = now, time.Time{}
		if r.Status == channel.StatusFailed {
			at.Status, at.FailCode = channel.StatusFailed, clip(r.FailCode, maxFailCode)
			if err := tx.UpdateAttempt(ctx, at); err != nil {
				return err
			}
			if err := s.releaseFailed(ctx, tx, at); err != nil {
				return err
			}
			if to, _ := next(o.Status, TriggerFailed); to != o.Status {
				o.Status, o.UpdateTime = to, now
				if err := tx.UpdateOrder(ctx, o); err != nil {
					return err
				}
			}
			out = o
			return nil
		}
		paidAt := r.PaidAt.UTC().Truncate(time.Microsecond)
		if paidAt.IsZero() {
			paidAt = now
		}
		at.Status, at.PaidAt, at.FailCode = channel.StatusSuccess, paidAt, ""
		if o.Status.Open() && !paidAt.Before(o.TimeExpire) {
			if o, err = s.closeOrder(ctx, tx, o, CloseExpired); err != nil {
				return err
			}
		}
		if to, _ := next(o.Status, payTrigger(o)); o.Status.Open() && (to == StatusSuccess || to == StatusAuthorized) {
			out, err = s.paid(ctx, tx, m, o, at, paidAt, now, fromAccount(at))
			return err
		}
		if strayAuthorization(o, at) {
			// Only held at the channel, never taken: void it there.
			out = o
			stray, err = s.voidStray(ctx, tx, o, at)
			return err
		}
		out, err = s.hold(ctx, tx, o, at)
		if err == nil {
			held = &at
		}
		return err
	})
	if err != nil {
		switch {
		case contradiction:
			s.log.Error("payment: channel contradicts its earlier result", "alert", AlertContradiction, "channel", r.Channel,
				"attempt_id", r.AttemptID, "order_id", a.OrderID, "status", string(r.Status))
		case mismatch != "":
			s.alertMismatch(r, mismatch)
		}
		return Order{}, err
	}
	if contradiction {
		s.log.Error("payment: channel reported success for a payment it had failed; booked", "alert", AlertContradiction,
			"channel", r.Channel, "attempt_id", r.AttemptID, "order_id", a.OrderID)
	}
	s.kick()
	s.tellChannels(ctx, stray)
	if held != nil {
		s.log.Warn("payment: payment held for review in suspense", "alert", AlertHeldForReview, "review", string(held.Review),
			"attempt_id", held.ID, "order_id", held.OrderID, "mchid", held.MerchantID, "amount", held.Amount, "currency", string(held.Currency))
	}
	return s.view(out), nil
}

// paid books a successful payment to its open order (an authorization
// when the order's capture method is MANUAL: see authorized).
// from is the ledger account the money comes from: the channel's clearing
// account, or the payer's own account for ChannelOnUs.
func (s *Service) paid(ctx context.Context, tx Tx, m paygate.Merchant, o Order, at Attempt, paidAt, now time.Time, from string) (Order, error) {
	if o.CaptureMethod == CaptureManual {
		return s.authorized(ctx, tx, o, at, paidAt, now, from)
	}
	fee := m.Fee(at.Amount)
	o.Status, o.SuccessTime, o.Amount.PayerTotal, o.Fee = StatusSuccess, paidAt, at.Amount, fee
	o.TransactionID, o.Channel, o.ChannelTradeNo, o.UpdateTime = at.ID, at.Channel, at.ChannelTradeNo, now
	if err := tx.UpdateAttempt(ctx, at); err != nil {
		return Order{}, err
	}
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Order{}, err
	}
	cur := at.Currency
	pending := ledger.MerchantPending(o.MerchantID, cur).ID
	journal := []ledger.Transfer{{ID: "pay_" + o.ID, DebitAccountID: from, CreditAccountID: pending,
		Amount: at.Amount, Currency: cur, Code: TransferPayment, Ref: at.ID}}
	if fee > 0 {
		journal = append(journal, ledger.Transfer{ID: "fee_" + o.ID, DebitAccountID: pending, CreditAccountID: ledger.PlatformFeeFor(cur, o.Sandbox).ID,
			Amount: fee, Currency: cur, Code: TransferFee, Ref: at.ID})
	}
	if _, err := s.books.Apply(ctx, tx, journal); err != nil {
		return Order{}, fmt.Errorf("payment: book payment: %w", err)
	}
	ev, err := s.event(o, EventSuccess, "Payment succeeded", nil)
	if err != nil {
		return Order{}, err
	}
	return o, notify.Enqueue(ctx, tx, s.clock, ev)
}

// hold books a successful payment its order cannot take to suspense.
func (s *Service) hold(ctx context.Context, tx Tx, o Order, at Attempt) (Order, error) {
	typ, summary := EventLatePayment, "Payment received after the order closed; held for review"
	at.Review = ReviewOrderClosed
	if o.Status != StatusClosed {
		typ, summary = EventDuplicatePayment, "Order paid more than once; the extra payment is held for review"
		at.Review = ReviewAlreadyPaid
	}
	if err := tx.UpdateAttempt(ctx, at); err != nil {
		return Order{}, err
	}
	cur := at.Currency
	if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{{ID: "susp_" + at.ID, DebitAccountID: ledger.ChannelClearing(at.Channel, cur).ID,
		CreditAccountID: ledger.SuspenseFor(cur, o.Sandbox).ID, Amount: at.Amount, Currency: cur, Code: TransferSuspense, Ref: o.ID}}); err != nil {
		return Order{}, fmt.Errorf("payment: book held payment: %w", err)
	}
	ev, err := s.event(o, typ, summary, &at)
	if err != nil {
		return Order{}, err
	}
	return o, notify.Enqueue(ctx, tx, s.clock, ev)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ReconcileUnknown queries the channels about up to limit (default 100)
// payments still PROCESSING whose next query is due, and books those the
// channel now knows (Confirm). Queries are spaced by Config.QueryBackoff; a
// payment is never declared failed for want of an answer, except one the
// channel never accepted and still has no record of after
// Config.GiveUpUnknown (FAILED, NOT_AT_CHANNEL). Several processes may run
// it: each due payment is claimed by one (SKIP LOCKED). It returns how many
// payments it resolved; per-payment failures are logged and retried later.
func (s *Service) ReconcileUnknown(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	var due []Attempt
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		as, err := tx.LockAttemptsToQuery(ctx, now, limit)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, a := range as {
			a.QueryCount++
			a.NextQueryAt = now.Add(s.cfg.QueryBackoff[min(a.QueryCount, len(s.cfg.QueryBackoff)-1)])
			if err := tx.UpdateAttempt(ctx, a); err != nil {
				return err
			}
			due = append(due, a)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	resolved := 0
	for _, a := range due {
		if ctx.Err() != nil {
			break
		}
		log := s.log.With("attempt_id", a.ID, "order_id", a.OrderID, "channel", a.Channel)
		ch, ok := s.channels[a.Channel]
		if !ok {
			log.Error("payment: a payment's channel is not configured; cannot query it")
			continue
		}
		r, err := ch.Query(ctx, channel.QueryRequest{ChannelTradeNo: a.ChannelTradeNo, AttemptID: a.ID, OrderID: a.OrderID})
		switch {
		case errors.Is(err, channel.ErrUnknownPayment) && a.ChannelTradeNo == "" && s.now().Sub(a.CreatedAt) >= s.cfg.GiveUpUnknown:
			r = channel.Result{Channel: a.Channel, AttemptID: a.ID, OrderID: a.OrderID, Status: channel.StatusFailed,
				Amount: a.Amount, Currency: a.Currency, FailCode: FailNotAtChannel}
		case err != nil:
			log.Warn("payment: query failed; will retry", "error", err, "queries", a.QueryCount)
			continue
		}
		if !r.Status.Final() {
			continue
		}
		if r.Channel == "" {
			r.Channel = a.Channel
		}
		if _, err := s.Confirm(ctx, r); err != nil {
			log.Warn("payment: could not book a queried result", "error", err)
			continue
		}
		resolved++
	}
	return resolved, nil
}
