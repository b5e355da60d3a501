package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/url"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/ledger"
	"paygate/notify"
)

// RefundStatus is a refund's state, as in the WeChat Pay APIv3
// ("refund_status"):
//
//	PROCESSING ──► SUCCESS       the money went back to the payer
//	     │   └───► ABNORMAL      the channel refused or failed it; nothing moved
//	     └───────► CLOSED        cancelled before it was submitted (a WAIT refund)
//
// SUCCESS, ABNORMAL and CLOSED are final.
type RefundStatus string

// Refund statuses.
const (
	// RefundProcessing: accepted; the money is held (or, for a refund
	// waiting for the merchant's settled balance, not yet taken) and the
	// result is on its way. Counts against the refundable amount.
	RefundProcessing RefundStatus = "PROCESSING"
	// RefundSuccess: the money went back the way it came; final.
	RefundSuccess RefundStatus = "SUCCESS"
	// RefundClosed: cancelled before it reached a channel; nothing moved; final.
	RefundClosed RefundStatus = "CLOSED"
	// RefundAbnormal: the channel refused or failed the refund; its money
	// was released back to the merchant; final. The merchant may refund
	// again with a new out_refund_no.
	RefundAbnormal RefundStatus = "ABNORMAL"
)

// Final reports whether s is SUCCESS, CLOSED or ABNORMAL.
func (s RefundStatus) Final() bool {
	return s == RefundSuccess || s == RefundClosed || s == RefundAbnormal
}

// FundsSource says which of the merchant's accounts pays a refund.
type FundsSource string

// Funds sources.
const (
	// FundsPending: the order was not settled yet; the payment is reversed
	// from the merchant's pending account, the platform fee included
	// (Amount.FeeRefund).
	FundsPending FundsSource = "PENDING"
	// FundsSettled: the order was settled; the refund is paid from the
	// merchant's settled balance and the fee is not returned.
	FundsSettled FundsSource = "SETTLED"
)

// IfInsufficient is the merchant's choice for a refund of a settled order
// when its settled balance is short.
type IfInsufficient string

// The two choices.
const (
	// InsufficientFail refuses the refund (CodeInsufficientFunds); nothing
	// changes. The default.
	InsufficientFail IfInsufficient = "FAIL"
	// InsufficientWait records the refund PROCESSING, awaiting funds:
	// ReconcileRefunds pays it once the balance allows, or the merchant
	// closes it (CloseRefund).
	InsufficientWait IfInsufficient = "WAIT"
)

// Refund limits.
const (
	MinOutRefundNo     = 1
	MaxOutRefundNo     = 64
	MaxRefundReason    = 80 // characters
	MaxRefundsPerOrder = 50 // refunds of every status, as WeChat Pay allows
)

// PrefixRefund starts refund ids ("rfd_" + UUIDv7).
const PrefixRefund = paygate.PrefixRefund

// Refund notification event types (notify.Event.EventType); their
// original type is RefundOriginalType and their resource the refund as the
// API shows it.
const (
	EventRefundSuccess  = "REFUND.SUCCESS"  // the money went back to the payer
	EventRefundAbnormal = "REFUND.ABNORMAL" // the refund failed; its money is the merchant's again
	EventRefundClosed   = "REFUND.CLOSED"   // a refund awaiting funds was closed by the merchant
	RefundOriginalType  = "refund"
)

// FailRefundDeclined is the fail code of a refund the channel refused
// outright when it was submitted.
const FailRefundDeclined = "DECLINED"

// AlertRefundContradiction: a channel reported a refund result opposite to
// one already booked. Nothing was booked; an operator must look. Logged at
// Error.
const AlertRefundContradiction = "payment.refund_contradiction"

// RefundAmount is a refund's amounts in minor units: Refund asked for,
// Total the order's total, PayerRefund what goes back to the payer, and
// FeeRefund the share of the platform fee returned to the merchant
// (before settlement only).
type RefundAmount struct {
	Refund      int64            `json:"refund"`
	Total       int64            `json:"total"`
	PayerRefund int64            `json:"payer_refund"`
	FeeRefund   int64            `json:"fee_refund"`
	Currency    paygate.Currency `json:"currency"`
}

// Refund is one refund of an order, with JSON as the open API shows it
// (and as REFUND.* notifications carry it). Fields tagged "-" are internal.
type Refund struct {
	ID              string         `json:"id"`
	MerchantID      string         `json:"mchid"`
	OutRefundNo     string         `json:"out_refund_no"`
	OrderID         string         `json:"order_id"`
	OutTradeNo      string         `json:"out_trade_no"`
	TransactionID   string         `json:"transaction_id"` // the payment refunded
	Channel         string         `json:"channel"`
	ChannelRefundNo string         `json:"channel_refund_no,omitempty"`
	Reason          string         `json:"reason,omitempty"`
	Status          RefundStatus   `json:"status" enum:"PROCESSING,SUCCESS,CLOSED,ABNORMAL"`
	Amount          RefundAmount   `json:"amount"`
	FundsSource     FundsSource    `json:"funds_source" enum:"PENDING,SETTLED"`
	IfInsufficient  IfInsufficient `json:"if_insufficient" enum:"WAIT,FAIL"`
	// FailCode says why a refund is ABNORMAL (the channel's code, or
	// DECLINED).
	FailCode    string    `json:"fail_code,omitempty"`
	CreateTime  time.Time `json:"create_time"`
	SuccessTime time.Time `json:"success_time,omitzero"`
	CloseTime   time.Time `json:"close_time,omitzero"`

	NotifyURL string `json:"-"` // where REFUND.* notifications go
	Sandbox   bool   `json:"-"`
	// AwaitingFunds marks a PROCESSING refund of a settled order waiting
	// for the merchant's settled balance: none of its money has moved.
	AwaitingFunds bool   `json:"-"`
	Scenario      string `json:"-"` // the simulated channel's outcome (tests, sandbox)
	RequestHash   string `json:"-"`
	// QueryCount and NextQueryAt schedule ReconcileRefunds; NextQueryAt is
	// zero once the refund is final.
	QueryCount  int       `json:"-"`
	NextQueryAt time.Time `json:"-"`
	UpdateTime  time.Time `json:"-"`
}

