package payout

import (
	"context"
	"errors"
	"slices"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/customer"
	"paygate/ledger"
	"paygate/transfer"
)

// errJournal marks a chunk whose journal the ledger refused (a recipient's
// account closed since acceptance, say): Process then pays its items one
// by one, so the faulty one fails alone.
type errJournal struct{ err error }

func (e errJournal) Error() string { return "payout: journal refused: " + e.err.Error() }
func (e errJournal) Unwrap() error { return e.err }

// definite reports whether err is the ledger's (or a store's) definite
// refusal rather than a fault or a transient conflict.
func definite(err error) bool {
	var pe *paygate.Error
	return errors.As(err, &pe) && pe.Code != paygate.CodeInternal && pe.Code != paygate.CodeUnavailable &&
		!errors.Is(err, paygate.ErrRetry)
}

// Process pays up to limit PENDING items, oldest first, and returns how
// many it took. Items to customers' accounts and own-bank cards are paid in
// one transaction per call: each item's hold is posted to the payout
// clearing account and the recipient credited from it (SUCCESS), or, when
// the recipient can no longer receive, the hold is voided (FAILED,
// RECIPIENT_UNAVAILABLE). Items to other banks' cards become PROCESSING in
// the same transaction and are submitted to the interbank channel after it
// commits (Reconcile follows them). Batches whose last item became final
// are FINISHED, with their notification, in the same transaction.
//
// Several processes may run it at once: an item is claimed by one (rows
// are locked, others skipped), and its ledger ids make a repeat harmless.
func (s *Service) Process(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, ledger.MaxBatch/2) // two transfers per item in one journal
	var claimed, submit []Item
	err := s.store.InTx(ctx, func(tx Tx) error {
		items, err := tx.LockItemsToProcess(ctx, limit)
		if err != nil {
			return err
		}
		claimed = items
		submit, err = s.pay(ctx, tx, items)
		return err
	})
	var ej errJournal
	if errors.As(err, &ej) {
		s.log.WarnContext(ctx, "payout: a chunk's journal was refused; paying its items one by one", "items", len(claimed), "error", ej.err)
		submit = submit[:0]
		for _, it := range claimed {
			sub, err := s.processOne(ctx, it.ID)
			if err != nil {
				return 0, err
			}
			submit = append(submit, sub...)
		}
		err = nil
	}
	if err != nil {
		return 0, err
	}
	for _, it := range submit {
		if ctx.Err() != nil {
			break
		}
		s.submit(ctx, it)
	}
	return len(claimed), nil
}

// processOne pays one PENDING item in its own transaction; when the
// ledger refuses its journal, a second transaction voids its hold
// (FAILED, RECIPIENT_UNAVAILABLE).
func (s *Service) processOne(ctx context.Context, id string) ([]Item, error) {
	var submit []Item
	err := s.store.InTx(ctx, func(tx Tx) error {
		it, err := tx.LockItem(ctx, id)
		if err != nil || it.Status != StatusPending {
			return err
		}
		submit, err = s.pay(ctx, tx, []Item{it})
		return err
	})
	var ej errJournal
	if !errors.As(err, &ej) {
		return submit, err
	}
	s.log.WarnContext(ctx, "payout: the recipient's account refused the item; releasing its hold", "item", id, "error", ej.err)
	return nil, s.store.InTx(ctx, func(tx Tx) error {
		it, err := tx.LockItem(ctx, id)
		if err != nil || it.Status != StatusPending {
			return err
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		it.Status, it.FailReason, it.UpdateTime, it.FinishTime = StatusFailed, ReasonRecipientInactive, now, now
		if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{s.void(it)}); err != nil {
			return err
		}
		if err := tx.UpdateItems(ctx, []Item{it}); err != nil {
			return err
		}
		return s.settle(ctx, tx, []Item{it}, now)
	})
}

