package main

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/client"
	"paygate/customer"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/store"
	"paygate/store/storetest"
)

// fundMerchant credits a merchant's available balance from the sandbox
// funding account (as settlement would).
func fundMerchant(t testing.TB, l *ledger.Ledger, mchID string, amount int64) {
	t.Helper()
	ctx := context.Background()
	_, err := l.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding("CNY"), ledger.MerchantSettled(mchID, "CNY")})
	require.NoError(t, err)
	_, err = l.CreateTransfers(ctx, []ledger.Transfer{{ID: paygate.NewID(paygate.PrefixTransfer), DebitAccountID: ledger.SandboxFunding("CNY").ID,
		CreditAccountID: ledger.MerchantSettled(mchID, "CNY").ID, Amount: amount}})
	require.NoError(t, err)
}

// available is the merchant's available balance.
func available(t testing.TB, l *ledger.Ledger, mchID string) int64 {
	t.Helper()
	as, err := l.LookupAccounts(context.Background(), []string{ledger.MerchantSettled(mchID, "CNY").ID})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Available(as[0].Normal)
}

// payoutRecipients registers a verified customer with the phone and gives
// them an own-bank debit card; it returns the customer and the card number.
func payoutRecipient(t testing.TB, cus *customer.Service, phone, name, idNumber string, seq int) (customer.Customer, customer.Card, string) {
	t.Helper()
	ctx := context.Background()
	c, err := cus.Register(ctx, customer.RegisterRequest{Phone: phone, Password: "Correct-horse-9"})
	require.NoError(t, err)
	c, err = cus.VerifyRealName(ctx, c.ID, name, idNumber, phone)
	require.NoError(t, err)
	body := customer.SandboxOwnBIN + fmt.Sprintf("%09d", seq)
	d, _ := customer.LuhnDigit(body)
	number := body + string(d)
	card, err := cus.AddCard(ctx, customer.AddCardRequest{CustomerID: c.ID, Number: number,
		Holder: customer.Holder{Name: name, IDNumber: idNumber, Phone: phone}})
	require.NoError(t, err)
	return c, card, number
}

// payoutOtherCard is another bank's card number the sandbox pays.
func payoutOtherCard(seq int) string {
	body := "621700" + fmt.Sprintf("%09d", seq)
	d, _ := customer.LuhnDigit(body)
	return body + string(d)
}