// CreateRefundRequest is the body of "create a refund". The order is named
// by OrderID or OutTradeNo (both may be given if they name the same
// order). An empty Amount.Currency means CNY, an empty NotifyURL the
// order's, an empty IfInsufficient FAIL.
type CreateRefundRequest struct {
	OrderID        string              `json:"order_id,omitempty"`
	OutTradeNo     string              `json:"out_trade_no,omitempty"`
	OutRefundNo    string              `json:"out_refund_no"`
	Reason         string              `json:"reason,omitempty"`
	NotifyURL      string              `json:"notify_url,omitempty"`
	Amount         RefundAmountRequest `json:"amount"`
	IfInsufficient IfInsufficient      `json:"if_insufficient,omitempty" enum:"WAIT,FAIL"`
	// Scenario tells the simulated channel how the refund ends ("success",
	// "fail", "timeout"); not part of the API, not part of idempotency.
	Scenario string `json:"-"`
}

// RefundAmountRequest is the amount of a CreateRefundRequest: Refund to
// give back, Total the order's total (a check), Currency the order's.
type RefundAmountRequest struct {
	Refund   int64            `json:"refund"`
	Total    int64            `json:"total"`
	Currency paygate.Currency `json:"currency,omitempty"`
}

// RefundList is an order's refunds, newest first (at most
// MaxRefundsPerOrder, so there is one page).
type RefundList struct {
	Refunds []Refund `json:"data"`
}

// checkOutRefundNo: 1–64 of A-Z a-z 0-9 _ - | * @, as WeChat Pay allows.
func checkOutRefundNo(s string) error {
	if len(s) < MinOutRefundNo || len(s) > MaxOutRefundNo {
		return paygate.EField(paygate.CodeInvalidArgument, "out_refund_no", "out_refund_no must be %d to %d characters", MinOutRefundNo, MaxOutRefundNo)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '|' || c == '*' || c == '@'
		if !ok {
			return paygate.EField(paygate.CodeInvalidArgument, "out_refund_no", "out_refund_no may contain only letters, digits and _-|*@")
		}
	}
	return nil
}

// refundRequest is a validated CreateRefundRequest, normalised.
type refundRequest struct {
	CreateRefundRequest
	cur paygate.Currency
}

// checkRefundRequest validates what can be checked without the order.
func (s *Service) checkRefundRequest(m paygate.Merchant, req CreateRefundRequest) (refundRequest, error) {
	if req.OrderID == "" && req.OutTradeNo == "" {
		return refundRequest{}, paygate.EField(paygate.CodeInvalidArgument, "order_id", "order_id or out_trade_no is required")
	}
	if err := checkOutRefundNo(req.OutRefundNo); err != nil {
		return refundRequest{}, err
	}
	if req.Reason != "" {
		if err := checkText("reason", req.Reason, 1, MaxRefundReason); err != nil {
			return refundRequest{}, err
		}
	}
	if err := paygate.CheckAmount("amount.refund", req.Amount.Refund, s.cfg.MaxAmount); err != nil {
		return refundRequest{}, err
	}
	if err := paygate.CheckAmount("amount.total", req.Amount.Total, s.cfg.MaxAmount); err != nil {
		return refundRequest{}, err
	}
	cur := req.Amount.Currency
	if cur == "" {
		cur = "CNY"
	}
	if _, err := paygate.ParseCurrency(string(cur)); err != nil {
		return refundRequest{}, paygate.EField(paygate.CodeUnknownCurrency, "amount.currency", "unknown currency %q", string(cur))
	}
	switch req.IfInsufficient {
	case "":
		req.IfInsufficient = InsufficientFail
	case InsufficientFail, InsufficientWait:
	default:
		return refundRequest{}, paygate.EField(paygate.CodeInvalidArgument, "if_insufficient", "if_insufficient must be WAIT or FAIL")
	}
	if req.NotifyURL != "" {
		if err := notify.ValidateURL(req.NotifyURL, m.Sandbox()); err != nil {
			return refundRequest{}, err
		}
		if u, err := url.Parse(req.NotifyURL); err != nil || !m.NotifyHostAllowed(u.Hostname()) {
			return refundRequest{}, paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url's host is not among the merchant's allowed notify hosts")
		}
	}
	return refundRequest{CreateRefundRequest: req, cur: cur}, nil
}

// refundOrder finds the merchant's order a refund request names, without
// a lock. Errors: CodeNotFound; CodeInvalidArgument when order_id and
// out_trade_no name different orders.
func (s *Service) refundOrder(ctx context.Context, merchantID string, req CreateRefundRequest) (Order, error) {
	var o Order
	var err error
	if req.OrderID != "" {
		if len(req.OrderID) > maxOrderIDLen {
			return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
		}
		o, err = s.store.Order(ctx, merchantID, req.OrderID)
	} else {
		if checkOutTradeNo(req.OutTradeNo) != nil {
			return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
		}
		o, err = s.store.OrderByOutTradeNo(ctx, merchantID, req.OutTradeNo)
	}
	if err != nil {
		return Order{}, err
	}
	if req.OutTradeNo != "" && req.OutTradeNo != o.OutTradeNo {
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "out_trade_no", "order_id and out_trade_no name different orders")
	}
	return o, nil
}

