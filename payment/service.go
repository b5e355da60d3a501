package payment

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/channel"
	"paygate/notify"
)

// Limits and defaults of orders.
const (
	DefaultMaxAmount     = 100_000_000 // minor units: 1,000,000.00 CNY
	DefaultExpire        = 2 * time.Hour
	DefaultMaxExpire     = 7 * 24 * time.Hour
	DefaultPageSize      = 20
	MaxPageSize          = 100
	MinOutTradeNo        = 6
	MaxOutTradeNo        = 32
	MaxDescription       = 127 // characters
	MaxAttach            = 128 // characters
	MaxURL               = 512 // bytes, return_url (notify_url: notify.MaxURLLen)
	MaxMetadataKeys      = 20
	MaxMetadataKey       = 40  // bytes
	MaxMetadataValue     = 256 // characters
	MaxPaymentMethods    = 10
	MaxPaymentMethodName = 32
)

// DefaultSandboxChannel is the channel SandboxPay uses unless configured.
const DefaultSandboxChannel = "sim"

// codeOutTradeNoUsed answers an out_trade_no reused with a different
// request (HTTP 409).
const codeOutTradeNoUsed = paygate.CodeOutTradeNoUsed

// Config configures a Service. Store, Ledger, Merchants and Clock are
// required; zero limits take the defaults above.
type Config struct {
	Store     Store
	Ledger    Books
	Merchants Merchants
	Clock     paygate.Clock
	// Channels are the channels payments may go through, by Name().
	Channels []channel.Channel
	// SandboxChannel names the channel SandboxPay pays through
	// (DefaultSandboxChannel).
	SandboxChannel string
	Logger         *slog.Logger
	MaxAmount      int64         // largest order total in minor units
	DefaultExpire  time.Duration // time_expire when the request has none
	MaxExpire      time.Duration // latest time_expire, from now
	// CheckoutBaseURL, when set, makes open orders show checkout_url =
	// CheckoutBaseURL + order id (and code_url, the same, for a QR code).
	CheckoutBaseURL string
	// QueryBackoff spaces the queries of a payment whose outcome is
	// unknown: the n-th query waits QueryBackoff[n] (the last entry
	// repeats). Default 30s, 1m, 2m, 5m, 10m, 30m, 1h.
	QueryBackoff []time.Duration
	// GiveUpUnknown is how long after its creation an attempt the channel
	// never accepted (no channel trade number) and still has no record of
	// is declared FAILED (fail code NOT_AT_CHANNEL). Default 24h.
	GiveUpUnknown time.Duration
	// RefundQueryBackoff spaces ReconcileRefunds' looks at a PROCESSING
	// refund (a channel's answer, or funds for a refund waiting for them):
	// the n-th look waits RefundQueryBackoff[n] (the last entry repeats).
	// Default 5s, 30s, 1m, 2m, 5m, 10m, 30m, 1h.
	RefundQueryBackoff []time.Duration
	// AttemptFailed gives back the limit usage of a checkout payment that
	// failed (the checkout sets it); nil does nothing. It also gives back
	// the part of a manual-capture payment's usage its authorization
	// released (void, expiry, or the rest of a partial capture): Amount is
	// then the part released.
	AttemptFailed AttemptFailed
	// AuthorizationPeriod is how long a manual-capture order's
	// authorization holds the payer's money before ExpireAuthorizations
	// releases it (capture_before = authorization time + this). Whole
	// seconds; default DefaultAuthorizationPeriod (7 days).
	AuthorizationPeriod time.Duration
	// Kick, when set, is called after a transaction that queued a merchant
	// notification commits (the notification worker's Kick), so it leaves
	// at once instead of at the worker's next tick.
	Kick func()
}