// TestEndToEndPayout drives a payout batch over HTTP with the Go SDK on
// both stores: a batch paying a customer's account, an own-bank card,
// another bank's card and a card its bank declines, plus a bad line →
// the bad line REJECTED alone, the rest held → a replay, a reused number →
// the worker and the interbank switch finish it → PAYOUT_BATCH.FINISHED
// verified and decrypted by the SDK → queries, another merchant's 404 →
// the balances moved by exactly the paid items, the ledger balanced.
func TestEndToEndPayout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		mch := e.created.Merchant.ID
		fundMerchant(t, e.p.ledger, mch, 1_000_000)
		alice, _, _ := payoutRecipient(t, e.p.customers, "13912340001", "张三", "110101199003071233", 1)
		bob, bobCard, bobNo := payoutRecipient(t, e.p.customers, "13912340002", "李四", "310104198511204567", 2)

		req := client.CreatePayoutBatchRequest{OutBatchNo: "E2E-P-0001", Remark: "November rewards", NotifyURL: e.hook.URL + "/paygate/notify",
			Items: []client.PayoutItemRequest{
				{OutDetailNo: "E2E-P-1", Amount: 10_000, Recipient: client.PayoutRecipient{Type: "ACCOUNT", Account: "13912340001", Name: "张三"}},
				{OutDetailNo: "E2E-P-2", Amount: 20_000, Recipient: client.PayoutRecipient{Type: "CARD", CardNumber: bobNo, Name: "李四"}, Remark: "bonus"},
				{OutDetailNo: "E2E-P-3", Amount: 30_000, Recipient: client.PayoutRecipient{Type: "CARD", CardNumber: payoutOtherCard(3), Name: "王五"}},
				{OutDetailNo: "E2E-P-4", Amount: 40_000, Recipient: client.PayoutRecipient{Type: "CARD", CardNumber: customer.SandboxDeclinedCard, Name: "赵六"}},
				{OutDetailNo: "E2E-P-5", Amount: -1, Recipient: client.PayoutRecipient{Type: "ACCOUNT", Account: "13912340001"}},
			}}
		b, err := e.client.CreatePayoutBatch(ctx, req)
		require.NoError(t, err)
		require.Equal(t, 5, b.TotalCount)
		require.Equal(t, 4, b.AcceptedCount)
		require.Equal(t, int64(100_000), b.AcceptedAmount)
		require.Equal(t, "REJECTED", b.Items[4].Status)
		require.Equal(t, "AMOUNT_NOT_POSITIVE", b.Items[4].FailReason)
		require.Equal(t, "OTHER_BANK_CARD", b.Items[2].Recipient.Kind)
		require.NotContains(t, b.Items[2].Recipient.Masked, payoutOtherCard(3)[6:12], "card numbers only masked")
		status, err := e.client.Do(ctx, "POST", "/v1/payouts/batches", req, nil)
		require.NoError(t, err)
		require.Equal(t, 200, status, "an identical replay answers 200")
		diff := req
		diff.Items = append([]client.PayoutItemRequest(nil), req.Items...)
		diff.Items[0].Amount++
		_, err = e.client.CreatePayoutBatch(ctx, diff)
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "OUT_BATCH_NO_USED", ae.Code)

		var done client.PayoutBatch
		n, err := e.client.ParseNotification(e.notification(t, 1), &done)
		require.NoError(t, err, "the SDK verifies and decrypts the batch notification")
		require.Equal(t, "PAYOUT_BATCH.FINISHED", n.EventType)
		require.Equal(t, "payout_batch", n.Resource.OriginalType)
		require.Equal(t, b.ID, done.ID)
		require.Equal(t, "FINISHED", done.Status)
		require.Equal(t, 3, done.SuccessCount)
		require.Equal(t, int64(60_000), done.SuccessAmount)
		require.Equal(t, 1, done.FailCount)

		got, err := e.client.GetPayoutBatchByOutBatchNo(ctx, "E2E-P-0001", client.PayoutPage{Limit: 2})
		require.NoError(t, err)
		require.Len(t, got.Items, 2)
		require.Equal(t, "SUCCESS", got.Items[0].Status)
		require.Equal(t, "SUCCESS", got.Items[1].Status)
		rest, err := e.client.GetPayoutBatch(ctx, b.ID, client.PayoutPage{Cursor: got.NextCursor})
		require.NoError(t, err)
		require.Len(t, rest.Items, 3)
		require.Equal(t, "SUCCESS", rest.Items[0].Status)
		require.NotEmpty(t, rest.Items[0].ChannelNo)
		require.Equal(t, "FAILED", rest.Items[1].Status)
		d, err := e.client.GetPayoutDetail(ctx, "E2E-P-2")
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", d.Status)
		require.Equal(t, "bonus", d.Remark)

		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)
		_, err = oc.GetPayoutBatch(ctx, b.ID, client.PayoutPage{})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status, "another merchant's batch is not found")
		_, err = oc.GetPayoutDetail(ctx, "E2E-P-2")
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status)
		_, err = oc.CreatePayoutBatch(ctx, req)
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 422, ae.Status, "the other merchant has no balance")
		require.Equal(t, "INSUFFICIENT_FUNDS", ae.Code)

		require.Equal(t, int64(940_000), available(t, e.p.ledger, mch))
		bal, err := e.p.customers.Balance(ctx, alice.ID)
		require.NoError(t, err)
		require.Equal(t, int64(10_000), bal.Amount)
		cb, err := e.p.customers.CardBalance(ctx, bob.ID, bobCard.ID)
		require.NoError(t, err)
		require.Equal(t, int64(20_000), cb.Amount)
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}