// refundHash fingerprints the normalised request fields that define a refund.
func refundHash(orderID string, r refundRequest, notifyURL string) string {
	b, _ := json.Marshal([]any{orderID, r.OutRefundNo, r.Reason, notifyURL, r.Amount.Refund, r.Amount.Total, r.cur, r.IfInsufficient})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// refundDiff names the first field in which a repeated request differs
// from the stored refund.
func refundDiff(prev Refund, orderID string, r refundRequest, notifyURL string) string {
	switch {
	case prev.OrderID != orderID:
		return "order_id"
	case prev.Amount.Refund != r.Amount.Refund:
		return "amount.refund"
	case prev.Amount.Total != r.Amount.Total:
		return "amount.total"
	case prev.Amount.Currency != r.cur:
		return "amount.currency"
	case prev.Reason != r.Reason:
		return "reason"
	case prev.NotifyURL != notifyURL:
		return "notify_url"
	}
	return "if_insufficient"
}

// refunder returns the channel that refunds payments made through name.
func (s *Service) refunder(name string) (channel.Refunder, bool) {
	r, ok := s.channels[name].(channel.Refunder)
	return r, ok
}

// ensureRefundAccounts creates, once per process, the ledger accounts a
// refund of the merchant's order through ch may touch (before the
// transaction: the embedded store has one writer).
func (s *Service) ensureRefundAccounts(ctx context.Context, ch, mch string, cur paygate.Currency) error {
	key := "refund\x00" + ch + "\x00" + mch + "\x00" + string(cur)
	if _, ok := s.accounts.Load(key); ok {
		return nil
	}
	as := []ledger.Account{ledger.MerchantPending(mch, cur), ledger.MerchantSettled(mch, cur),
		ledger.PlatformFeeFor(cur, false), ledger.PlatformFeeFor(cur, true)}
	if ch != ChannelOnUs && ch != "" {
		as = append(as, ledger.ChannelClearing(ch, cur))
	}
	if _, err := s.books.CreateAccounts(ctx, as); err != nil {
		return fmt.Errorf("payment: create ledger accounts: %w", err)
	}
	s.accounts.Store(key, true)
	return nil
}

// feeShare is the part of the order's fee a refund of amount returns,
// computed on the cumulative amount so that rounding never drifts: after
// each refund the fee returned in all is floor(fee × refunded ÷ paid), and
// the refund that completes the amount paid takes the remainder, so a full
// refund returns the whole fee. live and liveFee are the amounts and fee
// shares of the order's PROCESSING and SUCCESS refunds.
func feeShare(fee, paid, live, liveFee, amount int64) int64 {
	if fee <= 0 || paid <= 0 {
		return 0
	}
	cum := live + amount
	due := fee
	if cum < paid {
		hi, lo := bits.Mul64(uint64(fee), uint64(cum))
		q, _ := bits.Div64(hi, lo, uint64(paid)) // fee ≤ paid and cum < paid: no overflow
		due = int64(q)
	}
	return max(0, due-liveFee)
}

// refundedSoFar sums an order's PROCESSING and SUCCESS refunds: their
// amounts and their fee shares.
func refundedSoFar(rs []Refund) (live, liveFee int64) {
	for _, r := range rs {
		if r.Status == RefundProcessing || r.Status == RefundSuccess {
			live += r.Amount.Refund
			liveFee += r.Amount.FeeRefund
		}
	}
	return live, liveFee
}

// Refund refunds (part of) the merchant's paid order, or returns the
// refund the merchant already requested with the same out_refund_no and the
// same request (replay true; the HTTP layer answers 200 instead of 201).
//
// In one transaction, under the order's row lock (so that the refunds
// PROCESSING and SUCCESS never exceed the amount paid, however many
// requests race): the refund is recorded, the order becomes REFUND, and
// the money moves back the way it came —
//
//   - before settlement (FundsPending): platform fee → merchant pending
//     for the fee share (Amount.FeeRefund, see feeShare), then the refund
//     from merchant pending;
//   - after settlement (FundsSettled): the refund from the merchant's
//     settled balance, no fee share. If the balance is short, FAIL refuses
//     with CodeInsufficientFunds and WAIT records the refund PROCESSING
//     awaiting funds (ReconcileRefunds pays it later);
//   - a payment on us (ChannelOnUs) goes straight back to the payer's card
//     or balance account: SUCCESS at once, REFUND.SUCCESS queued in the
//     same transaction;
//   - a payment through a channel is held (a ledger pending transfer to the
//     channel's clearing account) and, after the commit, submitted to the
//     channel (channel.Refunder). The refund stays PROCESSING until the
//     channel's result is known (ReconcileRefunds): SUCCESS posts the hold
//     (REFUND.SUCCESS), a failure voids it and gives the fee share back
//     (ABNORMAL, REFUND.ABNORMAL). An unknown outcome is never a failure.
//
// Errors (nothing changes): CodeForbidden (merchant may not transact),
// CodeInvalidArgument naming the field (order_id/out_trade_no missing or
// contradictory, out_refund_no, reason, notify_url, if_insufficient,
// amount.total not the order's), CodeAmountNotPositive /
// CodeLimitExceeded (amount.refund or amount.total not a positive amount
// within the maximum), CodeUnknownCurrency, CodeCurrencyMismatch
// (amount.currency not the order's), CodeNotFound (no such order of the
// merchant's), CodeConflict (the order is not paid), CodeLimitExceeded
// (field amount.refund: more than the amount paid less the refunds
// PROCESSING or SUCCESS; or MaxRefundsPerOrder reached),
// CodeInsufficientFunds (settled balance short with FAIL), CodeUnavailable
// (the payment's channel cannot refund), CodeOutRefundNoUsed (the
// out_refund_no was used with a different request; field: the first
// differing one), and the ledger's CodeAccountClosed for a closed source
// account.
func (s *Service) Refund(ctx context.Context, merchantID string, req CreateRefundRequest) (r Refund, replay bool, err error) {
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Refund{}, false, err
	}
	rr, err := s.checkRefundRequest(m, req)
	if err != nil {
		return Refund{}, false, err
	}
	o0, err := s.refundOrder(ctx, m.ID, req)
	if err != nil {
		return Refund{}, false, err
	}
	notifyURL := rr.NotifyURL
	if notifyURL == "" {
		notifyURL = o0.NotifyURL
	}
	hash := refundHash(o0.ID, rr, notifyURL)
	if o0.Channel != "" {
		if o0.Channel != ChannelOnUs {
			if _, ok := s.refunder(o0.Channel); !ok {
				return Refund{}, false, paygate.E(paygate.CodeUnavailable, "payments through channel %q cannot be refunded here", o0.Channel)
			}
		}
		if err := s.ensureRefundAccounts(ctx, o0.Channel, m.ID, o0.Amount.Currency); err != nil {
			return Refund{}, false, err
		}
	}
	var out Refund
	err = s.store.InTx(ctx, func(tx Tx) error {
		replay = false
		o, err := tx.LockOrder(ctx, o0.ID)
		if err != nil {
			return err
		}
		prev, err := tx.RefundByOutRefundNoInTx(ctx, m.ID, rr.OutRefundNo)
		switch {
		case err == nil:
			return s.replayRefund(prev, o.ID, rr, notifyURL, hash, &out, &replay)
		case !paygate.HasCode(err, paygate.CodeNotFound):
			return err
		}
		to, refused := next(o.Status, TriggerRefund)
		if refused {
			return paygate.E(paygate.CodeConflict, "an order in status %s cannot be refunded: it is not paid", o.Status)
		}
		if rr.Amount.Total != o.Amount.Total {
			return paygate.EField(paygate.CodeInvalidArgument, "amount.total", "amount.total must be the order's total, %d", o.Amount.Total)
		}
		if rr.cur != o.Amount.Currency {
			return paygate.EField(paygate.CodeCurrencyMismatch, "amount.currency", "the order is in %s", o.Amount.Currency)
		}
		rs, err := tx.OrderRefundsInTx(ctx, o.ID)
		if err != nil {
			return err
		}
		if len(rs) >= MaxRefundsPerOrder {
			return paygate.EField(paygate.CodeLimitExceeded, "out_refund_no", "an order may be refunded at most %d times", MaxRefundsPerOrder)
		}
		paid := o.Amount.PayerTotal
		live, liveFee := refundedSoFar(rs)
		if rr.Amount.Refund > paid-live {
			return paygate.EField(paygate.CodeLimitExceeded, "amount.refund", "the refund exceeds the refundable amount %d (paid %d, refunded or in progress %d)", paid-live, paid, live)
		}
		now := s.now()
		r := Refund{ID: paygate.NewID(PrefixRefund), MerchantID: m.ID, OutRefundNo: rr.OutRefundNo, OrderID: o.ID,
			OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID, Channel: o.Channel, Reason: rr.Reason,
			Status: RefundProcessing, Amount: RefundAmount{Refund: rr.Amount.Refund, Total: o.Amount.Total, PayerRefund: rr.Amount.Refund,
				Currency: o.Amount.Currency}, FundsSource: FundsPending, IfInsufficient: rr.IfInsufficient,
			CreateTime: now, UpdateTime: now, NotifyURL: notifyURL, Sandbox: o.Sandbox, Scenario: req.Scenario, RequestHash: hash}
		if o.SettleTime.IsZero() {
			r.Amount.FeeRefund = feeShare(o.Fee, paid, live, liveFee, r.Amount.Refund)
		} else {
			r.FundsSource = FundsSettled
		}
		stored := !refundMayWait(r)
		if stored {
			// Inserted as it stands once its money moved, so that the
			// journal can be the transaction's last statement
			// (takeRefundFunds).
			r = s.fundedRefund(r, now)
		}
		inserted, err := tx.InsertRefund(ctx, r)
		if err != nil {
			return err
		}
		if !inserted { // the number was taken meanwhile, for another order
			prev, err := tx.RefundByOutRefundNoInTx(ctx, m.ID, rr.OutRefundNo)
			if err != nil {
				return err
			}
			return s.replayRefund(prev, o.ID, rr, notifyURL, hash, &out, &replay)
		}
		if to != o.Status {
			o.Status, o.UpdateTime = to, now
			if err := tx.UpdateOrder(ctx, o); err != nil {
				return err
			}
		}
		out, err = s.takeRefundFunds(ctx, tx, o, r, stored)
		return err
	})
	if err != nil {
		return Refund{}, false, err
	}
	if replay {
		return out, true, nil
	}
	s.kick()
	if out.Status == RefundProcessing && !out.AwaitingFunds {
		out, err = s.submitRefund(ctx, out)
	}
	return out, false, err
}

