package payout_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payout"
	"paygate/store"
	"paygate/store/storetest"
)

// TestBatchFlow submits a batch mixing every kind of recipient with bad
// lines, and follows it to FINISHED: bad lines are REJECTED alone, the
// good lines' total is held, customers' accounts and own-bank cards are
// credited by the worker, other banks' cards are paid (or declined)
// through the simulated interbank channel, and the batch's counts, the
// balances, the notification and the ledger agree.
func TestBatchFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1_000_000)
		req := payout.CreateBatchRequest{OutBatchNo: "B-0001", Remark: "November rewards", NotifyURL: "https://shop.example/notify",
			Items: []payout.ItemRequest{
				line("D-1", 10_000, account(alicePhone, aliceName)),
				line("D-2", 20_000, card(f.bobCardNo, bobName)),
				line("D-3", 30_000, card(otherCard, "王五")),
				line("D-4", 40_000, card(customer.SandboxDeclinedCard, "赵六")),
				line("D-5", 0, account(alicePhone, "")),
				line("D-6", 100, card(otherCard[:15]+"0", "王五")),
				line("D-7", 100, account("13000000000", "")),
				line("D-8", 100, account(carolPhone, "")),
				line("D-9", 100, card(f.bobCardNo, "王五")),
				line("D-1", 100, account(alicePhone, "")),
				line("D-11", 100, card(pan(customer.SandboxOwnBIN, 99), "王五")),
				line("D-12", 100, card(otherCard, "")),
				line("D-13", payout.DefaultMaxItem+1, account(alicePhone, "")),
				line("D-14", 100, account("12345", "")),
				// The same last character as 李四's: the mask would match.
				line("D-15", 100, card(f.bobCardNo, "王四")),
				line("D-16", 100, account(alicePhone, "李三")),
			}}
		p, replay, err := f.svc.Submit(f.ctx, f.mch, req)
		require.NoError(t, err)
		require.False(t, replay)
		require.Equal(t, int64(1), f.kicks.Load(), "the worker is kicked")
		require.Equal(t, payout.BatchProcessing, p.Status)
		require.Equal(t, 16, p.TotalCount)
		require.Equal(t, 4, p.AcceptedCount)
		require.Equal(t, 12, p.RejectedCount)
		require.Equal(t, int64(100_000), p.AcceptedAmount)
		require.Len(t, p.Items, 16)
		want := []struct {
			status payout.Status
			reason string
			kind   payout.Kind
		}{
			{payout.StatusPending, "", payout.KindAccount},
			{payout.StatusPending, "", payout.KindOwnCard},
			{payout.StatusPending, "", payout.KindOtherBank},
			{payout.StatusPending, "", payout.KindOtherBank},
			{payout.StatusRejected, payout.ReasonAmountNotPositive, ""},
			{payout.StatusRejected, payout.ReasonInvalidCardNumber, ""},
			{payout.StatusRejected, payout.ReasonRecipientNotFound, ""},
			{payout.StatusRejected, payout.ReasonRecipientInactive, ""},
			{payout.StatusRejected, payout.ReasonNameMismatch, ""},
			{payout.StatusRejected, payout.ReasonDetailNoRepeated, ""},
			{payout.StatusRejected, payout.ReasonRecipientNotFound, ""},
			{payout.StatusRejected, payout.ReasonNameRequired, ""},
			{payout.StatusRejected, payout.ReasonAmountTooLarge, ""},
			{payout.StatusRejected, payout.ReasonInvalidAccount, ""},
			{payout.StatusRejected, payout.ReasonNameMismatch, ""},
			{payout.StatusRejected, payout.ReasonNameMismatch, ""},
		}
		for i, w := range want {
			it := p.Items[i]
			require.Equal(t, i+1, it.Seq)
			require.Equal(t, w.status, it.Status, "line %d", i+1)
			require.Equal(t, w.reason, it.FailReason, "line %d", i+1)
			require.Equal(t, w.kind, it.Recipient.Kind, "line %d", i+1)
		}
		require.Equal(t, "139****5678", p.Items[0].Recipient.Masked)
		require.Equal(t, "*三", p.Items[0].Recipient.Name)
		require.Equal(t, "628888******0013", p.Items[1].Recipient.Masked[:6]+"******"+p.Items[1].Recipient.Masked[len(p.Items[1].Recipient.Masked)-4:])
		b, _ := json.Marshal(p)
		require.NotContains(t, string(b), otherCard, "card numbers never leave masked")
		require.NotContains(t, string(b), f.bobCardNo)
		require.NotContains(t, f.logs.String(), otherCard)
		require.Equal(t, int64(900_000), f.available(t), "the accepted total is held")

		// The worker pays the items on us at once; other banks' cards wait
		// for the channel.
		n, err := f.svc.Process(f.ctx, 100)
		require.NoError(t, err)
		require.Equal(t, 4, n)
		got, err := f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, payout.StatusSuccess, got.Items[0].Status)
		require.Equal(t, payout.StatusSuccess, got.Items[1].Status)
		require.Equal(t, payout.StatusProcessing, got.Items[2].Status)
		require.Equal(t, payout.StatusProcessing, got.Items[3].Status)
		require.NotEmpty(t, got.Items[2].ChannelNo)
		require.Equal(t, 2, got.SuccessCount)
		require.Equal(t, payout.BatchProcessing, got.Status)
		bal, err := f.cus.Balance(f.ctx, f.alice.ID)
		require.NoError(t, err)
		require.Equal(t, int64(10_000), bal.Amount)
		cb, err := f.cus.CardBalance(f.ctx, f.bob.ID, f.bobCard.ID)
		require.NoError(t, err)
		require.Equal(t, int64(20_000), cb.Amount)
		h, err := f.cus.History(f.ctx, f.alice.ID, customer.HistoryQuery{})
		require.NoError(t, err)
		require.Len(t, h.Entries, 1, "the payout is in alice's history")
		require.Equal(t, customer.DirectionIn, h.Entries[0].Direction)
		require.Equal(t, p.Items[0].ID, h.Entries[0].Ref)

		f.drain(t)
		got, err = f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, payout.BatchFinished, got.Status)
		require.False(t, got.FinishTime.IsZero())
		require.Equal(t, payout.StatusSuccess, got.Items[2].Status)
		require.Equal(t, payout.StatusFailed, got.Items[3].Status)
		require.Equal(t, "SIM_PAYOUT_FAILED", got.Items[3].FailReason)
		require.Equal(t, 3, got.SuccessCount)
		require.Equal(t, int64(60_000), got.SuccessAmount)
		require.Equal(t, 1, got.FailCount)
		require.Equal(t, int64(40_000), got.FailAmount)
		require.Equal(t, int64(940_000), f.available(t), "the declined item's hold came back")
		ib := f.account(t, ledger.ChannelClearing("interbank", "CNY").ID)
		require.Equal(t, int64(-30_000), ib.Net(ib.Normal), "we owe the interbank channel what it paid to the other bank's card")
		cl := f.account(t, payout.Clearing("CNY").ID)
		require.Zero(t, cl.Net(cl.Normal)+cl.DebitsPending+cl.CreditsPending, "the clearing account nets to zero")

		// One notification, with the batch's final counts.
		var payload string
		require.NoError(t, db.SQL.QueryRow(`SELECT payload FROM notify_events WHERE merchant_id = $1 AND event_type = $2`,
			f.mch.ID, payout.EventBatchFinished).Scan(&payload))
		var nb payout.Batch
		require.NoError(t, json.Unmarshal([]byte(payload), &nb))
		require.Equal(t, p.ID, nb.ID)
		require.Equal(t, payout.BatchFinished, nb.Status)
		require.Equal(t, 3, nb.SuccessCount)

		d, err := f.svc.GetDetail(f.ctx, f.mch.ID, "D-3")
		require.NoError(t, err)
		require.Equal(t, payout.StatusSuccess, d.Status)
		require.Equal(t, "B-0001", d.OutBatchNo)
		_, err = f.svc.GetDetail(f.ctx, "mch_other", "D-3")
		require.True(t, paygate.HasCode(err, paygate.CodeNotFound), "another merchant's item is not found")
		_, err = f.svc.GetBatch(f.ctx, "mch_other", p.ID, "", 0)
		require.True(t, paygate.HasCode(err, paygate.CodeNotFound))
		byNo, err := f.svc.GetBatchByOutBatchNo(f.ctx, f.mch.ID, "B-0001", "", 5)
		require.NoError(t, err)
		require.Len(t, byNo.Items, 5)
		require.Equal(t, "5", byNo.NextCursor)
		next, err := f.svc.GetBatchByOutBatchNo(f.ctx, f.mch.ID, "B-0001", byNo.NextCursor, 10)
		require.NoError(t, err)
		require.Len(t, next.Items, 10)
		require.Equal(t, 6, next.Items[0].Seq)
		require.Equal(t, "15", next.NextCursor)
		last, err := f.svc.GetBatchByOutBatchNo(f.ctx, f.mch.ID, "B-0001", next.NextCursor, 10)
		require.NoError(t, err)
		require.Len(t, last.Items, 1)
		require.Equal(t, 16, last.Items[0].Seq)
		require.Empty(t, last.NextCursor)
		_, err = f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "x", 0)
		require.True(t, paygate.HasCode(err, paygate.CodeInvalidArgument))
		_, err = f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "", MaxPagePlusOne)
		require.True(t, paygate.HasCode(err, paygate.CodeInvalidArgument))

		// Each accepted item's hold was resolved exactly once.
		for _, it := range got.Items[:4] {
			require.Equal(t, 2, f.count(t, `SELECT COUNT(*) FROM ledger_transfers WHERE ref = $1 AND code = $2`, it.ID, payout.LedgerCodeHold), it.OutDetailNo)
		}
		f.balanced(t)
	})
}