// TestEndToEndPayoutBadInput: malformed bodies, wrong types, overflowing
// amounts, an unknown currency, an oversized body, too many items and a
// short balance are refused over HTTP with the error shape and record
// nothing; zero and negative amounts reject their line alone.
func TestEndToEndPayoutBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		fundMerchant(t, e.p.ledger, e.created.Merchant.ID, 1_000)
		item := `{"out_detail_no":"BI-1","amount":100,"recipient":{"type":"CARD","card_number":"` + payoutOtherCard(9) + `","name":"王五"}}`
		good := `{"out_batch_no":"BI-B1","items":[` + item + `]}`
		many := `{"out_batch_no":"BI-B2","items":[` + strings.TrimSuffix(strings.Repeat(item+",", 1001), ",") + `]}`
		cases := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"malformed", "POST", "/v1/payouts/batches", `{"out_batch_no":`, 400, "INVALID_ARGUMENT", ""},
			{"not an object", "POST", "/v1/payouts/batches", `[]`, 400, "INVALID_ARGUMENT", ""},
			{"wrong type", "POST", "/v1/payouts/batches", strings.Replace(good, `"amount":100`, `"amount":"100"`, 1), 400, "INVALID_ARGUMENT", "items.amount"},
			{"fraction", "POST", "/v1/payouts/batches", strings.Replace(good, `"amount":100`, `"amount":1.5`, 1), 400, "INVALID_ARGUMENT", "items.amount"},
			{"overflow", "POST", "/v1/payouts/batches", strings.Replace(good, `"amount":100`, `"amount":99999999999999999999`, 1), 400, "INVALID_ARGUMENT", "items.amount"},
			{"unknown field", "POST", "/v1/payouts/batches", strings.Replace(good, `{`, `{"total":1,`, 1), 400, "INVALID_ARGUMENT", "total"},
			{"unknown currency", "POST", "/v1/payouts/batches", strings.Replace(good, `{`, `{"currency":"ABC",`, 1), 400, "UNKNOWN_CURRENCY", "currency"},
			{"bad recipient type", "POST", "/v1/payouts/batches", strings.Replace(good, `"CARD"`, `"IBAN"`, 1), 400, "INVALID_ARGUMENT", "items[0].recipient.type"},
			{"too many items", "POST", "/v1/payouts/batches", many, 400, "INVALID_ARGUMENT", "items"},
			{"oversized", "POST", "/v1/payouts/batches", `{"remark":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "TOO_LARGE", ""},
			{"short balance", "POST", "/v1/payouts/batches", strings.Replace(good, `"amount":100`, `"amount":1001`, 1), 422, "INSUFFICIENT_FUNDS", "items"},
			{"bad cursor", "GET", "/v1/payouts/batches/pob_x?cursor=zz", "", 404, "NOT_FOUND", ""},
			{"unknown batch", "GET", "/v1/payouts/batches/pob_nope", "", 404, "NOT_FOUND", ""},
			{"negative limit", "GET", "/v1/payouts/batches/pob_nope?limit=-1", "", 400, "INVALID_ARGUMENT", "limit"},
			{"unknown number", "GET", "/v1/payouts/batches/out-batch-no/NOPE", "", 404, "NOT_FOUND", ""},
			{"unknown detail", "GET", "/v1/payouts/details/NOPE", "", 404, "NOT_FOUND", ""},
		}
		for _, c := range cases {
			status, body := e.raw(t, c.method, c.path, c.body)
			require.Equal(t, c.status, status, "%s: %s", c.name, body)
			var eb struct {
				Code, Message string
				Detail        map[string]string
			}
			require.NoError(t, json.Unmarshal(body, &eb), c.name)
			require.Equal(t, c.code, eb.Code, c.name)
			require.NotEmpty(t, eb.Message, c.name)
			require.Equal(t, c.field, eb.Detail["field"], c.name)
			require.NotContains(t, string(body), payoutOtherCard(9), c.name)
		}
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM payout_batches`).Scan(&n))
		require.Zero(t, n)

		// Zero and negative amounts fail their own line only.
		status, body := e.raw(t, "POST", "/v1/payouts/batches", `{"out_batch_no":"BI-B3","items":[`+item+`,`+
			strings.NewReplacer(`"BI-1"`, `"BI-2"`, `"amount":100`, `"amount":0`).Replace(item)+`,`+
			strings.NewReplacer(`"BI-1"`, `"BI-3"`, `"amount":100`, `"amount":-100`).Replace(item)+`]}`)
		require.Equal(t, 201, status, "%s", body)
		var b client.PayoutBatch
		require.NoError(t, json.Unmarshal(body, &b))
		require.Equal(t, 1, b.AcceptedCount)
		require.Equal(t, "AMOUNT_NOT_POSITIVE", b.Items[1].FailReason)
		require.Equal(t, "AMOUNT_NOT_POSITIVE", b.Items[2].FailReason)
		require.Equal(t, int64(900), available(t, e.p.ledger, e.created.Merchant.ID))
	})
}