// replayRefund answers a request whose out_refund_no exists: the same
// request gets the stored refund, another CodeOutRefundNoUsed.
func (s *Service) replayRefund(prev Refund, orderID string, rr refundRequest, notifyURL, hash string, out *Refund, replay *bool) error {
	if prev.RequestHash != hash {
		f := refundDiff(prev, orderID, rr, notifyURL)
		return paygate.EField(paygate.CodeOutRefundNoUsed, f, "out_refund_no %q was already used with a different %s", rr.OutRefundNo, f)
	}
	*out, *replay = prev, true
	return nil
}

// refundMayWait reports whether r's journal may fail into a state that
// is recorded (a settled order's refund that waits when the balance is
// short): only then must its row be written after the journal.
func refundMayWait(r Refund) bool {
	return r.FundsSource == FundsSettled && r.IfInsufficient == InsufficientWait
}

// fundedRefund returns r as it stands once its money moved at now:
// SUCCESS for a payment on us, PROCESSING with its first query scheduled
// for a channel.
func (s *Service) fundedRefund(r Refund, now time.Time) Refund {
	r.AwaitingFunds, r.UpdateTime = false, now
	if r.Channel != ChannelOnUs { // held: the channel's answer is queried from now on
		r.QueryCount, r.NextQueryAt = 0, now.Add(s.refundBackoff(0))
		return r
	}
	r.Status, r.SuccessTime, r.NextQueryAt = RefundSuccess, now, time.Time{}
	return r
}

