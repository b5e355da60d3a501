package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/notify"
)

// RefundBatchStatus is a refund batch's state:
//
//	PROCESSING ──► FINISHED   every line has its outcome (ACCEPTED or FAILED)
//
// FINISHED is final. A batch whose every line failed its checks is
// FINISHED when it is accepted.
type RefundBatchStatus string

// Refund batch statuses.
const (
	// RefundBatchProcessing: accepted; some lines wait for the worker.
	RefundBatchProcessing RefundBatchStatus = "PROCESSING"
	// RefundBatchFinished: every line is ACCEPTED or FAILED; final.
	RefundBatchFinished RefundBatchStatus = "FINISHED"
)

// RefundBatchItemStatus is the state of one line of a batch:
//
//	PENDING ──► ACCEPTED   the refund exists (refund_id; its own status says how it ends)
//	    └─────► FAILED     refused, with fail_code, fail_field and fail_message; nothing moved
type RefundBatchItemStatus string

// Line statuses.
const (
	RefundItemPending  RefundBatchItemStatus = "PENDING"
	RefundItemAccepted RefundBatchItemStatus = "ACCEPTED"
	RefundItemFailed   RefundBatchItemStatus = "FAILED"
)

// Batch limits.
const (
	MaxRefundBatchItems  = 1000 // lines per batch
	MinOutBatchNo        = 1
	MaxOutBatchNo        = 64
	DefaultRefundBatchPg = 100  // lines per page of GET
	MaxRefundBatchPg     = 1000 // the most lines one page may ask for
)

// PrefixRefundBatch starts refund batch ids ("rfb_" + UUIDv7).
const PrefixRefundBatch = "rfb_"

// EventRefundBatchFinished is the notification queued, in the transaction
// that gives a batch's last line its outcome, when the batch has a
// notify_url; its resource (original type RefundBatchOriginalType) is the
// batch's summary, without lines.
const (
	EventRefundBatchFinished = "REFUND.BATCH_FINISHED"
	RefundBatchOriginalType  = "refund_batch"
)

// CreateRefundBatchRequest is the body of "create a refund batch": up to
// MaxRefundBatchItems refunds, each as "create a refund" takes it. Currency
// (default CNY) is the batch's: a line in another currency fails alone.
// NotifyURL, when set, receives every refund's REFUND.* notifications
// (instead of each order's notify_url) and the REFUND.BATCH_FINISHED one.
type CreateRefundBatchRequest struct {
	OutBatchNo string                   `json:"out_batch_no"`
	NotifyURL  string                   `json:"notify_url,omitempty"`
	Currency   paygate.Currency         `json:"currency,omitempty"`
	Items      []RefundBatchItemRequest `json:"items" minItems:"1" maxItems:"1000"`
}

// RefundBatchItemRequest is one line of a batch: a refund of the order
// named by OrderID or OutTradeNo, as CreateRefundRequest.
type RefundBatchItemRequest struct {
	OutRefundNo    string              `json:"out_refund_no"`
	OrderID        string              `json:"order_id,omitempty"`
	OutTradeNo     string              `json:"out_trade_no,omitempty"`
	Reason         string              `json:"reason,omitempty"`
	Amount         RefundAmountRequest `json:"amount"`
	IfInsufficient IfInsufficient      `json:"if_insufficient,omitempty" enum:"WAIT,FAIL"`
}

