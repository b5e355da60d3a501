package bench

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"paygate"
	"paygate/ledger"
	orders "paygate/payment"
	"paygate/signing"
	"paygate/store"
)

// The raw baseline of the API load: the rows one complete payment writes,
// in plain SQL with no logic (no locking reads, no idempotency look-ups, no
// limit checks, no JSON, no crypto), in the same transactions as the
// platform commits them, into the same tables, on rows of its own (its own
// merchant id, orders, events and ledger accounts shaped like the
// platform's: a channel clearing and a fee account in ledger.HotShards
// shards, one merchant pending-settlement row shared by every client, as
// the platform's one sandbox merchant is). Per payment, 8 commits and 24
// statements:
//
//  1. the create request's nonce: INSERT auth_nonces (autocommit);
//  2. the create: BEGIN; INSERT payment_orders; COMMIT;
//  3. the pay request's nonce: INSERT auth_nonces;
//  4. the pay: BEGIN; INSERT payment_attempts; COMMIT;
//  5. the channel's trade number: UPDATE payment_attempts (autocommit);
//  6. the confirmation: BEGIN; UPDATE payment_attempts; UPDATE
//     payment_orders; INSERT the two ledger_transfers (one statement);
//     UPDATE the three ledger_balances rows (one statement); INSERT
//     notify_events; COMMIT;
//  7. the delivery's claim: BEGIN; UPDATE notify_events; INSERT
//     notify_attempts; COMMIT;
//  8. its result: BEGIN; UPDATE notify_attempts; UPDATE notify_events
//     (DELIVERED); COMMIT.
//
// The event is inserted with next_attempt_at NULL (the platform's is due at
// once), so the platform's notification worker never claims it.
//
// On SQLite, which allows one writer at a time, the baseline's writers
// queue in Go for it, as the platform's transactions do (store.DB.InTx),
// instead of polling in SQLite's busy handler.
type rawPayments struct {
	db        *sql.DB
	cal       paygate.Calendar
	writer    chan struct{} // SQLite only: one writer at a time
	merchant  string
	chanAcct  string
	pending   string
	fee       string
	notifyURL string
	payload   string
	worker    string
	seq       atomic.Int64
}

// Raw baseline SQL. Columns as the platform's store writes them.
const (
	rawNonce       = `INSERT INTO auth_nonces (merchant_id, nonce, expires_at) VALUES ($1, $2, $3)`
	rawOrderInsert = `INSERT INTO payment_orders (id, merchant_id, out_trade_no, description, amount, currency, status, notify_url,
		return_url, attach, metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id,
		channel, channel_trade_no, success_time, close_time, close_reason, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'NOTPAY', $7, '', '', '', '', $8, $9, $10, 0, 0, '', '', '', 0, 0, '', $11, $11)`
	rawAttemptInsert = `INSERT INTO payment_attempts (id, order_id, merchant_id, channel, channel_trade_no, amount, currency, status,
		fail_code, review, paid_at, query_count, next_query_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, NULL, $5, $6, 'PROCESSING', '', '', 0, 0, $7, $8, $8)`
	rawTradeNo = `UPDATE payment_attempts SET channel_trade_no = $1, updated_at = $2
		WHERE id = $3 AND channel_trade_no IS NULL AND status = 'PROCESSING'`
	rawAttemptPaid = `UPDATE payment_attempts SET channel_trade_no = $1, status = 'SUCCESS', fail_code = '', review = '',
		paid_at = $2, query_count = 0, next_query_at = NULL, updated_at = $2 WHERE id = $3`
	rawOrderPaid = `UPDATE payment_orders SET status = 'SUCCESS', payer_total = $1, fee = $2, transaction_id = $3,
		channel = $4, channel_trade_no = $5, success_time = $6, close_time = 0, close_reason = '', updated_at = $6 WHERE id = $7`
	rawTransfers = `INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, debit_shard, credit_shard,
		amount, currency, kind, flags, pending_id, timeout_s, expires_at, hold_status, code, ref, accounting_date, created_at)
		VALUES ($1, $2, $3, $4, 0, $5, $6, 'single', 0, NULL, 0, NULL, NULL, $7, $8, $9, $10),
		($11, $3, $12, 0, $13, $14, $6, 'single', 0, NULL, 0, NULL, NULL, $15, $8, $9, $10)`
	rawBalances = `UPDATE ledger_balances SET debits_posted = debits_posted + v.column3, credits_posted = credits_posted + v.column4
		FROM (VALUES ($1, CAST($2 AS INTEGER), CAST($3 AS BIGINT), CAST(0 AS BIGINT)),
			($4, CAST(0 AS INTEGER), CAST($5 AS BIGINT), CAST($6 AS BIGINT)),
			($7, CAST($8 AS INTEGER), CAST(0 AS BIGINT), CAST($9 AS BIGINT))) AS v
		WHERE ledger_balances.account_id = v.column1 AND ledger_balances.shard = v.column2`
	rawEventInsert = `INSERT INTO notify_events (id, merchant_id, event_type, original_type, summary, url, sandbox, payload,
		status, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $7, $8, 'Payment succeeded', $3, $4, $5, 'PENDING', NULL, $6, $6)`
	rawClaim = `UPDATE notify_events SET attempts = attempts + 1, attempts_in_round = attempts_in_round + 1,
		claim_owner = $2, claimed_until = $3, next_attempt_at = $3, updated_at = $4 WHERE id = $1`
	rawAttemptStart = `INSERT INTO notify_attempts (event_id, attempt, worker, started_at, outcome)
		VALUES ($1, 1, $2, $3, 'IN_PROGRESS')`
	rawAttemptDone = `UPDATE notify_attempts SET outcome = 'DELIVERED', started_at = $3, finished_at = $4,
		duration_us = $5, http_status = 204, error_class = '', response_snippet = '' WHERE event_id = $1 AND attempt = $2`
	rawDelivered = `UPDATE notify_events SET status = 'DELIVERED', delivered_at = $2, next_attempt_at = NULL,
		claimed_until = NULL, claim_owner = '', updated_at = $2 WHERE id = $1 AND status = 'PENDING'`
)

