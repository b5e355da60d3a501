package transfer

import (
	"context"
	"errors"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/customer"
	"paygate/ledger"
)

// PayoutRequest asks the interbank channel to credit another bank's card.
// ID is the transfer's id and what the channel knows the payout by: a
// channel that sees the same ID twice must not pay twice.
type PayoutRequest struct {
	ID         string
	CardNumber string // the whole number: never log it
	Amount     int64  // minor units, positive
	Currency   paygate.Currency
	// Scenario is for simulated channels only (Config.InterbankScenario);
	// real channels ignore it.
	Scenario string
}

// PayoutAccepted is the channel's synchronous acceptance of a payout; the
// result comes later (QueryPayout).
type PayoutAccepted struct {
	ChannelNo  string
	AcceptedAt time.Time
}

// PayoutResult is what the channel says about a payout. Status PROCESSING
// means it does not know yet; SUCCESS and FAILED are final.
type PayoutResult struct {
	ID        string
	ChannelNo string
	Status    channel.Status
	FailCode  string // the channel's reason for a failure, safe to show
}

// Payouts is the interbank channel other banks' cards are credited
// through; channel/sim's Sim implements it for the sandbox.
type Payouts interface {
	// Payout submits a payout. An error matching channel.ErrDeclined is a
	// definite refusal (nothing was or will be paid); any other error
	// leaves the outcome unknown, and the payout is asked about (and, if
	// the channel does not know it, submitted again with the same ID).
	Payout(ctx context.Context, req PayoutRequest) (PayoutAccepted, error)
	// QueryPayout asks how a payout stands. Errors:
	// channel.ErrUnknownPayment when the channel has no record of it.
	QueryPayout(ctx context.Context, id string) (PayoutResult, error)
}

// submit sends r (PROCESSING, committed) to the interbank channel, outside
// any transaction, and returns it as it then stands: with the channel's
// number when accepted, FAILED when refused, unchanged when the outcome is
// unknown (Reconcile asks again later).
func (s *Service) submit(ctx context.Context, r Record) Record {
	pan, err := s.cfg.Keyring.Open(r.Card, panAAD(r.ID))
	if err != nil {
		s.log.ErrorContext(ctx, "transfer: cannot unseal the card number", "transfer", r.ID, "error", err)
		return r
	}
	acc, err := s.cfg.Payouts.Payout(ctx, PayoutRequest{ID: r.ID, CardNumber: string(pan), Amount: r.Amount.Amount,
		Currency: r.Amount.Currency, Scenario: r.Scenario})
	switch {
	case err == nil:
		if acc.ChannelNo != "" && r.ChannelNo == "" {
			if _, err := s.store.SetChannelNo(ctx, r.ID, acc.ChannelNo, s.clock.Now().UTC().Truncate(time.Microsecond)); err != nil {
				s.log.WarnContext(ctx, "transfer: recording the channel's number", "transfer", r.ID, "error", err)
			} else {
				r.ChannelNo = acc.ChannelNo
			}
		}
		return r
	case errors.Is(err, channel.ErrDeclined):
		s.log.InfoContext(ctx, "transfer: the interbank channel declined", "transfer", r.ID)
		out, ferr := s.finish(ctx, r.ID, PayoutResult{ID: r.ID, Status: channel.StatusFailed, FailCode: FailDeclined})
		if ferr != nil {
			s.log.ErrorContext(ctx, "transfer: voiding a declined transfer", "transfer", r.ID, "error", ferr)
			return r
		}
		return out
	default:
		s.log.WarnContext(ctx, "transfer: the interbank channel did not answer; asking again later", "transfer", r.ID, "error", err)
		return r
	}
}

// finish records the channel's final result of a PROCESSING transfer in
// one transaction: SUCCESS posts the hold; FAILED voids it (the money is
// back on the payer's balance) and gives the limit usage back. A transfer
// already final is returned as it is, so a result learnt twice is booked
// once.
func (s *Service) finish(ctx context.Context, id string, res PayoutResult) (Record, error) {
	var out Record
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockTransfer(ctx, id)
		if err != nil {
			return err
		}
		out = r
		if r.Status != StatusProcessing || !res.Status.Final() {
			return nil
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		t := ledger.Transfer{PendingID: LedgerID(r.ID), Code: LedgerCodeInterbank, Ref: r.ID}
		if res.Status == channel.StatusSuccess {
			t.ID, t.Flags, r.Status = LedgerPostID(r.ID), ledger.PostPending, StatusSuccess
		} else {
			t.ID, t.Flags, r.Status, r.FailCode = LedgerVoidID(r.ID), ledger.VoidPending, StatusFailed, channel.FailCode(res.FailCode)
			if err := s.cus.Release(ctx, tx, customer.Reservation{CustomerID: r.CustomerID, Method: customer.MethodTransfer,
				Amount: r.Amount.Amount, Day: r.AccountingDate}); err != nil {
				return err
			}
		}
		if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{t}); err != nil {
			return err
		}
		if r.ChannelNo == "" {
			r.ChannelNo = res.ChannelNo
		}
		r.NextQueryAt, r.FinishedAt, r.UpdatedAt = time.Time{}, now, now
		out = r
		return tx.UpdateTransfer(ctx, r)
	})
	if err == nil && out.Status.Final() {
		s.log.InfoContext(ctx, "transfer finished", "transfer", id, "status", out.Status, "fail_code", out.FailCode)
	}
	return out, err
}

// Reconcile asks the interbank channel about up to limit PROCESSING
// transfers whose next question is due, and books each final answer
// (finish). A payout the channel does not know is submitted again (same
// ID, so never paid twice); one it cannot answer is asked again later,
// each wait twice the last (Config.QueryInterval up to
// Config.MaxQueryInterval). Several processes may run it at once: a
// transfer is claimed by one of them per round. It returns how many
// transfers it asked about.
func (s *Service) Reconcile(ctx context.Context, limit int) (int, error) {
	if s.cfg.Payouts == nil {
		return 0, nil
	}
	if limit <= 0 {
		limit = 100
	}
	var due []Record
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		rs, err := tx.LockTransfersToQuery(ctx, now, limit)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, r := range rs {
			r.QueryCount++
			r.NextQueryAt, r.UpdatedAt = now.Add(s.backoff(r.QueryCount)), now
			if err := tx.UpdateTransfer(ctx, r); err != nil {
				return err
			}
			due = append(due, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range due {
		if err := ctx.Err(); err != nil {
			return len(due), err
		}
		res, err := s.cfg.Payouts.QueryPayout(ctx, r.ID)
		switch {
		case errors.Is(err, channel.ErrUnknownPayment):
			s.submit(ctx, r)
		case err != nil:
			s.log.WarnContext(ctx, "transfer: asking the interbank channel", "transfer", r.ID, "error", err)
		case res.Status.Final():
			if _, err := s.finish(ctx, r.ID, res); err != nil {
				s.log.ErrorContext(ctx, "transfer: booking the channel's answer", "transfer", r.ID, "error", err)
			}
		}
	}
	return len(due), nil
}

// backoff is the wait after the n-th unanswered question.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.QueryInterval
	for i := 1; i < n && d < s.cfg.MaxQueryInterval; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxQueryInterval)
}