// takeRefundFunds moves a PROCESSING refund's money inside tx (the order
// locked, the refund row written): see Refund. It returns the refund as
// it now stands: SUCCESS for a payment on us, PROCESSING with the hold
// placed for a channel, or PROCESSING awaiting funds (WAIT, settled
// balance short).
//
// stored says the row already holds fundedRefund's state: then the
// notification is queued first and the journal is the transaction's last
// statement. The journal locks the merchant's pending or settled balance
// row, which every refund of the merchant shares, so the lock is held
// only until COMMIT and the merchant's refunds queue on it as briefly as
// they can. Without stored (a refund that may wait) the row is updated
// after the journal, as its outcome decides.
func (s *Service) takeRefundFunds(ctx context.Context, tx Tx, o Order, r Refund, stored bool) (Refund, error) {
	cur := r.Amount.Currency
	pays, err := tx.TransfersByID(ctx, []string{"pay_" + o.ID})
	if err != nil {
		return Refund{}, err
	}
	if len(pays) != 1 {
		return Refund{}, fmt.Errorf("payment: order %s is paid but has no payment transfer", o.ID)
	}
	source := pays[0].DebitAccountID // the payer's account, or the channel's clearing account
	from := ledger.MerchantPending(r.MerchantID, cur).ID
	if r.FundsSource == FundsSettled {
		from = ledger.MerchantSettled(r.MerchantID, cur).ID
	}
	var journal []ledger.Transfer
	if r.Amount.FeeRefund > 0 {
		journal = append(journal, ledger.Transfer{ID: "rfee_" + r.ID, DebitAccountID: ledger.PlatformFeeFor(cur, o.Sandbox).ID,
			CreditAccountID: from, Amount: r.Amount.FeeRefund, Currency: cur, Code: TransferRefundFee, Ref: r.ID})
	}
	if r.Channel == ChannelOnUs {
		journal = append(journal, ledger.Transfer{ID: "refund_" + r.ID, DebitAccountID: from, CreditAccountID: source,
			Amount: r.Amount.Refund, Currency: cur, Code: TransferRefund, Ref: r.ID})
	} else {
		journal = append(journal, ledger.Transfer{ID: "rhold_" + r.ID, DebitAccountID: from, CreditAccountID: source,
			Amount: r.Amount.Refund, Currency: cur, Flags: ledger.Pending, Code: TransferRefund, Ref: r.ID})
	}
	if stored {
		if r.Status == RefundSuccess {
			if err := s.refundEvent(ctx, tx, r, EventRefundSuccess, "Refund succeeded"); err != nil {
				return Refund{}, err
			}
		}
		if _, err := s.books.Apply(ctx, tx, journal); err != nil {
			return Refund{}, refundJournalError(r, err)
		}
		return r, nil
	}
	_, err = s.books.Apply(ctx, tx, journal)
	now := s.now()
	switch {
	case err == nil:
	case paygate.HasCode(err, paygate.CodeInsufficientFunds) && r.FundsSource == FundsSettled && r.IfInsufficient == InsufficientWait:
		r.AwaitingFunds, r.UpdateTime = true, now
		if r.NextQueryAt.IsZero() {
			r.NextQueryAt = now.Add(s.refundBackoff(0))
		}
		return r, tx.UpdateRefund(ctx, r)
	default:
		return Refund{}, refundJournalError(r, err)
	}
	r = s.fundedRefund(r, now)
	if err := tx.UpdateRefund(ctx, r); err != nil {
		return Refund{}, err
	}
	if r.Status == RefundSuccess {
		return r, s.refundEvent(ctx, tx, r, EventRefundSuccess, "Refund succeeded")
	}
	return r, nil
}

// refundJournalError is the answer to a refund journal the ledger
// refused: a settled balance short of the refund is the merchant's
// CodeInsufficientFunds on amount.refund.
func refundJournalError(r Refund, err error) error {
	if paygate.HasCode(err, paygate.CodeInsufficientFunds) && r.FundsSource == FundsSettled {
		return paygate.EField(paygate.CodeInsufficientFunds, "amount.refund",
			"the merchant's settled balance is short of the refund; retry later, or ask to wait (if_insufficient WAIT)")
	}
	return fmt.Errorf("payment: book refund: %w", err)
}

// refundEvent queues a REFUND.* notification of r inside tx.
func (s *Service) refundEvent(ctx context.Context, tx Tx, r Refund, typ, summary string) error {
	p, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("payment: encode notification: %w", err)
	}
	return notify.Enqueue(ctx, tx, s.clock, notify.Event{MerchantID: r.MerchantID, EventType: typ, OriginalType: RefundOriginalType,
		Summary: summary, URL: r.NotifyURL, Payload: p, CreatedAt: s.now(), Sandbox: r.Sandbox})
}

// refundBackoff is the wait before the n-th query of a refund.
func (s *Service) refundBackoff(n int) time.Duration {
	b := s.cfg.RefundQueryBackoff
	return b[min(n, len(b)-1)]
}