// RefundBatch is a batch as the API shows it: its counts and, on a query,
// one page of its lines in line order (Items; absent from the create
// answer and the notification). AcceptedAmount sums the accepted lines'
// refunds in Currency.
type RefundBatch struct {
	ID             string            `json:"id"`
	MerchantID     string            `json:"mchid"`
	OutBatchNo     string            `json:"out_batch_no"`
	Status         RefundBatchStatus `json:"status" enum:"PROCESSING,FINISHED"`
	Currency       paygate.Currency  `json:"currency"`
	TotalCount     int               `json:"total_count"`
	AcceptedCount  int               `json:"accepted_count"`
	FailedCount    int               `json:"failed_count"`
	PendingCount   int               `json:"pending_count"`
	AcceptedAmount int64             `json:"accepted_amount"`
	CreateTime     time.Time         `json:"create_time"`
	UpdateTime     time.Time         `json:"update_time"`
	FinishTime     time.Time         `json:"finish_time,omitzero"`
	Items          []RefundBatchItem `json:"items,omitempty"`
	// NextCursor, when set, fetches the next page of lines.
	NextCursor string `json:"next_cursor,omitempty"`

	NotifyURL   string `json:"-"`
	Sandbox     bool   `json:"-"`
	RequestHash string `json:"-"`
}

// RefundBatchItem is one line of a batch, as sent, and its outcome. For an
// ACCEPTED line RefundID names the refund and RefundStatus is its current
// status; a FAILED line says why (FailCode, one of the error codes "create
// a refund" answers, FailField and FailMessage).
type RefundBatchItem struct {
	Line           int                   `json:"line"`
	OutRefundNo    string                `json:"out_refund_no"`
	OrderID        string                `json:"order_id,omitempty"`
	OutTradeNo     string                `json:"out_trade_no,omitempty"`
	Reason         string                `json:"reason,omitempty"`
	Amount         RefundAmountRequest   `json:"amount"`
	IfInsufficient IfInsufficient        `json:"if_insufficient,omitempty"`
	Status         RefundBatchItemStatus `json:"status" enum:"PENDING,ACCEPTED,FAILED"`
	RefundID       string                `json:"refund_id,omitempty"`
	RefundStatus   RefundStatus          `json:"refund_status,omitempty"`
	FailCode       paygate.Code          `json:"fail_code,omitempty"`
	FailField      string                `json:"fail_field,omitempty"`
	FailMessage    string                `json:"fail_message,omitempty"`

	BatchID       string    `json:"-"`
	MerchantID    string    `json:"-"`
	NotifyURL     string    `json:"-"` // the batch's: the refund's notifications go there
	Attempts      int       `json:"-"`
	NextAttemptAt time.Time `json:"-"`
	UpdateTime    time.Time `json:"-"`
}

// RefundBatchPage selects a page of a batch's lines: those after Cursor
// (the NextCursor of the previous page; empty: from the first line), at
// most Limit of them (0: DefaultRefundBatchPg).
type RefundBatchPage struct {
	Cursor string
	Limit  int
}

// BatchTx is the transaction the batch use cases write through; store.Tx
// implements it (and notify.Tx, so that a batch's notification commits
// with the outcome that finishes it).
type BatchTx interface {
	notify.Tx
	// InsertRefundBatch inserts b and its lines unless the merchant
	// already has a batch with its out_batch_no, and reports whether it
	// inserted.
	InsertRefundBatch(ctx context.Context, b RefundBatch, items []RefundBatchItem) (bool, error)
	// RefundBatchByOutBatchNoInTx returns the merchant's batch with that
	// number (CodeNotFound when there is none).
	RefundBatchByOutBatchNoInTx(ctx context.Context, merchantID, outBatchNo string) (RefundBatch, error)
	// WakeRefundBatch makes the batch's PENDING lines due at now.
	WakeRefundBatch(ctx context.Context, batchID string, now time.Time) error
	// ClaimRefundBatchItems takes up to limit PENDING lines due at or
	// before now, earliest first, skipping lines other transactions hold
	// (PostgreSQL): it counts an attempt on each and makes it due again
	// at until (so that a worker that dies leaves them to another), and
	// returns them.
	ClaimRefundBatchItems(ctx context.Context, now, until time.Time, limit int) ([]RefundBatchItem, error)
	// FinishRefundBatchItem stores the outcome of a PENDING line (status,
	// refund id, fail code, field and message, update time) and reports
	// whether it did (false: another worker recorded it first).
	FinishRefundBatchItem(ctx context.Context, it RefundBatchItem) (bool, error)
	// DeferRefundBatchItem makes a PENDING line due again at next.
	DeferRefundBatchItem(ctx context.Context, batchID string, line int, next time.Time) error
	// AddRefundBatchCounts adds outcomes to the batch's counts, makes it
	// FINISHED (finish time now) when every line has one, and returns it.
	AddRefundBatchCounts(ctx context.Context, batchID string, accepted, failed int, acceptedAmount int64, now time.Time) (RefundBatch, error)
}