// pay books items (locked, PENDING) inside tx and returns those to submit
// to the interbank channel once tx commits.
func (s *Service) pay(ctx context.Context, tx Tx, items []Item) ([]Item, error) {
	if len(items) == 0 {
		return nil, nil
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	var journal []ledger.Transfer
	var final, submit []Item
	receives := map[[2]string]bool{} // recipient (customer, card) → may receive; a chunk pays few recipients many times
	for i := range items {
		it := &items[i]
		it.UpdateTime = now
		if it.Recipient.Kind == KindOtherBank {
			it.Status, it.NextQueryAt = StatusProcessing, now.Add(s.cfg.QueryInterval)
			submit = append(submit, *it)
			continue
		}
		key := [2]string{it.RecipientCustomerID, it.RecipientCardID}
		ok, seen := receives[key]
		if !seen {
			var err error
			if ok, err = s.canReceive(ctx, tx, *it); err != nil {
				return nil, err
			}
			receives[key] = ok
		}
		it.FinishTime = now
		if !ok {
			it.Status, it.FailReason = StatusFailed, ReasonRecipientInactive
			journal = append(journal, s.void(*it))
		} else {
			it.Status = StatusSuccess
			journal = append(journal, ledger.Transfer{ID: PostID(it.ID), PendingID: HoldID(it.ID), Flags: ledger.PostPending,
				Code: LedgerCodeHold, Ref: it.ID}, s.credit(*it))
		}
		final = append(final, *it)
	}
	if err := s.apply(ctx, tx, journal); err != nil {
		if definite(err) {
			return nil, errJournal{err}
		}
		return nil, err
	}
	if err := tx.UpdateItems(ctx, items); err != nil {
		return nil, err
	}
	return submit, s.settle(ctx, tx, final, now)
}

// canReceive checks again, inside the transaction, that an item's
// recipient (and card) may still be credited.
func (s *Service) canReceive(ctx context.Context, tx Tx, it Item) (bool, error) {
	c, err := tx.CustomerInTx(ctx, it.RecipientCustomerID)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		return false, nil
	}
	if err != nil || c.Status != customer.StatusActive {
		return false, err
	}
	if it.RecipientCardID == "" {
		return true, nil
	}
	card, err := tx.CardInTx(ctx, it.RecipientCardID)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		return false, nil
	}
	return err == nil && card.Status == customer.StatusActive, err
}

// credit is the posting from the payout clearing account to the recipient
// on us: their balance account or their own-bank card.
func (s *Service) credit(it Item) ledger.Transfer {
	to := s.cus.BalanceAccount(it.RecipientCustomerID)
	if it.Recipient.Kind == KindOwnCard {
		to = ledger.CardAccount(it.RecipientCardID, it.RecipientCustomerID, it.Currency).ID
	}
	return ledger.Transfer{ID: PayID(it.ID), DebitAccountID: Clearing(it.Currency).ID, CreditAccountID: to, Amount: it.Amount,
		Currency: it.Currency, Code: LedgerCodePay, Ref: it.ID}
}

// void releases an item's hold.
func (s *Service) void(it Item) ledger.Transfer {
	return ledger.Transfer{ID: VoidID(it.ID), PendingID: HoldID(it.ID), Flags: ledger.VoidPending, Code: LedgerCodeHold, Ref: it.ID}
}

