package payment

import (
	"context"
	"errors"
	"fmt"

	"paygate"
	"paygate/channel"
)

// MethodAgreement is the payment_methods entry of an order created by a
// charge of a signed agreement (package agreement): the checkout offers
// no method for it, since the payer is not present and the order is paid
// from the agreement's card at once.
const MethodAgreement = "agreement"

// Source is where CreateAndPay takes an order's money from: exactly one
// of an account paygate keeps (on us, final at once) or an external
// channel (the result arrives asynchronously).
type Source struct {
	// Account is the ledger id of an own-bank card's account.
	Account string
	// Channel names the channel another bank's card is charged through;
	// Scenario is the outcome a simulated channel gives it.
	Channel, Scenario string
}

// CreateAndPay creates the merchant's order from req and pays it at once,
// without the payer present, in the order's own transaction: the order,
// authorize (an agreement's checks and the payer's limits), the attempt
// and — on us — the journal, the order's SUCCESS and its
// TRANSACTION.SUCCESS notification commit together or not at all, so a
// refused charge leaves no order behind. Through a channel the attempt is
// PROCESSING when the transaction commits and the channel is asked after
// it, as PayThrough does; its result arrives by Callback or
// ReconcileUnknown.
//
// Idempotent on out_trade_no: the same request again returns the order
// and its latest attempt as they stand (replay true) without running
// authorize; a different request with the number fails with
// CodeOutTradeNoUsed naming the first differing field.
//
// Errors: Create's errors (nothing is created), authorize's errors,
// CodeUnavailable (channel not configured), and PayFromAccount's ledger
// errors for the source account.
func (s *Service) CreateAndPay(ctx context.Context, merchantID string, req CreateRequest, p Payer, src Source, authorize Authorize) (Order, Attempt, bool, error) {
	if p.IsZero() || (src.Account == "") == (src.Channel == "") {
		return Order{}, Attempt{}, false, paygate.E(paygate.CodeInvalidArgument, "payment: a payer and exactly one source are required")
	}
	var ch channel.Channel
	if src.Channel != "" {
		var ok bool
		if ch, ok = s.channels[src.Channel]; !ok {
			return Order{}, Attempt{}, false, paygate.E(paygate.CodeUnavailable, "payment: channel %q is not configured", src.Channel)
		}
	}
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Order{}, Attempt{}, false, err
	}
	now := s.now()
	o, err := s.newOrder(m, req, now)
	if err != nil {
		return Order{}, Attempt{}, false, err
	}
	if ch != nil {
		if err := canTake(ch, o); err != nil {
			return Order{}, Attempt{}, false, err
		}
	}
	if src.Account != "" {
		// Before the transaction: the embedded store has one writer.
		if err := s.ensureAccounts(ctx, ChannelOnUs, m.ID, o.Amount.Currency); err != nil {
			return Order{}, Attempt{}, false, err
		}
	}
	var (
		out    Order
		at     Attempt
		replay bool
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		replay = false
		inserted, err := tx.InsertOrder(ctx, o)
		if err != nil {
			return err
		}
		if !inserted {
			prev, err := tx.OrderByOutTradeNoInTx(ctx, m.ID, o.OutTradeNo)
			if err != nil {
				if paygate.HasCode(err, paygate.CodeNotFound) {
					return fmt.Errorf("payment: order vanished: %w", paygate.ErrRetry)
				}
				return err
			}
			if prev.RequestHash != o.RequestHash {
				f := diffField(prev, o, req)
				return paygate.EField(codeOutTradeNoUsed, f, "out_trade_no %q was already used with a different %s", o.OutTradeNo, f)
			}
			out, replay = prev, true
			return nil
		}
		var day paygate.Date
		if authorize != nil {
			if day, err = authorize(ctx, tx, o); err != nil {
				return err
			}
		}
		now := s.now()
		id := paygate.NewID(PrefixAttempt)
		at = Attempt{ID: id, OrderID: o.ID, MerchantID: o.MerchantID, Amount: o.Amount.Total, Currency: o.Amount.Currency,
			CreatedAt: now, UpdatedAt: now, Payer: p, LimitDay: day}
		if ch != nil {
			at.Channel, at.Status, at.NextQueryAt = ch.Name(), channel.StatusProcessing, now.Add(s.cfg.QueryBackoff[0])
			out = o
			return tx.InsertAttempt(ctx, at)
		}
		at.Channel, at.ChannelTradeNo, at.Status, at.PaidAt = ChannelOnUs, id, channel.StatusSuccess, now
		if err := tx.InsertAttempt(ctx, at); err != nil {
			return err
		}
		out, err = s.paid(ctx, tx, m, o, at, now, now, src.Account)
		return err
	})
	if err != nil {
		return Order{}, Attempt{}, false, err
	}
	if replay {
		as, err := s.store.OrderAttempts(ctx, out.ID)
		if err != nil {
			return Order{}, Attempt{}, false, err
		}
		if len(as) > 0 {
			at = as[len(as)-1]
		}
		return s.view(out), at, true, nil
	}
	if ch == nil {
		s.kick()
		return s.view(out), at, false, nil
	}
	at, err = s.submit(ctx, ch, out, at, src.Scenario)
	if err != nil {
		return Order{}, Attempt{}, false, err
	}
	o2, err := s.store.OrderByID(ctx, out.ID)
	if err != nil {
		return Order{}, Attempt{}, false, err
	}
	return s.view(o2), at, false, nil
}

// submit asks ch to take the PROCESSING attempt a of order o and returns
// the attempt as it stands after the channel's synchronous answer: an
// outright decline is confirmed FAILED at once (its limits given back); an
// unknown outcome stays PROCESSING for ReconcileUnknown.
func (s *Service) submit(ctx context.Context, ch channel.Channel, o Order, a Attempt, scenario string) (Attempt, error) {
	acc, err := ch.Pay(ctx, channel.PayRequest{AttemptID: a.ID, OrderID: o.ID, MerchantID: o.MerchantID, Amount: a.Amount,
		Currency: a.Currency, Description: o.Description, ExpiresAt: o.TimeExpire, ReturnURL: o.ReturnURL, Scenario: scenario,
		AuthorizeOnly: o.CaptureMethod == CaptureManual})
	switch {
	case err == nil:
		return s.accepted(ctx, a, acc.ChannelTradeNo)
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