// BatchStore is the batch use cases' persistence; store.DB.RefundBatches
// implements it. Lookups of a missing row fail with CodeNotFound.
type BatchStore interface {
	// InTx runs fn in one transaction, as Store.InTx.
	InTx(ctx context.Context, fn func(BatchTx) error) error
	// RefundBatch returns the merchant's batch with the id.
	RefundBatch(ctx context.Context, merchantID, id string) (RefundBatch, error)
	// RefundBatchByOutBatchNo returns the merchant's batch with that number.
	RefundBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string) (RefundBatch, error)
	// RefundBatchItems returns up to limit lines of the batch after
	// afterLine, in line order, each with its refund's current status.
	RefundBatchItems(ctx context.Context, batchID string, afterLine, limit int) ([]RefundBatchItem, error)
}

// BatchConfig configures BatchRefunds. Payments and Store are required.
type BatchConfig struct {
	// Payments refunds each line (Service.Refund): the batch adds no
	// money movement of its own.
	Payments *Service
	Store    BatchStore
	// Clock defaults to the payment service's.
	Clock  paygate.Clock
	Logger *slog.Logger
	// Concurrency is how many lines one ProcessRefundBatches call refunds
	// at once (default 4; lines of one order queue on its lock).
	Concurrency int
	// Lease is how long a claimed line is left to its worker before
	// another may take it (default 1m): a worker that dies mid-batch holds
	// nothing longer.
	Lease time.Duration
	// Backoff spaces the attempts of a line whose refund met a transient
	// fault (the store or the channel unavailable): the n-th retry waits
	// Backoff[n] (the last repeats). Default 5s, 30s, 1m, 5m, 10m, 30m.
	Backoff []time.Duration
	// Kick, when set, is called after a commit that queued a
	// notification (the notification worker's Kick).
	Kick func()
}

// BatchRefunds is the batch refund use case: batches accepted in one
// transaction, worked through by ProcessRefundBatches. It is safe for
// concurrent use, and several processes may share one database.
type BatchRefunds struct {
	cfg   BatchConfig
	pay   *Service
	store BatchStore
	clock paygate.Clock
	log   *slog.Logger
	wake  chan struct{}
}

// NewBatchRefunds returns the batch use case. Errors: CodeInvalidArgument
// for a missing dependency or a negative setting.
func NewBatchRefunds(cfg BatchConfig) (*BatchRefunds, error) {
	if cfg.Payments == nil || cfg.Store == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payment: BatchConfig needs Payments and Store")
	}
	if cfg.Concurrency < 0 || cfg.Lease < 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payment: batch concurrency and lease must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.Payments.clock
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.Payments.log
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.Lease == 0 {
		cfg.Lease = time.Minute
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute}
	}
	return &BatchRefunds{cfg: cfg, pay: cfg.Payments, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger,
		wake: make(chan struct{}, 1)}, nil
}

func (b *BatchRefunds) now() time.Time { return b.clock.Now().UTC().Truncate(time.Microsecond) }

// checkOutBatchNo: 1–64 of A-Z a-z 0-9 _ - | * @, as out_refund_no.
func checkOutBatchNo(s string) error {
	if len(s) < MinOutBatchNo || len(s) > MaxOutBatchNo || checkOutRefundNo(s) != nil {
		return paygate.EField(paygate.CodeInvalidArgument, "out_batch_no", "out_batch_no must be %d to %d of letters, digits and _-|*@", MinOutBatchNo, MaxOutBatchNo)
	}
	return nil
}