// Service is the orders use case. It is safe for concurrent use, and
// several processes may share one database.
type Service struct {
	cfg      Config
	store    Store
	books    Books
	mchs     Merchants
	clock    paygate.Clock
	log      *slog.Logger
	channels map[string]channel.Channel
	accounts sync.Map // key of accounts known to exist -> true
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency or a bad limit.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Merchants == nil || cfg.Clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payment: Store, Ledger, Merchants and Clock are required")
	}
	if cfg.MaxAmount == 0 {
		cfg.MaxAmount = DefaultMaxAmount
	}
	if cfg.DefaultExpire == 0 {
		cfg.DefaultExpire = DefaultExpire
	}
	if cfg.MaxExpire == 0 {
		cfg.MaxExpire = DefaultMaxExpire
	}
	if cfg.SandboxChannel == "" {
		cfg.SandboxChannel = DefaultSandboxChannel
	}
	if len(cfg.QueryBackoff) == 0 {
		cfg.QueryBackoff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}
	}
	if len(cfg.RefundQueryBackoff) == 0 {
		cfg.RefundQueryBackoff = []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
			10 * time.Minute, 30 * time.Minute, time.Hour}
	}
	if cfg.GiveUpUnknown == 0 {
		cfg.GiveUpUnknown = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AuthorizationPeriod == 0 {
		cfg.AuthorizationPeriod = DefaultAuthorizationPeriod
	}
	if cfg.AuthorizationPeriod < time.Second || cfg.AuthorizationPeriod%time.Second != 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payment: AuthorizationPeriod must be a positive whole number of seconds")
	}
	if cfg.MaxAmount < 0 || cfg.DefaultExpire < 0 || cfg.MaxExpire < cfg.DefaultExpire {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payment: limits must be positive and MaxExpire at least DefaultExpire")
	}
	s := &Service{cfg: cfg, store: cfg.Store, books: cfg.Ledger, mchs: cfg.Merchants, clock: cfg.Clock, log: cfg.Logger,
		channels: map[string]channel.Channel{}}
	for _, ch := range cfg.Channels {
		if ch == nil || ch.Name() == "" {
			return nil, paygate.E(paygate.CodeInvalidArgument, "payment: a channel has no name")
		}
		if _, dup := s.channels[ch.Name()]; dup {
			return nil, paygate.E(paygate.CodeInvalidArgument, "payment: two channels named %q", ch.Name())
		}
		s.channels[ch.Name()] = ch
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// kick wakes the notification worker after a commit that queued a
// notification.
func (s *Service) kick() {
	if s.cfg.Kick != nil {
		s.cfg.Kick()
	}
}

// merchant returns a merchant that may transact. Errors: the Merchants
// error (CodeNotFound), CodeForbidden when the merchant may not transact.
func (s *Service) merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	m, err := s.mchs.Merchant(ctx, id)
	if err != nil {
		return paygate.Merchant{}, fmt.Errorf("payment: merchant: %w", err)
	}
	if !m.Status.CanTransact() {
		return paygate.Merchant{}, paygate.E(paygate.CodeForbidden, "the merchant may not transact in status %s", m.Status)
	}
	return m, nil
}

// view fills the fields the API shows but the store does not keep.
func (s *Service) view(o Order) Order {
	o.CheckoutURL, o.CodeURL = "", ""
	if s.cfg.CheckoutBaseURL != "" && o.Status.Open() {
		o.CheckoutURL = s.cfg.CheckoutBaseURL + o.ID
		o.CodeURL = o.CheckoutURL
	}
	return o
}

