package main

import (
	"context"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/client"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/payout"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// crashItems is the size of the crash test's batch.
const crashItems = 1000

// TestPayoutCrashRecovery kills paygate (SIGKILL) in the middle of a
// payout batch and retries: a 1,000-item batch paying customers' accounts,
// own-bank cards and other banks' cards is submitted through the SDK to a
// `paygate serve` subprocess, which is killed as soon as the first items
// are paid (the other banks' items are then at best at the interbank
// switch, which forgets them with the process). The restarted server gets
// the same batch again (the merchant's retry), and finishes it. Then, on
// both stores: the retry is the same batch; every accepted item's hold was
// made once and posted or voided once; every item paid on us was credited
// once; the merchant's balance fell by exactly the batch's success amount;
// no hold is left pending; the ledger is balanced.
func TestPayoutCrashRecovery(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := storetest.URL(t, d)
			key := merchant.NewMasterKey()

			// The merchant, its funds and the recipients, in this process.
			db, err := store.Open(ctx, u, store.Options{})
			require.NoError(t, err)
			_, err = db.Migrate(ctx)
			require.NoError(t, err)
			kr, err := merchant.ParseKeyring(key)
			require.NoError(t, err)
			log := slog.New(slog.DiscardHandler)
			ms, err := newMerchantsWith(kr, db, log)
			require.NoError(t, err)
			pk, err := ms.EnsurePlatformKey(ctx)
			require.NoError(t, err)
			created, err := ms.Create(ctx, merchant.CreateRequest{Name: "Crash Shop", Sandbox: true})
			require.NoError(t, err)
			p, err := buildPlatform(Config{Calendar: paygate.DefaultCalendar()}, db, ms, prometheus.NewRegistry(), log, wiring{Keys: kr})
			require.NoError(t, err)
			mch := created.Merchant.ID
			const funds = 100_000_000
			fundMerchant(t, p.ledger, mch, funds)
			var phones, cards []string
			for i := range 5 {
				phone := fmt.Sprintf("1391234%04d", i+1)
				_, _, no := payoutRecipient(t, p.customers, phone, "张三", "110101199003071233", 100+i)
				phones, cards = append(phones, phone), append(cards, no)
			}
			req := client.CreatePayoutBatchRequest{OutBatchNo: "CRASH-1", Items: make([]client.PayoutItemRequest, crashItems)}
			for i := range req.Items {
				it := client.PayoutItemRequest{OutDetailNo: fmt.Sprintf("CRASH-1-%04d", i), Amount: int64(100 + i)}
				switch {
				case i%10 == 9: // another bank's card, through the interbank switch
					it.Recipient = client.PayoutRecipient{Type: "CARD", CardNumber: payoutOtherCard(i), Name: "王五"}
				case i%3 == 0:
					it.Recipient = client.PayoutRecipient{Type: "CARD", CardNumber: cards[i%len(cards)], Name: "张三"}
				default:
					it.Recipient = client.PayoutRecipient{Type: "ACCOUNT", Account: phones[i%len(phones)]}
				}
				req.Items[i] = it
			}
			require.NoError(t, db.Close())

			pub, err := signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
			require.NoError(t, err)
			env := map[string]string{"PAYGATE_DATABASE_URL": u, masterKeyEnv: key, "PAYGATE_LOG_FORMAT": "json", "PAYGATE_LOG_LEVEL": "warn"}
			serve := func() (*child, *client.Client) {
				c := startChild(t, "1", env, "serve", "--listen", "127.0.0.1:0", "--log-level", "info")
				addr, _ := c.waitLog(t, "listening")["addr"].(string)
				require.NotEmpty(t, addr)
				sdk, err := client.New(client.Config{BaseURL: "http://" + addr, MchID: mch, SerialNo: created.Key.SerialNo,
					PrivateKey: created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: pub}, APIv3Key: created.APIv3Key})
				require.NoError(t, err)
				return c, sdk
			}

			c, sdk := serve()
			b, err := sdk.CreatePayoutBatch(ctx, req)
			require.NoError(t, err)
			require.Equal(t, crashItems, b.AcceptedCount)
			deadline := time.Now().Add(failAfter)
			for {
				got, err := sdk.GetPayoutBatch(ctx, b.ID, client.PayoutPage{Limit: 1})
				require.NoError(t, err)
				if got.SuccessCount > 0 {
					require.Equal(t, "PROCESSING", got.Status, "killed in the middle of the batch")
					t.Logf("killing paygate with %d of %d items paid", got.SuccessCount, crashItems)
					break
				}
				require.True(t, time.Now().Before(deadline), "no item was ever paid")
			}
			require.NoError(t, c.cmd.Process.Kill()) // kill -9: no shutdown of any kind
			c.wait(t)

			c, sdk = serve()
			again, err := sdk.CreatePayoutBatch(ctx, req) // the merchant's retry
			require.NoError(t, err)
			require.Equal(t, b.ID, again.ID, "the retry is the same batch")
			var final client.PayoutBatch
			for {
				final, err = sdk.GetPayoutBatch(ctx, b.ID, client.PayoutPage{Limit: 1})
				require.NoError(t, err)
				if final.Status == "FINISHED" {
					break
				}
				require.True(t, time.Now().Before(deadline), "the batch never finished: %+v", final)
			}
			require.Equal(t, crashItems, final.SuccessCount, "every item was paid")
			require.Zero(t, final.FailCount)

			// The books, read directly.
			db, err = store.Open(ctx, u, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			type counts struct{ hold, post, void, pay int }
			perItem := map[string]*counts{}
			rows, err := db.SQL.QueryContext(ctx, `SELECT id, ref FROM ledger_transfers WHERE code IN ($1, $2)`, payout.LedgerCodeHold, payout.LedgerCodePay)
			require.NoError(t, err)
			for rows.Next() {
				var id, ref string
				require.NoError(t, rows.Scan(&id, &ref))
				c := perItem[ref]
				if c == nil {
					c = &counts{}
					perItem[ref] = c
				}
				switch id {
				case payout.HoldID(ref):
					c.hold++
				case payout.PostID(ref):
					c.post++
				case payout.VoidID(ref):
					c.void++
				case payout.PayID(ref):
					c.pay++
				default:
					t.Fatalf("unexpected payout transfer %s", id)
				}
			}
			require.NoError(t, rows.Err())
			rows.Close()
			require.Len(t, perItem, crashItems)
			var items []struct {
				id, kind, status string
				amount           int64
			}
			rows, err = db.SQL.QueryContext(ctx, `SELECT id, kind, status, amount FROM payout_items WHERE batch_id = $1`, b.ID)
			require.NoError(t, err)
			for rows.Next() {
				var it struct {
					id, kind, status string
					amount           int64
				}
				require.NoError(t, rows.Scan(&it.id, &it.kind, &it.status, &it.amount))
				items = append(items, it)
			}
			require.NoError(t, rows.Err())
			rows.Close()
			require.Len(t, items, crashItems)
			var paid int64
			for _, it := range items {
				c := perItem[it.id]
				require.NotNil(t, c, it.id)
				require.Equal(t, "SUCCESS", it.status, it.id)
				require.Equal(t, counts{hold: 1, post: 1, pay: map[bool]int{true: 0, false: 1}[it.kind == string(payout.KindOtherBank)]}, *c,
					"item %s (%s): one hold, resolved once, credited once", it.id, it.kind)
				paid += it.amount
			}
			require.Equal(t, final.SuccessAmount, paid)
			var pending int
			require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers WHERE hold_status = 'pending'`).Scan(&pending))
			require.Zero(t, pending, "no hold is left pending")
			l := ledger.New(db.Ledger(), paygate.SystemClock{}, paygate.DefaultCalendar())
			require.Equal(t, int64(funds)-final.SuccessAmount, available(t, l, mch), "the balance fell by exactly what was paid")
			bad, err := db.LedgerCheck(ctx)
			require.NoError(t, err)
			require.Empty(t, bad)
			tb, err := l.TrialBalance(ctx, paygate.Date("9999-12-31"))
			require.NoError(t, err)
			require.True(t, tb.Balanced())
			require.NoError(t, c.cmd.Process.Kill())
			c.wait(t)
		})
	}
}