// batchHash fingerprints the normalised batch request.
func batchHash(req CreateRefundBatchRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// clean makes a line's text storable and showable whatever was sent:
// valid UTF-8 without NUL (PostgreSQL's TEXT refuses it), at most max
// bytes.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// failLine records err as the line's failure.
func failLine(it *RefundBatchItem, err error) {
	it.Status, it.NextAttemptAt = RefundItemFailed, time.Time{}
	it.FailCode = paygate.CodeOf(err)
	var pe *paygate.Error
	if errors.As(err, &pe) {
		it.FailField, it.FailMessage = clean(pe.Field, 64), clean(pe.Message, 256)
	}
	if it.FailCode == paygate.CodeInternal {
		it.FailMessage = "internal error"
	}
}

// SubmitRefundBatch accepts a batch of refunds for the merchant, or returns
// the batch the merchant already submitted with the same out_batch_no and
// the same request (replay true; the HTTP layer answers 200 instead of 202).
// A replay of a batch still PROCESSING makes its waiting lines due now: a
// merchant retrying after an outage gets its batch moving at once.
//
// In one transaction the batch and its lines are stored: each line is
// checked as "create a refund" checks a request before it looks at the
// order, and one that fails (a bad out_refund_no, amount or currency, an
// out_refund_no repeating an earlier line's, no order named) is FAILED at
// once with its code, field and message, alone; the rest are PENDING, for
// ProcessRefundBatches, which refunds each through Service.Refund (so an
// unknown or another merchant's order, an over-refund or an unpaid order
// fail that line alone, later). A batch with no line left to refund is
// FINISHED at once.
//
// Errors (nothing is stored): CodeForbidden (merchant may not transact),
// CodeInvalidArgument naming the field (out_batch_no, notify_url, items:
// none or more than MaxRefundBatchItems), CodeUnknownCurrency (currency),
// CodeOutBatchNoUsed (the out_batch_no was used with a different request;
// field: the first differing one).
func (b *BatchRefunds) SubmitRefundBatch(ctx context.Context, merchantID string, req CreateRefundBatchRequest) (out RefundBatch, replay bool, err error) {
	m, err := b.pay.merchant(ctx, merchantID)
	if err != nil {
		return RefundBatch{}, false, err
	}
	if err := checkOutBatchNo(req.OutBatchNo); err != nil {
		return RefundBatch{}, false, err
	}
	if len(req.Items) == 0 || len(req.Items) > MaxRefundBatchItems {
		return RefundBatch{}, false, paygate.EField(paygate.CodeInvalidArgument, "items", "a batch has 1 to %d items, not %d", MaxRefundBatchItems, len(req.Items))
	}
	if req.NotifyURL != "" {
		if err := notify.ValidateURL(req.NotifyURL, m.Sandbox()); err != nil {
			return RefundBatch{}, false, err
		}
		if u, err := url.Parse(req.NotifyURL); err != nil || !m.NotifyHostAllowed(u.Hostname()) {
			return RefundBatch{}, false, paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url's host is not among the merchant's allowed notify hosts")
		}
	}
	if req.Currency == "" {
		req.Currency = "CNY"
	}
	if _, err := paygate.ParseCurrency(string(req.Currency)); err != nil {
		return RefundBatch{}, false, paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown currency %q", clean(string(req.Currency), 16))
	}
	// Defaults, so that a replay spelling them out is the same request; on
	// a copy, so that the caller's lines stay as they were.
	req.Items = slices.Clone(req.Items)
	for i := range req.Items {
		it := &req.Items[i]
		if it.Amount.Currency == "" {
			it.Amount.Currency = req.Currency
		}
		if it.IfInsufficient == "" {
			it.IfInsufficient = InsufficientFail
		}
	}
	now := b.now()
	batch := RefundBatch{ID: paygate.NewID(PrefixRefundBatch), MerchantID: m.ID, OutBatchNo: req.OutBatchNo, Status: RefundBatchProcessing,
		Currency: req.Currency, TotalCount: len(req.Items), CreateTime: now, UpdateTime: now, NotifyURL: req.NotifyURL,
		Sandbox: m.Sandbox(), RequestHash: batchHash(req)}
	items := b.lines(m, batch, req, now)
	for _, it := range items {
		if it.Status == RefundItemFailed {
			batch.FailedCount++
		}
	}
	if batch.FailedCount == batch.TotalCount {
		batch.Status, batch.FinishTime = RefundBatchFinished, now
	}
	notified := false
	err = b.store.InTx(ctx, func(tx BatchTx) error {
		replay, notified = false, false
		inserted, err := tx.InsertRefundBatch(ctx, batch, items)
		if err != nil {
			return err
		}
		if inserted {
			out = batch
			if batch.Status == RefundBatchFinished {
				notified, err = b.finished(ctx, tx, batch)
			}
			return err
		}
		prev, err := tx.RefundBatchByOutBatchNoInTx(ctx, m.ID, req.OutBatchNo)
		if err != nil {
			if paygate.HasCode(err, paygate.CodeNotFound) { // cannot happen: batches are never deleted
				return fmt.Errorf("payment: refund batch vanished: %w", paygate.ErrRetry)
			}
			return err
		}
		if prev.RequestHash != batch.RequestHash {
			f := b.batchDiff(ctx, prev, req)
			return paygate.EField(paygate.CodeOutBatchNoUsed, f, "out_batch_no %q was already used with a different %s", req.OutBatchNo, f)
		}
		out, replay = prev, true
		if prev.Status == RefundBatchProcessing {
			return tx.WakeRefundBatch(ctx, prev.ID, now)
		}
		return nil
	})
	if err != nil {
		return RefundBatch{}, false, err
	}
	if notified {
		b.kick()
	}
	if out.Status == RefundBatchProcessing {
		b.Wake()
	}
	out.PendingCount = out.TotalCount - out.AcceptedCount - out.FailedCount
	return out, replay, nil
}

// lines checks each line of a request and returns the batch's lines:
// PENDING, or FAILED with the reason.
func (b *BatchRefunds) lines(m paygate.Merchant, batch RefundBatch, req CreateRefundBatchRequest, now time.Time) []RefundBatchItem {
	items := make([]RefundBatchItem, len(req.Items))
	seen := make(map[string]int, len(req.Items))
	for i, r := range req.Items {
		it := RefundBatchItem{Line: i + 1, BatchID: batch.ID, MerchantID: m.ID, NotifyURL: batch.NotifyURL,
			OutRefundNo: clean(r.OutRefundNo, 128), OrderID: clean(r.OrderID, 128), OutTradeNo: clean(r.OutTradeNo, 128),
			Reason: clean(r.Reason, 512), Amount: RefundAmountRequest{Refund: r.Amount.Refund, Total: r.Amount.Total,
				Currency: paygate.Currency(clean(string(r.Amount.Currency), 16))},
			IfInsufficient: IfInsufficient(clean(string(r.IfInsufficient), 16)), Status: RefundItemPending,
			NextAttemptAt: now, UpdateTime: now}
		_, err := b.pay.checkRefundRequest(m, r.request(""))
		switch {
		case err != nil:
		case r.Amount.Currency != req.Currency:
			err = paygate.EField(paygate.CodeCurrencyMismatch, "amount.currency", "the batch refunds in %s", req.Currency)
		case seen[r.OutRefundNo] > 0:
			err = paygate.EField(paygate.CodeInvalidArgument, "out_refund_no", "out_refund_no repeats line %d", seen[r.OutRefundNo])
		}
		if err != nil {
			failLine(&it, err)
		} else {
			seen[r.OutRefundNo] = i + 1
		}
		items[i] = it
	}
	return items
}

// request is the refund a line asks for.
func (r RefundBatchItemRequest) request(notifyURL string) CreateRefundRequest {
	return CreateRefundRequest{OrderID: r.OrderID, OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Reason: r.Reason,
		NotifyURL: notifyURL, Amount: r.Amount, IfInsufficient: r.IfInsufficient}
}

// batchDiff names the first field in which a repeated request differs
// from the stored batch.
func (b *BatchRefunds) batchDiff(ctx context.Context, prev RefundBatch, req CreateRefundBatchRequest) string {
	switch {
	case prev.NotifyURL != req.NotifyURL:
		return "notify_url"
	case prev.Currency != req.Currency:
		return "currency"
	case prev.TotalCount != len(req.Items):
		return "items"
	}
	its, err := b.store.RefundBatchItems(ctx, prev.ID, 0, MaxRefundBatchItems)
	if err != nil {
		return "items"
	}
	for i, it := range its {
		r := req.Items[i]
		f := ""
		switch {
		case it.OutRefundNo != r.OutRefundNo:
			f = "out_refund_no"
		case it.OrderID != r.OrderID:
			f = "order_id"
		case it.OutTradeNo != r.OutTradeNo:
			f = "out_trade_no"
		case it.Amount.Refund != r.Amount.Refund:
			f = "amount.refund"
		case it.Amount.Total != r.Amount.Total:
			f = "amount.total"
		case it.Amount.Currency != r.Amount.Currency:
			f = "amount.currency"
		case it.Reason != r.Reason:
			f = "reason"
		case it.IfInsufficient != r.IfInsufficient:
			f = "if_insufficient"
		}
		if f != "" {
			return fmt.Sprintf("items[%d].%s", i, f)
		}
	}
	return "items"
}

// finished queues the batch's REFUND.BATCH_FINISHED notification in tx,
// when it has a notify_url, and reports whether it did.
func (b *BatchRefunds) finished(ctx context.Context, tx BatchTx, batch RefundBatch) (bool, error) {
	if batch.NotifyURL == "" {
		return false, nil
	}
	batch.Items, batch.NextCursor = nil, ""
	batch.PendingCount = 0
	p, err := json.Marshal(batch)
	if err != nil {
		return false, fmt.Errorf("payment: encode notification: %w", err)
	}
	err = notify.Enqueue(ctx, tx, b.clock, notify.Event{MerchantID: batch.MerchantID, EventType: EventRefundBatchFinished,
		OriginalType: RefundBatchOriginalType, Summary: "Refund batch finished", URL: batch.NotifyURL, Payload: p,
		CreatedAt: b.now(), Sandbox: batch.Sandbox})
	return err == nil, err
}

func (b *BatchRefunds) kick() {
	if b.cfg.Kick != nil {
		b.cfg.Kick()
	}
}

// Wake asks the worker (Ticks) to look for due lines now instead of at its
// next tick. It never blocks.
func (b *BatchRefunds) Wake() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Ticks returns a channel that delivers every tick of ticks and, in
// between, a tick after each Wake (a batch was submitted), until ctx is
// done: the worker's schedule. One goroutine runs until then.
func (b *BatchRefunds) Ticks(ctx context.Context, ticks <-chan time.Time) <-chan time.Time {
	out := make(chan time.Time, 1)
	send := func(t time.Time) {
		select {
		case out <- t:
		default: // a tick is already waiting: one look covers both
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-ticks:
				send(t)
			case <-b.wake:
				send(b.clock.Now())
			}
		}
	}()
	return out
}