// TestEndToEndPayoutRaces races merchant numbers over HTTP on both stores:
// the same batch sent six times at once is one batch (one 201, the rest
// 200 with the same id) held once; six batches sharing an out_detail_no
// accept it exactly once (the others' lines OUT_DETAIL_NO_USED).
func TestEndToEndPayoutRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		mch := e.created.Merchant.ID
		fundMerchant(t, e.p.ledger, mch, 1_000_000)
		payoutRecipient(t, e.p.customers, "13912340003", "张三", "110101199003071233", 3)
		const n = 6
		req := client.CreatePayoutBatchRequest{OutBatchNo: "RACE-SAME", Items: []client.PayoutItemRequest{
			{OutDetailNo: "RACE-SAME-1", Amount: 1_000, Recipient: client.PayoutRecipient{Type: "ACCOUNT", Account: "13912340003"}}}}
		type answer struct {
			status int
			batch  client.PayoutBatch
			err    error
		}
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				answers[i].status, answers[i].err = e.client.Do(ctx, "POST", "/v1/payouts/batches", req, &answers[i].batch)
			})
		}
		wg.Wait()
		created := 0
		for _, a := range answers {
			require.NoError(t, a.err)
			require.Equal(t, answers[0].batch.ID, a.batch.ID)
			if a.status == 201 {
				created++
			} else {
				require.Equal(t, 200, a.status)
			}
		}
		require.Equal(t, 1, created, "one batch was created")

		accepted := make([]string, n)
		for i := range n {
			wg.Go(func() {
				b, err := e.client.CreatePayoutBatch(ctx, client.CreatePayoutBatchRequest{OutBatchNo: fmt.Sprintf("RACE-%d", i),
					Items: []client.PayoutItemRequest{{OutDetailNo: "RACE-SHARED", Amount: 500,
						Recipient: client.PayoutRecipient{Type: "ACCOUNT", Account: "13912340003"}}}})
				if err == nil {
					accepted[i] = b.Items[0].Status + "/" + b.Items[0].FailReason
				} else {
					accepted[i] = err.Error()
				}
			})
		}
		wg.Wait()
		took := 0
		for _, a := range accepted {
			switch a {
			case "PENDING/", "SUCCESS/":
				took++
			case "REJECTED/OUT_DETAIL_NO_USED":
			default:
				t.Fatalf("unexpected answer %s", a)
			}
		}
		require.Equal(t, 1, took, "exactly one batch accepted the shared out_detail_no")
		d, err := e.client.GetPayoutDetail(ctx, "RACE-SHARED")
		require.NoError(t, err)
		require.Equal(t, int64(500), d.Amount)
		var holds int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE 'pout_hold_%'`).Scan(&holds))
		require.Equal(t, 2, holds, "one hold per accepted item")
	})
}