// Create creates an order for the merchant, or returns the order the
// merchant already created with the same out_trade_no and the same request
// (replay true; the HTTP layer answers 200 instead of 201). Concurrent
// identical requests create one order.
//
// Errors: CodeForbidden (merchant may not transact), CodeNotFound (unknown
// merchant), CodeInvalidArgument / CodeAmountNotPositive /
// CodeLimitExceeded / CodeUnknownCurrency naming the field at fault, and
// CodeIDConflict (field: the first differing field) when the out_trade_no
// was used with a different request.
func (s *Service) Create(ctx context.Context, merchantID string, req CreateRequest) (o Order, replay bool, err error) {
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Order{}, false, err
	}
	now := s.now()
	o, err = s.newOrder(m, req, now)
	if err != nil {
		return Order{}, false, err
	}
	var out Order
	err = s.store.InTx(ctx, func(tx Tx) error {
		replay = false
		inserted, err := tx.InsertOrder(ctx, o)
		if err != nil {
			return err
		}
		if inserted {
			out = o
			return nil
		}
		prev, err := tx.OrderByOutTradeNoInTx(ctx, m.ID, o.OutTradeNo)
		if err != nil {
			if paygate.HasCode(err, paygate.CodeNotFound) { // deleted in between: cannot happen, but retry
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
	})
	if err != nil {
		return Order{}, false, err
	}
	return s.view(out), replay, nil
}

// newOrder validates req and builds the order it creates.
func (s *Service) newOrder(m paygate.Merchant, req CreateRequest, now time.Time) (Order, error) {
	if err := checkOutTradeNo(req.OutTradeNo); err != nil {
		return Order{}, err
	}
	if err := checkText("description", req.Description, 1, MaxDescription); err != nil {
		return Order{}, err
	}
	if err := paygate.CheckAmount("amount.total", req.Amount.Total, s.cfg.MaxAmount); err != nil {
		return Order{}, err
	}
	cur := req.Amount.Currency
	if cur == "" {
		cur = "CNY"
	}
	if _, err := paygate.ParseCurrency(string(cur)); err != nil {
		return Order{}, paygate.EField(paygate.CodeUnknownCurrency, "amount.currency", "unknown currency %q", string(cur))
	}
	if err := notify.ValidateURL(req.NotifyURL, m.Sandbox()); err != nil {
		return Order{}, err
	}
	if u, err := url.Parse(req.NotifyURL); err != nil || !m.NotifyHostAllowed(u.Hostname()) {
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url's host is not among the merchant's allowed notify hosts")
	}
	if req.ReturnURL != "" {
		if len(req.ReturnURL) > MaxURL || notify.ValidateURL(req.ReturnURL, true) != nil {
			return Order{}, paygate.EField(paygate.CodeInvalidArgument, "return_url", "return_url must be an absolute http or https URL of at most %d bytes", MaxURL)
		}
	}
	expire := req.TimeExpire.UTC().Truncate(time.Microsecond)
	if req.TimeExpire.IsZero() {
		expire = now.Add(s.cfg.DefaultExpire)
	} else if !expire.After(now) {
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "time_expire", "time_expire must be in the future")
	} else if expire.After(now.Add(s.cfg.MaxExpire)) {
		return Order{}, paygate.EField(paygate.CodeInvalidArgument, "time_expire", "time_expire must be at most %s from now", s.cfg.MaxExpire)
	}
	if req.Attach != "" {
		if err := checkText("attach", req.Attach, 1, MaxAttach); err != nil {
			return Order{}, err
		}
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return Order{}, err
	}
	if err := checkMethods(req.PaymentMethods); err != nil {
		return Order{}, err
	}
	capture, err := checkCaptureMethod(req.CaptureMethod)
	if err != nil {
		return Order{}, err
	}
	o := Order{
		ID: paygate.NewID(paygate.PrefixOrder), MerchantID: m.ID, OutTradeNo: req.OutTradeNo, Description: req.Description,
		Amount: Amount{Total: req.Amount.Total, Currency: cur}, Status: StatusNotPay,
		NotifyURL: req.NotifyURL, ReturnURL: req.ReturnURL, Attach: req.Attach,
		TimeExpire: expire, CreateTime: now, UpdateTime: now, Sandbox: m.Sandbox(), CaptureMethod: capture,
	}
	if len(req.Metadata) > 0 {
		o.Metadata = req.Metadata
	}
	if len(req.PaymentMethods) > 0 {
		o.PaymentMethods = req.PaymentMethods
	}
	o.RequestHash = requestHash(o, !req.TimeExpire.IsZero())
	return o, nil
}