// submitRefund sends a held channel refund to its channel (outside any
// transaction; safe to repeat: channels refund once per refund id) and
// returns the refund as it stands after the channel's synchronous answer.
// A refusal books ABNORMAL; any other error leaves it PROCESSING, to be
// queried.
func (s *Service) submitRefund(ctx context.Context, r Refund) (Refund, error) {
	ch, ok := s.refunder(r.Channel)
	if !ok {
		s.log.Error("payment: a refund's channel cannot refund; it stays PROCESSING", "refund_id", r.ID, "channel", r.Channel)
		return r, nil
	}
	acc, err := ch.Refund(ctx, channel.RefundRequest{RefundID: r.ID, AttemptID: r.TransactionID, OrderID: r.OrderID,
		ChannelTradeNo: s.tradeNo(ctx, r), Amount: r.Amount.Refund, Total: r.Amount.Total, Currency: r.Amount.Currency,
		Reason: r.Reason, Scenario: r.Scenario})
	switch {
	case err == nil:
		if acc.ChannelRefundNo == "" {
			return r, nil
		}
		now := s.now()
		ok, err := s.store.SetRefundChannelNo(ctx, r.ID, acc.ChannelRefundNo, now)
		if err != nil {
			return Refund{}, err
		}
		if ok {
			r.ChannelRefundNo, r.UpdateTime = acc.ChannelRefundNo, now
			return r, nil
		}
		return s.store.RefundByID(ctx, r.ID)
	case errors.Is(err, channel.ErrRefundDeclined):
		s.log.Info("payment: channel declined the refund", "refund_id", r.ID, "order_id", r.OrderID, "channel", r.Channel, "error", err)
		return s.bookRefund(ctx, channel.RefundResult{Channel: r.Channel, RefundID: r.ID, Status: channel.StatusFailed,
			Amount: r.Amount.Refund, Currency: r.Amount.Currency, FailCode: FailRefundDeclined})
	default:
		s.log.Warn("payment: channel refund outcome unknown; the refund will be queried", "refund_id", r.ID, "order_id", r.OrderID,
			"channel", r.Channel, "error", err)
		return r, nil
	}
}

// tradeNo is the channel's number of the payment a refund gives back.
func (s *Service) tradeNo(ctx context.Context, r Refund) string {
	if a, err := s.store.Attempt(ctx, r.TransactionID); err == nil {
		return a.ChannelTradeNo
	}
	return ""
}

// bookRefund books a channel's final result for a held refund, exactly
// once, in one transaction with its ledger journal and notification:
// SUCCESS posts the hold ("rpost_"+id; REFUND.SUCCESS); FAILED voids it
// ("rvoid_"+id) and gives the fee share back to the platform
// ("rfeerev_"+id), status ABNORMAL (REFUND.ABNORMAL). A result already
// booked changes nothing. Errors: CodeNotFound (unknown refund),
// CodeInvalidArgument (field: channel, amount, channel_refund_no; status
// not final), CodeCurrencyMismatch, CodeConflict (a result contradicting
// the booked one, alerted with AlertRefundContradiction; or a refund that
// was never submitted).
func (s *Service) bookRefund(ctx context.Context, res channel.RefundResult) (Refund, error) {
	if !res.Status.Final() {
		return Refund{}, paygate.EField(paygate.CodeInvalidArgument, "status", "only a final result can be booked")
	}
	r0, err := s.store.RefundByID(ctx, res.RefundID)
	if err != nil {
		return Refund{}, err
	}
	var out Refund
	contradiction := false
	err = s.store.InTx(ctx, func(tx Tx) error {
		contradiction = false
		o, err := tx.LockOrder(ctx, r0.OrderID)
		if err != nil {
			return err
		}
		r, err := tx.LockRefund(ctx, r0.ID)
		if err != nil {
			return err
		}
		if err := matchRefund(r, res); err != nil {
			return err
		}
		out = r
		booked := map[RefundStatus]channel.Status{RefundSuccess: channel.StatusSuccess, RefundAbnormal: channel.StatusFailed}
		switch {
		case r.Status.Final() && booked[r.Status] == res.Status:
			return nil // already booked
		case r.Status.Final():
			contradiction = true
			return paygate.E(paygate.CodeConflict, "the refund is already %s", r.Status)
		case r.AwaitingFunds:
			return paygate.E(paygate.CodeConflict, "the refund was never submitted to the channel")
		}
		now := s.now()
		if r.ChannelRefundNo == "" {
			r.ChannelRefundNo = res.ChannelRefundNo
		}
		r.UpdateTime, r.NextQueryAt = now, time.Time{}
		cur := r.Amount.Currency
		var journal []ledger.Transfer
		typ, summary := EventRefundSuccess, "Refund succeeded"
		if res.Status == channel.StatusSuccess {
			journal = []ledger.Transfer{{ID: "rpost_" + r.ID, PendingID: "rhold_" + r.ID, Flags: ledger.PostPending, Code: TransferRefund, Ref: r.ID}}
			r.Status, r.SuccessTime = RefundSuccess, res.SucceededAt.UTC().Truncate(time.Microsecond)
			if r.SuccessTime.IsZero() {
				r.SuccessTime = now
			}
		} else {
			journal = []ledger.Transfer{{ID: "rvoid_" + r.ID, PendingID: "rhold_" + r.ID, Flags: ledger.VoidPending, Code: TransferRefund, Ref: r.ID}}
			if r.Amount.FeeRefund > 0 {
				journal = append(journal, ledger.Transfer{ID: "rfeerev_" + r.ID, DebitAccountID: ledger.MerchantPending(r.MerchantID, cur).ID,
					CreditAccountID: ledger.PlatformFeeFor(cur, o.Sandbox).ID, Amount: r.Amount.FeeRefund, Currency: cur,
					Code: TransferRefundFee, Ref: r.ID})
			}
			r.Status, r.FailCode = RefundAbnormal, clip(res.FailCode, maxFailCode)
			if r.FailCode == "" {
				r.FailCode = "FAILED"
			}
			typ, summary = EventRefundAbnormal, "Refund failed"
		}
		// The journal last: it locks the merchant's balance row, which
		// every refund of the merchant shares, until COMMIT.
		if err := tx.UpdateRefund(ctx, r); err != nil {
			return err
		}
		if err := s.refundEvent(ctx, tx, r, typ, summary); err != nil {
			return err
		}
		if _, err := s.books.Apply(ctx, tx, journal); err != nil {
			return fmt.Errorf("payment: book refund result: %w", err)
		}
		out = r
		return nil
	})
	if err != nil {
		if contradiction {
			s.log.Error("payment: channel contradicts a booked refund result", "alert", AlertRefundContradiction,
				"channel", res.Channel, "refund_id", res.RefundID, "status", string(res.Status))
		}
		return Refund{}, err
	}
	s.kick()
	return out, nil
}