// GetRefundBatch returns the merchant's batch with the id and a page of
// its lines. Errors: CodeNotFound (none, another merchant's included),
// CodeInvalidArgument (field cursor or limit).
func (b *BatchRefunds) GetRefundBatch(ctx context.Context, merchantID, id string, pg RefundBatchPage) (RefundBatch, error) {
	after, limit, err := checkBatchPage(pg)
	if err != nil {
		return RefundBatch{}, err
	}
	if len(id) > maxOrderIDLen {
		return RefundBatch{}, paygate.E(paygate.CodeNotFound, "refund batch not found")
	}
	batch, err := b.store.RefundBatch(ctx, merchantID, id)
	if err != nil {
		return RefundBatch{}, err
	}
	return b.withItems(ctx, batch, after, limit)
}

// GetRefundBatchByOutBatchNo returns the merchant's batch with the
// out_batch_no and a page of its lines. Errors: as GetRefundBatch.
func (b *BatchRefunds) GetRefundBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string, pg RefundBatchPage) (RefundBatch, error) {
	after, limit, err := checkBatchPage(pg)
	if err != nil {
		return RefundBatch{}, err
	}
	if checkOutBatchNo(outBatchNo) != nil {
		return RefundBatch{}, paygate.E(paygate.CodeNotFound, "refund batch not found")
	}
	batch, err := b.store.RefundBatchByOutBatchNo(ctx, merchantID, outBatchNo)
	if err != nil {
		return RefundBatch{}, err
	}
	return b.withItems(ctx, batch, after, limit)
}