// MaxPagePlusOne is one item more than a page may hold.
const MaxPagePlusOne = payout.MaxPage + 1

// TestBatchIdempotency: the same out_batch_no with the same body is the
// same batch; with another body it is refused; an out_detail_no an
// earlier batch accepted is rejected in a later one, alone.
func TestBatchIdempotency(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 100_000)
		req := payout.CreateBatchRequest{OutBatchNo: "B-1", Items: []payout.ItemRequest{line("D-1", 1_000, account(alicePhone, ""))}}
		p, replay, err := f.svc.Submit(f.ctx, f.mch, req)
		require.NoError(t, err)
		require.False(t, replay)
		again, replay, err := f.svc.Submit(f.ctx, f.mch, req)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, p.ID, again.ID)
		require.Equal(t, int64(99_000), f.available(t), "held once")

		diff := req
		diff.Items = []payout.ItemRequest{line("D-1", 1_001, account(alicePhone, ""))}
		_, _, err = f.svc.Submit(f.ctx, f.mch, diff)
		require.True(t, paygate.HasCode(err, paygate.CodeOutBatchNoUsed), "%v", err)

		later, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: "B-2", Items: []payout.ItemRequest{
			line("D-1", 500, account(alicePhone, "")), line("D-2", 500, account(alicePhone, ""))}})
		require.NoError(t, err)
		require.Equal(t, payout.StatusRejected, later.Items[0].Status)
		require.Equal(t, payout.ReasonDetailNoUsed, later.Items[0].FailReason)
		require.Equal(t, payout.StatusPending, later.Items[1].Status)

		// A batch whose every line is bad is finished at once.
		bad, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: "B-3", NotifyURL: "https://shop.example/n",
			Items: []payout.ItemRequest{line("D-9", -5, account(alicePhone, ""))}})
		require.NoError(t, err)
		require.Equal(t, payout.BatchFinished, bad.Status)
		require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM notify_events WHERE event_type = $1`, payout.EventBatchFinished))
		require.Equal(t, int64(98_500), f.available(t))
		f.balanced(t)
	})
}

// TestBatchRefusals: a short balance refuses the whole batch; a malformed
// request is refused with the field at fault; neither records anything.
func TestBatchRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 10_000)
		_, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: "B-1", Items: []payout.ItemRequest{
			line("D-1", 6_000, account(alicePhone, "")), line("D-2", 6_000, card(f.bobCardNo, bobName)),
			line("D-3", 0, account(alicePhone, ""))}})
		require.True(t, paygate.HasCode(err, paygate.CodeInsufficientFunds), "%v", err)
		var pe *paygate.Error
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "items", pe.Field)

		good := func() payout.CreateBatchRequest {
			return payout.CreateBatchRequest{OutBatchNo: "B-2", Items: []payout.ItemRequest{line("D-1", 100, account(alicePhone, ""))}}
		}
		many := good()
		for i := range payout.MaxItems {
			many.Items = append(many.Items, line(fmt.Sprintf("M-%d", i), 1, account(alicePhone, "")))
		}
		cases := []struct {
			name  string
			edit  func(*payout.CreateBatchRequest)
			code  paygate.Code
			field string
		}{
			{"no out_batch_no", func(r *payout.CreateBatchRequest) { r.OutBatchNo = "" }, paygate.CodeInvalidArgument, "out_batch_no"},
			{"bad out_batch_no", func(r *payout.CreateBatchRequest) { r.OutBatchNo = "B 2" }, paygate.CodeInvalidArgument, "out_batch_no"},
			{"long out_batch_no", func(r *payout.CreateBatchRequest) { r.OutBatchNo = strings.Repeat("B", 65) }, paygate.CodeInvalidArgument, "out_batch_no"},
			{"unknown currency", func(r *payout.CreateBatchRequest) { r.Currency = "ABC" }, paygate.CodeUnknownCurrency, "currency"},
			{"no items", func(r *payout.CreateBatchRequest) { r.Items = nil }, paygate.CodeInvalidArgument, "items"},
			{"too many items", func(r *payout.CreateBatchRequest) { *r = many }, paygate.CodeInvalidArgument, "items"},
			{"bad detail no", func(r *payout.CreateBatchRequest) { r.Items[0].OutDetailNo = "D/1" }, paygate.CodeInvalidArgument, "items[0].out_detail_no"},
			{"bad recipient type", func(r *payout.CreateBatchRequest) { r.Items[0].Recipient.Type = "WALLET" }, paygate.CodeInvalidArgument, "items[0].recipient.type"},
			{"long remark", func(r *payout.CreateBatchRequest) { r.Items[0].Remark = strings.Repeat("备", 65) }, paygate.CodeInvalidArgument, "items[0].remark"},
			{"control remark", func(r *payout.CreateBatchRequest) { r.Remark = "a\x00b" }, paygate.CodeInvalidArgument, "remark"},
			{"bad notify_url", func(r *payout.CreateBatchRequest) { r.NotifyURL = "ftp://x" }, paygate.CodeInvalidArgument, "notify_url"},
		}
		for _, c := range cases {
			r := good()
			c.edit(&r)
			_, _, err := f.svc.Submit(f.ctx, f.mch, r)
			require.True(t, paygate.HasCode(err, c.code), "%s: %v", c.name, err)
			require.ErrorAs(t, err, &pe, c.name)
			require.Equal(t, c.field, pe.Field, c.name)
		}
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payout_batches`))
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payout_items`))
		require.Equal(t, int64(10_000), f.available(t))
		f.balanced(t)
	})
}

// TestRecipientFrozenBeforePayment: a recipient frozen between acceptance
// and payment fails its item alone, and its hold comes back.
func TestRecipientFrozenBeforePayment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 100_000)
		p, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: "B-1", Items: []payout.ItemRequest{
			line("D-1", 1_000, account(alicePhone, "")), line("D-2", 2_000, card(f.bobCardNo, bobName))}})
		require.NoError(t, err)
		_, err = f.cus.SetCardStatus(f.ctx, f.bob.ID, f.bobCard.ID, customer.StatusFrozen)
		require.NoError(t, err)
		f.drain(t)
		got, err := f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, payout.BatchFinished, got.Status)
		require.Equal(t, payout.StatusSuccess, got.Items[0].Status)
		require.Equal(t, payout.StatusFailed, got.Items[1].Status)
		require.Equal(t, payout.ReasonRecipientInactive, got.Items[1].FailReason)
		require.Equal(t, int64(99_000), f.available(t))
		f.balanced(t)
	})
}

// TestClosedAccountFailsAlone: a recipient's ledger account closed after
// acceptance makes the chunk's journal fail; the worker then pays the
// items one by one and fails only that one.
func TestClosedAccountFailsAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 100_000)
		p, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: "B-1", Items: []payout.ItemRequest{
			line("D-1", 1_000, account(alicePhone, "")), line("D-2", 2_000, card(f.bobCardNo, bobName))}})
		require.NoError(t, err)
		require.NoError(t, f.led.CloseAccount(f.ctx, f.bobCard.AccountID))
		n, err := f.svc.Process(f.ctx, 100)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		got, err := f.svc.GetBatch(f.ctx, f.mch.ID, p.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, payout.StatusSuccess, got.Items[0].Status)
		require.Equal(t, payout.StatusFailed, got.Items[1].Status)
		require.Equal(t, payout.BatchFinished, got.Status)
		require.Equal(t, int64(99_000), f.available(t))
		f.balanced(t)
	})
}

// TestSubmitRaces submits the same batch from many goroutines (one batch,
// held once), and different batches sharing an out_detail_no (exactly one
// accepts it).
func TestSubmitRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1_000_000)
		const n = 8
		req := payout.CreateBatchRequest{OutBatchNo: "SAME", Items: []payout.ItemRequest{
			line("S-1", 1_000, account(alicePhone, "")), line("S-2", 1_000, card(f.bobCardNo, bobName))}}
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p, _, err := f.svc.Submit(f.ctx, f.mch, req)
				if err == nil {
					ids[i] = p.ID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		require.NotEmpty(t, ids[0])
		require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM payout_batches`))
		require.Equal(t, int64(998_000), f.available(t))

		accepted := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				p, _, err := f.svc.Submit(f.ctx, f.mch, payout.CreateBatchRequest{OutBatchNo: fmt.Sprintf("RACE-%d", i),
					Items: []payout.ItemRequest{line("SHARED", 100, account(alicePhone, "")), line(fmt.Sprintf("OWN-%d", i), 100, account(alicePhone, ""))}})
				if err == nil {
					accepted[i] = p.Items[0].Status == payout.StatusPending
					if !accepted[i] && p.Items[0].FailReason != payout.ReasonDetailNoUsed {
						accepted[i] = true // counted twice: the assertion below fails
					}
				}
			})
		}
		wg.Wait()
		took := 0
		for _, a := range accepted {
			if a {
				took++
			}
		}
		require.Equal(t, 1, took, "exactly one batch accepted the shared out_detail_no")
		require.Equal(t, 1+n, f.count(t, `SELECT COUNT(*) FROM payout_batches`))
		require.Equal(t, int64(998_000-100-n*100), f.available(t))
		f.drain(t)
		f.balanced(t)
	})
}