// matchRefund checks a channel's refund result against the refund.
func matchRefund(r Refund, res channel.RefundResult) error {
	switch {
	case res.Channel != r.Channel:
		return paygate.EField(paygate.CodeInvalidArgument, "channel", "the result is for another channel")
	case res.Amount != r.Amount.Refund:
		return paygate.EField(paygate.CodeInvalidArgument, "amount", "the amount differs from the refund's")
	case res.Currency != r.Amount.Currency:
		return paygate.EField(paygate.CodeCurrencyMismatch, "currency", "the currency differs from the refund's")
	case r.ChannelRefundNo != "" && res.ChannelRefundNo != "" && r.ChannelRefundNo != res.ChannelRefundNo:
		return paygate.EField(paygate.CodeInvalidArgument, "channel_refund_no", "the channel refund number differs from the refund's")
	}
	return nil
}

// GetRefund returns the merchant's refund with the id. Errors:
// CodeNotFound when there is none (another merchant's refund included).
func (s *Service) GetRefund(ctx context.Context, merchantID, id string) (Refund, error) {
	if len(id) > maxOrderIDLen {
		return Refund{}, paygate.E(paygate.CodeNotFound, "refund not found")
	}
	return s.store.Refund(ctx, merchantID, id)
}

// GetRefundByOutRefundNo returns the merchant's refund with the
// out_refund_no. Errors: CodeNotFound when there is none.
func (s *Service) GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (Refund, error) {
	if checkOutRefundNo(outRefundNo) != nil {
		return Refund{}, paygate.E(paygate.CodeNotFound, "refund not found")
	}
	return s.store.RefundByOutRefundNo(ctx, merchantID, outRefundNo)
}