// checkBatchPage parses a page request: the line after which it starts
// and its size.
func checkBatchPage(pg RefundBatchPage) (after, limit int, err error) {
	limit = pg.Limit
	if limit == 0 {
		limit = DefaultRefundBatchPg
	}
	if limit < 0 || limit > MaxRefundBatchPg {
		return 0, 0, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be 1 to %d", MaxRefundBatchPg)
	}
	if pg.Cursor != "" {
		after, err = strconv.Atoi(pg.Cursor)
		if err != nil || after < 1 || after > MaxRefundBatchItems {
			return 0, 0, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
		}
	}
	return after, limit, nil
}

func (b *BatchRefunds) withItems(ctx context.Context, batch RefundBatch, after, limit int) (RefundBatch, error) {
	its, err := b.store.RefundBatchItems(ctx, batch.ID, after, limit+1)
	if err != nil {
		return RefundBatch{}, err
	}
	if len(its) > limit {
		its = its[:limit]
		batch.NextCursor = strconv.Itoa(its[limit-1].Line)
	}
	batch.Items = its
	if batch.Items == nil {
		batch.Items = []RefundBatchItem{}
	}
	batch.PendingCount = batch.TotalCount - batch.AcceptedCount - batch.FailedCount
	return batch, nil
}

// retryable reports whether a refund's error is a fault that may pass
// (the store or a dependency unavailable, an internal error whose outcome
// is unknown) rather than an answer about the line.
func retryableRefundError(err error) bool {
	c := paygate.CodeOf(err)
	return c == paygate.CodeUnavailable || c == paygate.CodeInternal
}