// settle counts items that just became final into their batches (locked in
// id order, so concurrent workers never deadlock) and finishes the batches
// left with no open item, queuing their notification.
func (s *Service) settle(ctx context.Context, tx Tx, final []Item, now time.Time) error {
	if len(final) == 0 {
		return nil
	}
	byBatch := map[string][]Item{}
	for _, it := range final {
		byBatch[it.BatchID] = append(byBatch[it.BatchID], it)
	}
	ids := make([]string, 0, len(byBatch))
	for id := range byBatch {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b, err := tx.LockBatch(ctx, id)
		if err != nil {
			return err
		}
		for _, it := range byBatch[id] {
			if it.Status == StatusSuccess {
				b.SuccessCount++
				b.SuccessAmount += it.Amount
			} else {
				b.FailCount++
				b.FailAmount += it.Amount
			}
		}
		b.UpdateTime = now
		finished := b.Open() == 0 && b.Status == BatchProcessing
		if finished {
			b.Status, b.FinishTime = BatchFinished, now
		}
		if err := tx.UpdateBatch(ctx, b); err != nil {
			return err
		}
		if finished {
			s.log.InfoContext(ctx, "payout batch finished", "batch", b.ID, "success", b.SuccessCount, "failed", b.FailCount)
			if err := s.finishedEvent(ctx, tx, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// submit sends a PROCESSING item (committed) to the interbank channel,
// outside any transaction: the channel's number is recorded when it
// accepts; a refusal fails the item (its hold voided); an unknown outcome
// is left for Reconcile.
func (s *Service) submit(ctx context.Context, it Item) {
	pan, err := s.cfg.Keyring.Open(it.Card, panAAD(it.ID))
	if err != nil {
		s.log.ErrorContext(ctx, "payout: cannot unseal the card number", "item", it.ID, "error", err)
		return
	}
	acc, err := s.cfg.Payouts.Payout(ctx, transfer.PayoutRequest{ID: it.ID, CardNumber: string(pan), Amount: it.Amount,
		Currency: it.Currency, Scenario: it.Scenario})
	switch {
	case err == nil:
		if acc.ChannelNo != "" && it.ChannelNo == "" {
			if _, err := s.store.SetItemChannelNo(ctx, it.ID, acc.ChannelNo, s.clock.Now().UTC().Truncate(time.Microsecond)); err != nil {
				s.log.WarnContext(ctx, "payout: recording the channel's number", "item", it.ID, "error", err)
			}
		}
	case errors.Is(err, channel.ErrDeclined):
		s.log.InfoContext(ctx, "payout: the interbank channel declined", "item", it.ID)
		if err := s.finish(ctx, it.ID, transfer.PayoutResult{ID: it.ID, Status: channel.StatusFailed, FailCode: ReasonChannelDeclined}); err != nil {
			s.log.ErrorContext(ctx, "payout: voiding a declined item", "item", it.ID, "error", err)
		}
	default:
		s.log.WarnContext(ctx, "payout: the interbank channel did not answer; asking again later", "item", it.ID, "error", err)
	}
}

// finish books the channel's final result of a PROCESSING item in one
// transaction: SUCCESS posts the hold, FAILED voids it. An item already
// final is left as it is, so a result learnt twice is booked once.
func (s *Service) finish(ctx context.Context, id string, res transfer.PayoutResult) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		it, err := tx.LockItem(ctx, id)
		if err != nil {
			return err
		}
		if it.Status != StatusProcessing || !res.Status.Final() {
			return nil
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		t := s.void(it)
		if res.Status == channel.StatusSuccess {
			t = ledger.Transfer{ID: PostID(it.ID), PendingID: HoldID(it.ID), Flags: ledger.PostPending, Code: LedgerCodeHold, Ref: it.ID}
			it.Status = StatusSuccess
		} else {
			it.Status, it.FailReason = StatusFailed, channel.FailCode(res.FailCode)
		}
		if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{t}); err != nil {
			return err
		}
		if it.ChannelNo == "" {
			it.ChannelNo = res.ChannelNo
		}
		it.NextQueryAt, it.UpdateTime, it.FinishTime = time.Time{}, now, now
		if err := tx.UpdateItems(ctx, []Item{it}); err != nil {
			return err
		}
		return s.settle(ctx, tx, []Item{it}, now)
	})
}

// Reconcile asks the interbank channel about up to limit PROCESSING items
// whose next question is due and books each final answer. An item the
// channel does not know (never submitted because the process died, or
// forgotten by a restarted simulator) is submitted again with the same id,
// so it is never paid twice; one it cannot answer is asked again later,
// each wait twice the last (Config.QueryInterval up to
// Config.MaxQueryInterval). Several processes may run it at once. It
// returns how many items it asked about.
func (s *Service) Reconcile(ctx context.Context, limit int) (int, error) {
	if s.cfg.Payouts == nil {
		return 0, nil
	}
	if limit <= 0 {
		limit = 100
	}
	var due []Item
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		items, err := tx.LockItemsToQuery(ctx, now, limit)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, it := range items {
			it.QueryCount++
			it.NextQueryAt, it.UpdateTime = now.Add(s.backoff(it.QueryCount)), now
			due = append(due, it)
		}
		return tx.UpdateItems(ctx, due)
	})
	if err != nil {
		return 0, err
	}
	for _, it := range due {
		if err := ctx.Err(); err != nil {
			return len(due), err
		}
		res, err := s.cfg.Payouts.QueryPayout(ctx, it.ID)
		switch {
		case errors.Is(err, channel.ErrUnknownPayment):
			s.submit(ctx, it)
		case err != nil:
			s.log.WarnContext(ctx, "payout: asking the interbank channel", "item", it.ID, "error", err)
		case res.Status.Final():
			if err := s.finish(ctx, it.ID, res); err != nil {
				s.log.ErrorContext(ctx, "payout: booking the channel's answer", "item", it.ID, "error", err)
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
