package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/transfer"
)

func transferRecord(id, from, requestID, to string, at time.Time) transfer.Record {
	r := transfer.Record{RequestHash: "hash-" + requestID}
	r.ID, r.CustomerID, r.RequestID, r.Kind = id, from, requestID, transfer.KindCustomer
	r.RecipientCustomerID, r.Recipient, r.Sender = to, "139****0002", "139****0001"
	r.Amount, r.Memo, r.Status, r.AccountingDate = paygate.Money{Amount: 1234, Currency: "CNY"}, "rent 房租", transfer.StatusSuccess, "2026-11-22"
	r.CreatedAt, r.UpdatedAt, r.FinishedAt = at, at, at
	return r
}

func TestTransferStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
			for _, r := range []customer.Record{customerRecord("cus_a", "13900000001", ""), customerRecord("cus_b", "13900000002", ""),
				customerRecord("cus_c", "13900000003", "")} {
				if _, err := tx.InsertCustomer(ctx, r); err != nil {
					return err
				}
			}
			return nil
		}))
		s := db.Transfers()
		t0 := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

		// a → b (customer), then an interbank transfer of a with every
		// optional column set.
		first := transferRecord("trf_0001", "cus_a", "req-1", "cus_b", t0)
		ib := transferRecord("trf_0002", "cus_a", "req-2", "", t0.Add(time.Second))
		ib.Kind, ib.Status, ib.FinishedAt, ib.Recipient, ib.RecipientName = transfer.KindOtherBank, transfer.StatusProcessing, time.Time{}, "629999******0066", ""
		ib.Card, ib.Scenario, ib.Channel, ib.NextQueryAt = sealing.Sealed{KeyID: "k1", Ciphertext: "c2VhbGVk"}, "fail", "interbank", t0.Add(10*time.Second)
		card := transferRecord("trf_0003", "cus_c", "req-1", "cus_a", t0.Add(2*time.Second))
		card.Kind, card.RecipientCardID, card.RecipientName, card.SenderName = transfer.KindOwnCard, "card_x", "*明", "*四"
		require.NoError(t, s.InTx(ctx, func(tx transfer.Tx) error {
			for _, r := range []transfer.Record{first, ib, card} {
				ok, err := tx.InsertTransfer(ctx, r)
				require.NoError(t, err)
				require.True(t, ok, r.ID)
			}
			// The same payer's request id again, or the same id: not inserted.
			for _, dup := range []transfer.Record{transferRecord("trf_0009", "cus_a", "req-1", "cus_b", t0), transferRecord("trf_0001", "cus_b", "req-9", "cus_a", t0)} {
				ok, err := tx.InsertTransfer(ctx, dup)
				require.NoError(t, err)
				require.False(t, ok, dup.ID)
			}
			return nil
		}))
		for _, want := range []transfer.Record{first, ib, card} {
			got, err := s.Transfer(ctx, want.ID)
			require.NoError(t, err)
			require.Equal(t, want, got)
			got, err = s.TransferByRequest(ctx, want.CustomerID, want.RequestID)
			require.NoError(t, err)
			require.Equal(t, want.ID, got.ID)
		}
		_, err := s.Transfer(ctx, "trf_none")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = s.TransferByRequest(ctx, "cus_b", "req-1")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// Sent and received, newest first, paginated by id.
		ids := func(rs []transfer.Record) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		rs, err := s.CustomerTransfers(ctx, "cus_a", "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"trf_0003", "trf_0002", "trf_0001"}, ids(rs))
		rs, err = s.CustomerTransfers(ctx, "cus_a", "", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"trf_0003", "trf_0002"}, ids(rs))
		rs, err = s.CustomerTransfers(ctx, "cus_a", "trf_0002", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"trf_0001"}, ids(rs))
		rs, err = s.CustomerTransfers(ctx, "cus_b", "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"trf_0001"}, ids(rs))
		rs, err = s.CustomerTransfers(ctx, "cus_nobody", "", 10)
		require.NoError(t, err)
		require.Empty(t, rs)

		// The channel's number is set once, on a PROCESSING transfer only.
		ok, err := s.SetChannelNo(ctx, ib.ID, "simp_1", t0.Add(3*time.Second))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.SetChannelNo(ctx, ib.ID, "simp_2", t0.Add(3*time.Second))
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = s.SetChannelNo(ctx, first.ID, "simp_3", t0)
		require.NoError(t, err)
		require.False(t, ok)

		// Due transfers: PROCESSING and due only; updates round-trip.
		require.NoError(t, s.InTx(ctx, func(tx transfer.Tx) error {
			due, err := tx.LockTransfersToQuery(ctx, t0.Add(9*time.Second), 10)
			require.NoError(t, err)
			require.Empty(t, due)
			due, err = tx.LockTransfersToQuery(ctx, t0.Add(10*time.Second), 10)
			require.NoError(t, err)
			require.Equal(t, []string{ib.ID}, ids(due))
			r, err := tx.LockTransfer(ctx, ib.ID)
			require.NoError(t, err)
			require.Equal(t, "simp_1", r.ChannelNo)
			r.Status, r.FailCode, r.QueryCount, r.NextQueryAt = transfer.StatusFailed, "SIM_PAYOUT_FAILED", 2, time.Time{}
			r.FinishedAt, r.UpdatedAt = t0.Add(time.Minute), t0.Add(time.Minute)
			require.NoError(t, tx.UpdateTransfer(ctx, r))
			got, err := tx.LockTransfer(ctx, ib.ID)
			require.NoError(t, err)
			require.Equal(t, r, got)
			due, err = tx.LockTransfersToQuery(ctx, t0.Add(time.Hour), 10)
			require.NoError(t, err)
			require.Empty(t, due)
			_, err = tx.LockTransfer(ctx, "trf_none")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			r.ID = "trf_none"
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(tx.UpdateTransfer(ctx, r)))
			return nil
		}))

		// Pages past many rows keep the order across both indexes.
		require.NoError(t, s.InTx(ctx, func(tx transfer.Tx) error {
			for i := 10; i < 40; i++ {
				from, to := "cus_b", "cus_c"
				if i%3 == 0 {
					from, to = "cus_c", "cus_b"
				}
				if _, err := tx.InsertTransfer(ctx, transferRecord(fmt.Sprintf("trf_%04d", i), from, fmt.Sprintf("r%d", i), to, t0)); err != nil {
					return err
				}
			}
			return nil
		}))
		var all []string
		before := ""
		for {
			rs, err := s.CustomerTransfers(ctx, "cus_b", before, 7)
			require.NoError(t, err)
			all = append(all, ids(rs)...)
			if len(rs) < 7 {
				break
			}
			before = rs[len(rs)-1].ID
		}
		require.Len(t, all, 31)
		require.Equal(t, "trf_0039", all[0])
		require.Equal(t, "trf_0001", all[30])
	})
}