// ProcessRefundBatches works through up to limit (default 100) due PENDING
// lines of any batches: it claims them in one transaction, refunds each
// through Service.Refund outside it (Concurrency at once) — idempotent by
// out_refund_no, so a line refunded before a crash is found again, never
// refunded twice — and records the outcomes in one transaction with the
// batches' counts and, for each batch whose last line got its outcome,
// FINISHED and its REFUND.BATCH_FINISHED notification. A line whose refund
// met a transient fault (CodeUnavailable, CodeInternal) stays PENDING and
// is tried again after Backoff; any other error fails the line alone.
// Several processes may run it at once: each line is claimed by one
// (SKIP LOCKED) and recorded once. It returns how many lines it claimed.
func (b *BatchRefunds) ProcessRefundBatches(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	var claimed []RefundBatchItem
	err := b.store.InTx(ctx, func(tx BatchTx) error {
		now := b.now()
		var err error
		claimed, err = tx.ClaimRefundBatchItems(ctx, now, now.Add(b.cfg.Lease), limit)
		return err
	})
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	results := make([]RefundBatchItem, len(claimed))
	amounts := make([]int64, len(claimed))
	retry := make([]bool, len(claimed))
	// Lines of one order run one after the other in line order (the
	// claim is in line order), so that which line of an over-refunding
	// batch fails does not depend on timing; orders run Concurrency at once.
	var groups [][]int
	group := map[string]int{}
	for i, it := range claimed {
		key := it.BatchID + "\x00" + it.OrderID + "\x00" + it.OutTradeNo
		g, ok := group[key]
		if !ok {
			g = len(groups)
			group[key] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	sem := make(chan struct{}, b.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range g {
				if ctx.Err() != nil {
					retry[i] = true // never tried: the lease stands
					continue
				}
				results[i], amounts[i], retry[i] = b.refundLine(ctx, claimed[i])
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil { // shutting down: the leases hand the rest to the next run
		ctx = context.WithoutCancel(ctx)
	}
	notified := false
	err = b.store.InTx(ctx, func(tx BatchTx) error {
		notified = false
		now := b.now()
		type counts struct {
			accepted, failed int
			amount           int64
		}
		per := map[string]*counts{}
		var order []string
		for i, it := range results {
			if retry[i] {
				if it.BatchID == "" { // never tried (shutdown): the lease stands
					continue
				}
				next := now.Add(b.cfg.Backoff[min(max(it.Attempts-1, 0), len(b.cfg.Backoff)-1)])
				if err := tx.DeferRefundBatchItem(ctx, it.BatchID, it.Line, next); err != nil {
					return err
				}
				continue
			}
			it.UpdateTime = now
			ok, err := tx.FinishRefundBatchItem(ctx, it)
			if err != nil {
				return err
			}
			if !ok {
				continue // another worker recorded it
			}
			c := per[it.BatchID]
			if c == nil {
				c = &counts{}
				per[it.BatchID] = c
				order = append(order, it.BatchID)
			}
			if it.Status == RefundItemAccepted {
				c.accepted++
				c.amount += amounts[i]
			} else {
				c.failed++
			}
		}
		for _, id := range order {
			c := per[id]
			batch, err := tx.AddRefundBatchCounts(ctx, id, c.accepted, c.failed, c.amount, now)
			if err != nil {
				return err
			}
			if batch.Status == RefundBatchFinished { // only the transaction giving the last line its outcome sees it so
				n, err := b.finished(ctx, tx, batch)
				if err != nil {
					return err
				}
				notified = notified || n
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if notified {
		b.kick()
	}
	return len(claimed), nil
}

// refundLine refunds one claimed line and returns its outcome, the amount
// accepted, and whether the line must be tried again later.
func (b *BatchRefunds) refundLine(ctx context.Context, it RefundBatchItem) (RefundBatchItem, int64, bool) {
	req := RefundBatchItemRequest{OutRefundNo: it.OutRefundNo, OrderID: it.OrderID, OutTradeNo: it.OutTradeNo, Reason: it.Reason,
		Amount: it.Amount, IfInsufficient: it.IfInsufficient}.request(it.NotifyURL)
	r, _, err := b.pay.Refund(ctx, it.MerchantID, req)
	switch {
	case err == nil:
		it.Status, it.RefundID, it.RefundStatus = RefundItemAccepted, r.ID, r.Status
		return it, r.Amount.Refund, false
	case retryableRefundError(err) || ctx.Err() != nil:
		if ctx.Err() == nil {
			b.log.Warn("payment: a batch line's refund met a fault; will retry", "batch_id", it.BatchID, "line", it.Line,
				"attempts", it.Attempts, "error", err)
		}
		return it, 0, true
	}
	failLine(&it, err)
	return it, 0, false
}