// rawChannel names the baseline's attempts' channel (its trade numbers are
// unique per channel).
const rawChannel = "bench_raw"

// newRawPayments creates the baseline's ledger accounts under prefix
// (through the ledger; not measured).
func newRawPayments(ctx context.Context, db *store.DB, prefix, notifyURL string) (*rawPayments, error) {
	cal := paygate.DefaultCalendar()
	r := &rawPayments{db: db.SQL, cal: cal, merchant: prefix + "mch", chanAcct: prefix + "chan",
		pending: prefix + "mch_pending", fee: prefix + "fee", notifyURL: notifyURL, worker: prefix + "worker"}
	if db.Dialect == store.SQLite {
		r.writer = make(chan struct{}, 1)
	}
	// A notification payload of the platform's size: the order as JSON.
	p, err := json.Marshal(map[string]any{"id": paygate.NewID(paygate.PrefixOrder), "mchid": r.merchant,
		"out_trade_no": "B0123456789abcdef", "description": "Bench order", "amount": map[string]any{"total": 12345, "currency": "CNY", "payer_total": 12345},
		"status": "SUCCESS", "notify_url": notifyURL, "time_expire": time.Now().UTC(), "create_time": time.Now().UTC(),
		"success_time": time.Now().UTC(), "transaction_id": paygate.NewID(orders.PrefixAttempt), "channel": "sim",
		"channel_trade_no": "SIM0123456789ABCDEF", "sandbox": true})
	if err != nil {
		return nil, err
	}
	r.payload = string(p)
	l := ledger.New(db.Ledger(), paygate.SystemClock{}, cal)
	if _, err := l.CreateAccounts(ctx, []ledger.Account{
		{ID: r.chanAcct, Currency: currency, Code: ledger.CodeChannelClearing, Owner: "bench", Normal: ledger.Debit, Shards: ledger.HotShards},
		{ID: r.pending, Currency: currency, Code: ledger.CodeMerchantPending, Owner: r.merchant, Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
		{ID: r.fee, Currency: currency, Code: ledger.CodePlatformFee, Owner: "bench", Normal: ledger.Credit, Shards: ledger.HotShards},
	}); err != nil {
		return nil, fmt.Errorf("raw baseline accounts: %w", err)
	}
	return r, nil
}

// randomAmount draws an order total: 1.00 to 1000.00 CNY.
func randomAmount() int64 { return 100 + mrand.Int64N(99_901) }

// write runs fn as one write: queued for SQLite's single writer.
func (r *rawPayments) write(ctx context.Context, fn func() error) error {
	if r.writer != nil {
		select {
		case r.writer <- struct{}{}:
			defer func() { <-r.writer }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fn()
}

// exec runs one autocommitted statement.
func (r *rawPayments) exec(ctx context.Context, q string, args ...any) error {
	return r.write(ctx, func() error {
		_, err := r.db.ExecContext(ctx, q, args...)
		return err
	})
}

// stmt is one statement of a transaction.
type stmt struct {
	q    string
	args []any
}

// tx runs the statements in one transaction.
func (r *rawPayments) tx(ctx context.Context, stmts ...stmt) error {
	return r.write(ctx, func() error {
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
}

// payment writes one complete payment's rows.
func (r *rawPayments) payment(ctx context.Context) error {
	us := func() int64 { return time.Now().UnixMicro() }
	n := r.seq.Add(1)
	orderID, attemptID, eventID := paygate.NewID(paygate.PrefixOrder), paygate.NewID(orders.PrefixAttempt), paygate.NewID(paygate.PrefixEvent)
	payID, feeID := "pay_"+orderID, "fee_"+orderID
	amount := randomAmount()
	fee := max(1, amount*6/1000)
	expires := time.Now().Add(signing.Window + time.Second).UnixMicro()

	if err := r.exec(ctx, rawNonce, r.merchant, signing.NewNonce(), expires); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	now := us()
	if err := r.tx(ctx, stmt{rawOrderInsert, []any{orderID, r.merchant, fmt.Sprintf("R%012d", n), "Bench order", amount, string(currency),
		r.notifyURL, now + int64(2*time.Hour/time.Microsecond), true, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", now}}); err != nil {
		return fmt.Errorf("order: %w", err)
	}
	if err := r.exec(ctx, rawNonce, r.merchant, signing.NewNonce(), expires); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	now = us()
	if err := r.tx(ctx, stmt{rawAttemptInsert, []any{attemptID, orderID, r.merchant, rawChannel, amount, string(currency),
		now + int64(30*time.Second/time.Microsecond), now}}); err != nil {
		return fmt.Errorf("attempt: %w", err)
	}
	tradeNo := fmt.Sprintf("RAW%s", attemptID)
	if err := r.exec(ctx, rawTradeNo, tradeNo, us(), attemptID); err != nil {
		return fmt.Errorf("trade number: %w", err)
	}
	now = us()
	t := time.UnixMicro(now).UTC()
	date := string(r.cal.AccountingDate(t))
	chanShard, feeShard := shardOf(payID, ledger.HotShards), shardOf(feeID, ledger.HotShards)
	if err := r.tx(ctx,
		stmt{rawAttemptPaid, []any{tradeNo, now, attemptID}},
		stmt{rawOrderPaid, []any{amount, fee, attemptID, rawChannel, tradeNo, now, orderID}},
		stmt{rawTransfers, []any{payID, r.chanAcct, r.pending, chanShard, amount, string(currency), orders.TransferPayment, attemptID, date, now,
			feeID, r.fee, feeShard, fee, orders.TransferFee}},
		stmt{rawBalances, []any{r.chanAcct, chanShard, amount, r.pending, fee, amount, r.fee, feeShard, fee}},
		stmt{rawEventInsert, []any{eventID, r.merchant, r.notifyURL, true, r.payload, now, orders.EventSuccess, orders.OriginalType}},
	); err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	now = us()
	if err := r.tx(ctx,
		stmt{rawClaim, []any{eventID, r.worker, now + int64(time.Minute/time.Microsecond), now}},
		stmt{rawAttemptStart, []any{eventID, r.worker, now}},
	); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	done := us()
	if err := r.tx(ctx,
		stmt{rawAttemptDone, []any{eventID, 1, now, done, done - now}},
		stmt{rawDelivered, []any{eventID, done}},
	); err != nil {
		return fmt.Errorf("delivered: %w", err)
	}
	return nil
}

func (r *rawPayments) workload() apiWorkload {
	return func(ctx context.Context) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		t0 := time.Now()
		if err := r.payment(ctx); err != nil {
			return sample{}, fmt.Errorf("raw payment: %w", err)
		}
		return sample{total: time.Since(t0)}, nil
	}
}

// rsaSigner measures the machine's RSA-2048 signing rate: GOMAXPROCS
// goroutines signing, as signing.Sign does for every response, a message
// of a response's size.
type rsaSigner struct {
	key *rsa.PrivateKey
	msg []byte
}

func newRSASigner() (*rsaSigner, error) {
	key, err := signing.GenerateKey()
	if err != nil {
		return nil, err
	}
	body := make([]byte, 600)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	return &rsaSigner{key: key, msg: signing.ResponseMessage(time.Now().Unix(), signing.NewNonce(), body)}, nil
}

// run signs for d with GOMAXPROCS goroutines and adds the count to m.
func (s *rsaSigner) run(ctx context.Context, d time.Duration, m *RSAMeasure) error {
	n := runtime.GOMAXPROCS(0)
	var count atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	deadline := start.Add(d)
	for k := range n {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if _, errs[k] = signing.Sign(s.key, s.msg); errs[k] != nil {
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	m.Elapsed += time.Since(start)
	m.Signatures += count.Load()
	m.Goroutines = n
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