// OrderRefunds returns the refunds of the merchant's order, newest first
// (at most MaxRefundsPerOrder). Errors: CodeNotFound when the order is not
// the merchant's.
func (s *Service) OrderRefunds(ctx context.Context, merchantID, orderID string) (RefundList, error) {
	if len(orderID) > maxOrderIDLen {
		return RefundList{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	if _, err := s.store.Order(ctx, merchantID, orderID); err != nil {
		return RefundList{}, err
	}
	rs, err := s.store.OrderRefunds(ctx, orderID)
	if err != nil {
		return RefundList{}, err
	}
	out := RefundList{Refunds: make([]Refund, 0, len(rs))}
	for i := len(rs) - 1; i >= 0; i-- {
		out.Refunds = append(out.Refunds, rs[i])
	}
	return out, nil
}

// CloseRefund closes the merchant's refund that is still waiting for
// funds (WAIT, nothing moved): it becomes CLOSED, no longer counts against
// the refundable amount, and the merchant is told (REFUND.CLOSED). Closing
// a closed refund returns it unchanged. Errors: CodeNotFound; CodeConflict
// once the refund reached its channel or ended.
func (s *Service) CloseRefund(ctx context.Context, merchantID, id string) (Refund, error) {
	r0, err := s.GetRefund(ctx, merchantID, id)
	if err != nil {
		return Refund{}, err
	}
	var out Refund
	closed := false
	err = s.store.InTx(ctx, func(tx Tx) error {
		closed = false
		if _, err := tx.LockOrder(ctx, r0.OrderID); err != nil {
			return err
		}
		r, err := tx.LockRefund(ctx, r0.ID)
		if err != nil {
			return err
		}
		out = r
		switch {
		case r.Status == RefundClosed:
			return nil
		case r.Status != RefundProcessing || !r.AwaitingFunds:
			return paygate.E(paygate.CodeConflict, "only a refund waiting for funds can be closed; this one is %s", r.Status)
		}
		now := s.now()
		r.Status, r.AwaitingFunds, r.CloseTime, r.NextQueryAt, r.UpdateTime = RefundClosed, false, now, time.Time{}, now
		if err := tx.UpdateRefund(ctx, r); err != nil {
			return err
		}
		out, closed = r, true
		return s.refundEvent(ctx, tx, r, EventRefundClosed, "Refund closed")
	})
	if err != nil {
		return Refund{}, err
	}
	if closed {
		s.kick()
	}
	return out, nil
}

// MarkSettled is settlement's hook: it records that the order's net
// proceeds left the merchant's pending account for its settled balance —
// the journal merchant pending → merchant settled ("settle_"+order id) of
// the amount paid less the fee and less the refunds already reversed from
// pending, in one transaction with the order's settled marker. From then
// on refunds of the order are paid from the settled balance
// (FundsSettled). Settling a settled order returns it unchanged. Until the
// settlement job exists only tests call it.
//
// Errors: CodeNotFound; CodeConflict when the order is not paid, or a
// refund reversing it from pending is still PROCESSING (settle it once
// the channel has answered).
func (s *Service) MarkSettled(ctx context.Context, orderID string) (Order, error) {
	if len(orderID) > maxOrderIDLen {
		return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	o0, err := s.store.OrderByID(ctx, orderID)
	if err != nil {
		return Order{}, err
	}
	if err := s.ensureRefundAccounts(ctx, "", o0.MerchantID, o0.Amount.Currency); err != nil {
		return Order{}, err
	}
	var out Order
	err = s.store.InTx(ctx, func(tx Tx) error {
		o, err := tx.LockOrder(ctx, orderID)
		if err != nil {
			return err
		}
		out = o
		if o.Status != StatusSuccess && o.Status != StatusRefund {
			return paygate.E(paygate.CodeConflict, "an order in status %s has nothing to settle", o.Status)
		}
		if !o.SettleTime.IsZero() {
			return nil
		}
		rs, err := tx.OrderRefundsInTx(ctx, o.ID)
		if err != nil {
			return err
		}
		net := o.Amount.PayerTotal - o.Fee
		for _, r := range rs {
			if r.FundsSource != FundsPending {
				continue
			}
			switch r.Status {
			case RefundProcessing:
				return paygate.E(paygate.CodeConflict, "refund %s of the order is in progress", r.ID)
			case RefundSuccess:
				net -= r.Amount.Refund - r.Amount.FeeRefund
			}
		}
		if net < 0 {
			return fmt.Errorf("payment: order %s would settle a negative %d", o.ID, net)
		}
		if net > 0 {
			cur := o.Amount.Currency
			if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{{ID: "settle_" + o.ID, DebitAccountID: ledger.MerchantPending(o.MerchantID, cur).ID,
				CreditAccountID: ledger.MerchantSettled(o.MerchantID, cur).ID, Amount: net, Currency: cur, Code: TransferSettle, Ref: o.ID}}); err != nil {
				return fmt.Errorf("payment: settle order: %w", err)
			}
		}
		now := s.now()
		o.SettleTime, o.UpdateTime = now, now
		out = o
		return tx.UpdateOrder(ctx, o)
	})
	if err != nil {
		return Order{}, err
	}
	return s.view(out), nil
}

// ReconcileRefunds drives PROCESSING refunds whose next look is due, up to
// limit (default 100): a refund awaiting funds is paid if the merchant's
// settled balance now allows (and submitted, for a channel); a channel
// refund is queried and its final result booked; one the channel has no
// record of (never submitted: a crash between commit and call) is
// submitted again, which channels take once per refund id. Looks are
// spaced by Config.RefundQueryBackoff; an unknown outcome is never a
// failure. Several processes may run it: each due refund is claimed by
// one (SKIP LOCKED). It returns how many refunds it resolved (final, or
// funded); per-refund failures are logged and retried later.
func (s *Service) ReconcileRefunds(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	var due []Refund
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		rs, err := tx.LockRefundsToQuery(ctx, now, limit)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, r := range rs {
			r.QueryCount++
			r.NextQueryAt = now.Add(s.refundBackoff(r.QueryCount))
			if err := tx.UpdateRefund(ctx, r); err != nil {
				return err
			}
			due = append(due, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	resolved := 0
	for _, r := range due {
		if ctx.Err() != nil {
			break
		}
		log := s.log.With("refund_id", r.ID, "order_id", r.OrderID, "channel", r.Channel)
		if r.AwaitingFunds {
			funded, err := s.fundWaiting(ctx, r)
			if err != nil {
				log.Warn("payment: could not pay a refund awaiting funds; will retry", "error", err)
			} else if funded {
				resolved++
			}
			continue
		}
		ch, ok := s.refunder(r.Channel)
		if !ok {
			log.Error("payment: a refund's channel cannot refund; cannot query it")
			continue
		}
		res, err := ch.QueryRefund(ctx, channel.RefundQuery{RefundID: r.ID, ChannelRefundNo: r.ChannelRefundNo})
		switch {
		case errors.Is(err, channel.ErrUnknownRefund):
			log.Info("payment: the channel has no record of the refund; submitting it again")
			if got, err := s.submitRefund(ctx, r); err != nil {
				log.Warn("payment: could not submit the refund again; will retry", "error", err)
			} else if got.Status.Final() {
				resolved++
			}
			continue
		case err != nil:
			log.Warn("payment: refund query failed; will retry", "error", err, "queries", r.QueryCount)
			continue
		}
		if !res.Status.Final() {
			continue
		}
		if res.Channel == "" {
			res.Channel = r.Channel
		}
		if res.RefundID == "" {
			res.RefundID = r.ID
		}
		if res.RefundID != r.ID {
			log.Error("payment: the channel answered about another refund", "alert", AlertMismatch, "field", "refund_id")
			continue
		}
		if _, err := s.bookRefund(ctx, res); err != nil {
			log.Warn("payment: could not book a queried refund result", "error", err)
			continue
		}
		resolved++
	}
	return resolved, nil
}

// fundWaiting pays a refund awaiting funds if the settled balance allows,
// and submits it when it goes through a channel. It reports whether the
// money moved.
func (s *Service) fundWaiting(ctx context.Context, r0 Refund) (bool, error) {
	if err := s.ensureRefundAccounts(ctx, r0.Channel, r0.MerchantID, r0.Amount.Currency); err != nil {
		return false, err
	}
	var out Refund
	funded := false
	err := s.store.InTx(ctx, func(tx Tx) error {
		funded = false
		o, err := tx.LockOrder(ctx, r0.OrderID)
		if err != nil {
			return err
		}
		r, err := tx.LockRefund(ctx, r0.ID)
		if err != nil {
			return err
		}
		if r.Status != RefundProcessing || !r.AwaitingFunds {
			return nil // closed, or funded by another process
		}
		r.NextQueryAt = r0.NextQueryAt // as the claim scheduled it
		out, err = s.takeRefundFunds(ctx, tx, o, r, false)
		funded = err == nil && !out.AwaitingFunds
		return err
	})
	if err != nil || !funded {
		return false, err
	}
	s.kick()
	if out.Status == RefundProcessing {
		if _, err := s.submitRefund(ctx, out); err != nil {
			return true, err
		}
	}
	return true, nil
}