// requestHash fingerprints the request fields that define an order (as
// normalised into o), so that a replay is recognised whatever the JSON's
// formatting or key order. A time_expire left to the default is not part of
// it, so a replay without one matches whenever it comes.
func requestHash(o Order, expireGiven bool) string {
	var expire int64
	if expireGiven {
		expire = o.TimeExpire.UnixMicro()
	}
	fields := []any{o.OutTradeNo, o.Description, o.Amount.Total, o.Amount.Currency, o.NotifyURL, o.ReturnURL,
		expire, o.Attach, o.Metadata, o.PaymentMethods}
	if o.CaptureMethod == CaptureManual { // only then: orders from before manual capture keep their hash
		fields = append(fields, o.CaptureMethod)
	}
	b, _ := json.Marshal(fields)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// diffField names the first field in which a repeated request differs from
// the stored order.
func diffField(prev, o Order, req CreateRequest) string {
	switch {
	case prev.Description != o.Description:
		return "description"
	case prev.Amount.Total != o.Amount.Total:
		return "amount.total"
	case prev.Amount.Currency != o.Amount.Currency:
		return "amount.currency"
	case prev.NotifyURL != o.NotifyURL:
		return "notify_url"
	case prev.ReturnURL != o.ReturnURL:
		return "return_url"
	case prev.Attach != o.Attach:
		return "attach"
	case !req.TimeExpire.IsZero() && !prev.TimeExpire.Equal(o.TimeExpire):
		return "time_expire"
	case !equalMaps(prev.Metadata, o.Metadata):
		return "metadata"
	case strings.Join(prev.PaymentMethods, ",") != strings.Join(o.PaymentMethods, ","):
		return "payment_methods"
	case prev.CaptureMethod != o.CaptureMethod:
		return "capture_method"
	}
	return "time_expire" // present in one request only
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkOutTradeNo(s string) error {
	if len(s) < MinOutTradeNo || len(s) > MaxOutTradeNo {
		return paygate.EField(paygate.CodeInvalidArgument, "out_trade_no", "out_trade_no must be %d to %d characters", MinOutTradeNo, MaxOutTradeNo)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '|' || c == '*'
		if !ok {
			return paygate.EField(paygate.CodeInvalidArgument, "out_trade_no", "out_trade_no may contain only letters, digits and _-|*")
		}
	}
	return nil
}

// checkText checks a free-text field: valid UTF-8 without control
// characters, min to max characters, not only spaces.
func checkText(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < min || n > max || strings.TrimSpace(s) == "" {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be %d to %d characters of text", field, min, max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s must not contain control characters", field)
		}
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return paygate.EField(paygate.CodeInvalidArgument, "metadata", "metadata may have at most %d keys", MaxMetadataKeys)
	}
	for k, v := range md {
		if len(k) == 0 || len(k) > MaxMetadataKey {
			return paygate.EField(paygate.CodeInvalidArgument, "metadata", "metadata keys must be 1 to %d characters", MaxMetadataKey)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				return paygate.EField(paygate.CodeInvalidArgument, "metadata", "metadata keys may contain only letters, digits and _-.")
			}
		}
		if v != "" {
			if err := checkText("metadata", v, 0, MaxMetadataValue); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkMethods(ms []string) error {
	if len(ms) > MaxPaymentMethods {
		return paygate.EField(paygate.CodeInvalidArgument, "payment_methods", "at most %d payment methods", MaxPaymentMethods)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		ok := len(m) >= 1 && len(m) <= MaxPaymentMethodName && !seen[m]
		for i := 0; ok && i < len(m); i++ {
			c := m[i]
			ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
		}
		if !ok {
			return paygate.EField(paygate.CodeInvalidArgument, "payment_methods", "payment methods must be distinct names of 1 to %d characters a-z, 0-9, _", MaxPaymentMethodName)
		}
		seen[m] = true
	}
	return nil
}

// Get returns the merchant's order with the id. Errors: CodeNotFound when
// there is none (another merchant's order included).
func (s *Service) Get(ctx context.Context, merchantID, id string) (Order, error) {
	o, err := s.store.Order(ctx, merchantID, id)
	if err != nil {
		return Order{}, err
	}
	return s.view(o), nil
}

// GetByOutTradeNo returns the merchant's order with the out_trade_no.
// Errors: CodeNotFound when there is none.
func (s *Service) GetByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (Order, error) {
	if checkOutTradeNo(outTradeNo) != nil {
		return Order{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	o, err := s.store.OrderByOutTradeNo(ctx, merchantID, outTradeNo)
	if err != nil {
		return Order{}, err
	}
	return s.view(o), nil
}

// Attempts returns the payment attempts of the merchant's order, oldest
// first. Errors: CodeNotFound when the order is not the merchant's.
func (s *Service) Attempts(ctx context.Context, merchantID, orderID string) ([]Attempt, error) {
	if _, err := s.store.Order(ctx, merchantID, orderID); err != nil {
		return nil, err
	}
	return s.store.OrderAttempts(ctx, orderID)
}

// InReview returns up to limit (1 to MaxPageSize) successful payments held
// for review in the suspense account, with id after afterID, oldest first:
// the operator's work list.
func (s *Service) InReview(ctx context.Context, afterID string, limit int) ([]Attempt, error) {
	if limit <= 0 || limit > MaxPageSize {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	return s.store.AttemptsInReview(ctx, afterID, limit)
}

// List returns one page of the merchant's orders, newest first, filtered
// by status and creation time. Errors: CodeInvalidArgument for a bad
// status, time range, cursor or limit.
func (s *Service) List(ctx context.Context, merchantID string, req ListRequest) (Page, error) {
	limit := req.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return Page{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	if req.Status != "" && !req.Status.Valid() {
		return Page{}, paygate.EField(paygate.CodeInvalidArgument, "status", "unknown status %q", string(req.Status))
	}
	if !req.CreatedFrom.IsZero() && !req.CreatedTo.IsZero() && !req.CreatedFrom.Before(req.CreatedTo) {
		return Page{}, paygate.EField(paygate.CodeInvalidArgument, "created_to", "the time range is empty")
	}
	q := ListQuery{MerchantID: merchantID, Status: req.Status, CreatedFrom: req.CreatedFrom, CreatedTo: req.CreatedTo, Limit: limit + 1}
	if req.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.Cursor)
		if err != nil || !strings.HasPrefix(string(b), paygate.PrefixOrder) || len(b) > 64 {
			return Page{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
		}
		q.BeforeID = string(b)
	}
	os, err := s.store.Orders(ctx, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Orders: make([]Order, 0, min(len(os), limit))}
	for i, o := range os {
		if i == limit {
			p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(os[limit-1].ID))
			break
		}
		p.Orders = append(p.Orders, s.view(o))
	}
	return p, nil
}

// Close closes the merchant's unpaid order (NOTPAY or PAYERROR) and tells
// the merchant (TRANSACTION.CLOSED). Closing a closed order returns it
// unchanged. A payment confirmed afterwards is held for review (see
// Confirm). Errors: CodeNotFound, CodeConflict when the order is paid or
// AUTHORIZED (an authorization is voided, not closed: see Void).
func (s *Service) Close(ctx context.Context, merchantID, orderID string) (Order, error) {
	var out Order
	err := s.store.InTx(ctx, func(tx Tx) error {
		o, err := tx.LockOrder(ctx, orderID)
		if err != nil {
			return err
		}
		if o.MerchantID != merchantID {
			return paygate.E(paygate.CodeNotFound, "order not found")
		}
		to, refused := next(o.Status, TriggerClose)
		if refused {
			if o.Status == StatusAuthorized {
				return paygate.E(paygate.CodeConflict, "an authorized order is not closed but voided (POST /v1/orders/{id}/void) or captured")
			}
			return paygate.E(paygate.CodeConflict, "an order in status %s cannot be closed", o.Status)
		}
		out = o
		if to == o.Status {
			return nil // already closed
		}
		out, err = s.closeOrder(ctx, tx, o, CloseMerchant)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	s.kick()
	return s.view(out), nil
}

// closeOrder closes an open order inside tx and enqueues its notification.
func (s *Service) closeOrder(ctx context.Context, tx Tx, o Order, reason string) (Order, error) {
	now := s.now()
	o.Status, o.CloseTime, o.CloseReason, o.UpdateTime = StatusClosed, now, reason, now
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Order{}, err
	}
	ev, err := s.event(o, EventClosed, "Order closed", nil)
	if err != nil {
		return Order{}, err
	}
	return o, notify.Enqueue(ctx, tx, s.clock, ev)
}

// event builds the notification of an order change.
func (s *Service) event(o Order, typ, summary string, held *Attempt) (notify.Event, error) {
	p, err := payload(s.view(o), held)
	if err != nil {
		return notify.Event{}, fmt.Errorf("payment: encode notification: %w", err)
	}
	return notify.Event{MerchantID: o.MerchantID, EventType: typ, OriginalType: OriginalType, Summary: summary,
		URL: o.NotifyURL, Payload: p, CreatedAt: s.now(), Sandbox: o.Sandbox}, nil
}

// CloseExpired closes up to limit (default 100) open orders whose
// time_expire has passed, notifying each merchant (TRANSACTION.CLOSED with
// close_reason EXPIRED), in one transaction. Several processes may run it
// at once: each order is closed once. It returns how many it closed.
func (s *Service) CloseExpired(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	n := 0
	err := s.store.InTx(ctx, func(tx Tx) error {
		n = 0
		os, err := tx.LockExpiredOrders(ctx, s.now(), limit)
		if err != nil {
			return err
		}
		for _, o := range os {
			if _, refused := next(o.Status, TriggerExpire); refused || !o.Status.Open() {
				continue
			}
			if _, err := s.closeOrder(ctx, tx, o, CloseExpired); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.kick()
	}
	return n, nil
}
