// Package netbank is the sandbox bank's online banking ("Sandbox Bank"), a
// channel that takes the payer to the bank's own pages: paygate's checkout
// starts a payment with Pay, which answers a RedirectURL; there the payer
// logs in to online banking, picks one of their own-bank cards and
// confirms with the payment password; the bank debits the card, sends the
// result to paygate as an HMAC-signed callback (asynchronously, like every
// channel) and sends the payer back to the merchant's return_url with the
// result. The order's truth still arrives by the callback (or Query), never
// by the redirect.
//
// The money moves at the confirmation, in one database transaction with
// the payer's limit usage (customer.Service.Reserve with
// customer.MethodOnlineBanking): card account → the channel's clearing
// account, ledger.ChannelClearing(Name, currency), transfer id TransferPrefix
// + attempt id. That transfer id makes a confirmation idempotent and Query
// durable: whoever finds the transfer in the ledger knows the payment
// succeeded, even after a restart. payment.Service.Confirm then moves the
// money on from clearing to the merchant.
//
// Payment sessions live in memory (bounded; each ends at the order's
// expiry or SessionTTL after Pay, whichever comes first). A restart
// forgets the sessions in flight: their payers must start again from the
// checkout, and Query knows them only through the ledger and the trade
// number (see Query).
//
// Pages: Register mounts them under /sandbox/bank/ (pages.go).
package netbank

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payment"
)

// Name is the channel's name: its clearing account and its orders' channel.
const Name = "netbank"

// BankName is the name the pages show.
const BankName = "Sandbox Bank"

// TransferPrefix starts the id of the ledger transfer of a payment:
// TransferPrefix + attempt id.
const TransferPrefix = "nb_"

// TransferCode is the ledger code of that transfer (card → clearing).
const TransferCode = 20

// Fail codes of the FAILED results the bank reports.
const (
	FailCancelled      = "PAYER_CANCELLED"   // the payer pressed Cancel
	FailSessionExpired = "SESSION_EXPIRED"   // nobody confirmed before the session ended
	FailNotPayable     = "ORDER_NOT_PAYABLE" // the order was paid another way, closed or expired
)

// Results the payer's browser brings back to the return URL (parameter
// "result"). Only the callback is the order's truth.
const (
	ResultSuccess   = "SUCCESS"
	ResultCancelled = "CANCELLED"
	ResultFailed    = "FAILED"
)

// Callback header names.
const (
	HeaderTimestamp = "Netbank-Timestamp"
	HeaderNonce     = "Netbank-Nonce"
	HeaderSignature = "Netbank-Signature"
)

// Defaults of Config.
const (
	DefaultSessionTTL  = 15 * time.Minute
	DefaultMaxSessions = 10_000
	// TokenTTL is how long a login stays good for the confirmation step.
	TokenTTL = 5 * time.Minute
	// expiredGrace: a forgotten session is reported FAILED only this long
	// after its end, so a confirmation another process began before the
	// end has committed.
	expiredGrace = time.Minute
	// retain: sessions stay in memory this long after they end, so Query
	// answers from them.
	retain = time.Hour
)

// Tx is the transaction a confirmation runs in: the customer store's (for
// the limit usage) and the ledger's. store.Tx implements it.
type Tx interface {
	customer.Tx
	ledger.Tx
}

// InTx runs fn in one database transaction, committing when it returns nil
// (and retrying it on transient conflicts, so fn has no other effects).
// With a *store.DB:
//
//	func(ctx context.Context, fn func(netbank.Tx) error) error {
//		return db.InTx(ctx, func(tx *store.Tx) error { return fn(tx) })
//	}
type InTx func(ctx context.Context, fn func(Tx) error) error

// Customers is what the bank uses of customers; *customer.Service
// implements it.
type Customers interface {
	Login(ctx context.Context, login, password string) (customer.Customer, error)
	Customer(ctx context.Context, id string) (customer.Customer, error)
	Cards(ctx context.Context, customerID string) ([]customer.Card, error)
	Card(ctx context.Context, customerID, cardID string) (customer.Card, error)
	CardBalance(ctx context.Context, customerID, cardID string) (paygate.Money, error)
	VerifyPayPassword(ctx context.Context, id, pin string) error
	Reserve(ctx context.Context, tx customer.Tx, customerID, cardID string, method customer.Method, amount int64, day paygate.Date) (customer.Reservation, error)
}

// Ledger is what the bank uses of the ledger; *ledger.Ledger implements it.
type Ledger interface {
	CreateAccounts(ctx context.Context, accounts []ledger.Account) ([]ledger.Account, error)
	LookupTransfers(ctx context.Context, ids []string) ([]ledger.Transfer, error)
	Apply(ctx context.Context, tx ledger.Tx, transfers []ledger.Transfer) ([]ledger.Result, error)
}

// Orders tells whether an order may still be paid; *payment.Service
// implements it. CheckoutView fails with CodeNotFound for an unknown id.
type Orders interface {
	CheckoutView(ctx context.Context, orderID string) (payment.CheckoutOrder, error)
}

// OrdersFunc adapts a function to Orders: the payment service is built
// with the bank among its channels, so the bank reaches it through a
// closure.
type OrdersFunc func(ctx context.Context, orderID string) (payment.CheckoutOrder, error)

// CheckoutView calls f.
func (f OrdersFunc) CheckoutView(ctx context.Context, orderID string) (payment.CheckoutOrder, error) {
	return f(ctx, orderID)
}

// Config configures a Bank. Secret, Clock, Dispatcher, Deliver, Customers,
// Ledger, InTx and Orders are required; zero settings take the defaults
// shown.
type Config struct {
	// BaseURL is the public URL paygate (and so the sandbox bank) is
	// reached at, "https://pay.example.com": RedirectURL is BaseURL +
	// "/sandbox/bank/pay/" + attempt id. Empty: a path-only URL. Cookies
	// are Secure when it is https.
	BaseURL    string
	Secret     []byte         // callback HMAC key, at least sim.MinSecretLen bytes
	Clock      paygate.Clock  // sessions, tokens, callbacks
	Dispatcher sim.Dispatcher // runs callbacks later
	Deliver    sim.Deliver    // sends a callback to paygate (payment.Service.Callback)
	Customers  Customers
	Ledger     Ledger
	InTx       InTx
	Orders     Orders
	// Calendar dates the payer's limit usage by business day (the
	// ledger's calendar). Zero: paygate.DefaultCalendar().
	Calendar paygate.Calendar
	Logger   *slog.Logger // nil: slog.Default()
	// CSRFKey keys the pages' CSRF and login tokens (HMAC-SHA256, at
	// least 32 bytes); every node serving one URL needs the same key.
	// nil: a random key for this process.
	CSRFKey []byte
	// BackURL returns where the payer goes back to when the order has no
	// return_url: the order's checkout page. nil: the bank shows the
	// result itself.
	BackURL func(orderID string) string

	SessionTTL  time.Duration // Pay → session end at the latest; default DefaultSessionTTL
	MaxSessions int           // sessions kept in memory; default DefaultMaxSessions
	Delay       time.Duration // confirmation → callback; default 0 (at once, on the Dispatcher)
	RetryDelay  time.Duration // refused callback → next try; default 15s
	MaxTries    int           // deliveries of one callback; default 8
}

// Bank is the sandbox bank's online banking: a channel.Channel and
// channel.CallbackVerifier, and its pages (Register). It is safe for
// concurrent use.
type Bank struct {
	cfg      Config
	cb       *sim.Callbacks
	log      *slog.Logger
	tradeKey []byte
	csrfKey  []byte
	secure   bool
	pages    *pages
	static   http.Handler
	accounts sync.Map // currency → clearing account created

	mu       sync.Mutex
	sessions map[string]*session // by attempt id
	byTrade  map[string]string   // attempt id by trade number
	orders   map[string]*orderState
}

// state is where a session stands.
type state int

const (
	open   state = iota
	paid         // the transfer committed
	failed       // cancelled, expired, or the order not payable
)

// session is one payment waiting for its payer at the bank.
type session struct {
	req      channel.PayRequest
	tradeNo  string
	accepted time.Time
	ends     time.Time
	ord      *orderState
	// guarded by Bank.mu; changed only while ord is locked
	state    state
	failCode string
	why      string // why the order could not be paid (FailNotPayable)
	paidAt   time.Time
}

// orderState is shared by the sessions of one order: confirmations and
// cancellations of one order run one at a time (two attempts of one order
// in two tabs cannot both take money).
type orderState struct {
	sem    chan struct{}
	paidBy string // attempt id of the session that took the money; guarded by Bank.mu
	n      int    // sessions referring to it; guarded by Bank.mu
}

func (o *orderState) lock(ctx context.Context) error {
	select {
	case o.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *orderState) tryLock() bool {
	select {
	case o.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (o *orderState) unlock() { <-o.sem }

var (
	_ channel.Channel          = (*Bank)(nil)
	_ channel.CallbackVerifier = (*Bank)(nil)
)

// New returns a Bank. Errors: CodeInvalidArgument for a missing
// dependency, a short secret or key, or a bad BaseURL.
func New(cfg Config) (*Bank, error) {
	switch {
	case cfg.Customers == nil || cfg.Ledger == nil || cfg.InTx == nil || cfg.Orders == nil:
		return nil, paygate.E(paygate.CodeInvalidArgument, "netbank: Customers, Ledger, InTx and Orders are required")
	case cfg.CSRFKey != nil && len(cfg.CSRFKey) < 32:
		return nil, paygate.E(paygate.CodeInvalidArgument, "netbank: CSRFKey must be at least 32 bytes")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, paygate.E(paygate.CodeInvalidArgument, "netbank: BaseURL must be an absolute http(s) URL")
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cb, err := sim.NewCallbacks(sim.CallbackConfig{Channel: Name, Secret: cfg.Secret, Clock: cfg.Clock, Dispatcher: cfg.Dispatcher,
		Deliver: cfg.Deliver, RetryDelay: cfg.RetryDelay, MaxTries: cfg.MaxTries, Logger: cfg.Logger,
		Headers: sim.CallbackHeaders{Timestamp: HeaderTimestamp, Nonce: HeaderNonce, Signature: HeaderSignature}})
	if err != nil {
		return nil, err
	}
	if cfg.Calendar.Location == nil {
		cfg.Calendar = paygate.DefaultCalendar()
	}
	if cfg.CSRFKey == nil {
		cfg.CSRFKey = make([]byte, 32)
		rand.Read(cfg.CSRFKey)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Delay < 0 {
		cfg.Delay = 0
	}
	p, static, err := parsePages()
	if err != nil {
		return nil, err
	}
	b := &Bank{cfg: cfg, cb: cb, log: cfg.Logger, pages: p, static: static,
		tradeKey: derive(cfg.Secret, "netbank trade numbers"), csrfKey: derive(cfg.CSRFKey, "netbank pages"),
		secure:   strings.HasPrefix(cfg.BaseURL, "https://"),
		sessions: map[string]*session{}, byTrade: map[string]string{}, orders: map[string]*orderState{}}
	b.cfg.Secret, b.cfg.CSRFKey = nil, nil // kept derived only
	return b, nil
}

// derive returns a key for one purpose from a secret.
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Name returns "netbank".
func (b *Bank) Name() string { return Name }

// validAttemptID accepts ids that are safe in a URL path and a ledger
// transfer id: 1 to 64 letters, digits, '_' and '-'.
func validAttemptID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Pay opens a payment session for the payer and answers where to send
// them: RedirectURL, the bank's login page for the attempt. Nothing is
// charged until the payer confirms there. Paying the same AttemptID again
// returns the first acceptance. The session ends at the order's ExpiresAt
// or SessionTTL from now, whichever is first. Errors (all matching
// channel.ErrDeclined): a malformed request (attempt id, order id,
// amount, currency), an order already expired, or the bank holding
// MaxSessions sessions.
func (b *Bank) Pay(ctx context.Context, req channel.PayRequest) (channel.Accepted, error) {
	if !validAttemptID(req.AttemptID) || req.OrderID == "" || req.Amount <= 0 || !req.Currency.Valid() {
		return channel.Accepted{}, fmt.Errorf("netbank: malformed payment: %w", channel.ErrDeclined)
	}
	now := b.cfg.Clock.Now().UTC()
	ends := now.Add(b.cfg.SessionTTL)
	if !req.ExpiresAt.IsZero() && req.ExpiresAt.Before(ends) {
		ends = req.ExpiresAt.UTC()
	}
	if !now.Before(ends) {
		return channel.Accepted{}, fmt.Errorf("netbank: the order has expired: %w", channel.ErrDeclined)
	}
	if req.ReturnURL != "" && returnTo(req.ReturnURL, req.OrderID, ResultSuccess, false) == "" {
		req.ReturnURL = "" // not a URL to send anyone to; BackURL instead
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.sessions[req.AttemptID]; ok {
		return channel.Accepted{ChannelTradeNo: s.tradeNo, AcceptedAt: s.accepted, RedirectURL: b.payURL(req.AttemptID)}, nil
	}
	if len(b.sessions) >= b.cfg.MaxSessions {
		b.prune(now)
		if len(b.sessions) >= b.cfg.MaxSessions {
			b.log.Warn("netbank: too many payment sessions; declining", "attempt_id", req.AttemptID, "sessions", len(b.sessions))
			return channel.Accepted{}, fmt.Errorf("netbank: the bank is busy: %w", channel.ErrDeclined)
		}
	}
	o := b.orders[req.OrderID]
	if o == nil {
		o = &orderState{sem: make(chan struct{}, 1)}
		b.orders[req.OrderID] = o
	}
	o.n++
	s := &session{req: req, tradeNo: b.tradeNo(req, ends), accepted: now, ends: ends, ord: o}
	b.sessions[req.AttemptID] = s
	b.byTrade[s.tradeNo] = req.AttemptID
	b.log.InfoContext(ctx, "netbank: payment session opened", "attempt_id", req.AttemptID, "order_id", req.OrderID, "ends", ends)
	return channel.Accepted{ChannelTradeNo: s.tradeNo, AcceptedAt: now, RedirectURL: b.payURL(req.AttemptID)}, nil
}

// prune forgets sessions that ended more than retain ago. b.mu is held.
func (b *Bank) prune(now time.Time) {
	for id, s := range b.sessions {
		if now.Sub(s.ends) < retain {
			continue
		}
		delete(b.sessions, id)
		delete(b.byTrade, s.tradeNo)
		if s.ord.n--; s.ord.n == 0 {
			delete(b.orders, s.req.OrderID)
		}
	}
}

// payURL is the login page of an attempt.
func (b *Bank) payURL(attemptID string) string {
	return b.cfg.BaseURL + "/sandbox/bank/pay/" + attemptID
}

// tradeNo is the bank's number for a payment. It carries the session's
// end, the amount and the currency, with a MAC binding them to the
// attempt, so that Query can report a session it no longer knows (a
// restart) once it has ended: "NB<end unix>-<amount><currency>-<mac>".
func (b *Bank) tradeNo(req channel.PayRequest, ends time.Time) string {
	body := strconv.FormatInt(ends.Unix(), 10) + "-" + strconv.FormatInt(req.Amount, 10) + string(req.Currency)
	return "NB" + body + "-" + b.tradeMAC(req.AttemptID, body)
}

func (b *Bank) tradeMAC(attemptID, body string) string {
	m := hmac.New(sha256.New, b.tradeKey)
	m.Write([]byte(attemptID + "\x00" + body))
	return hex.EncodeToString(m.Sum(nil)[:10])
}

// tradeInfo is what a trade number says.
type tradeInfo struct {
	ends     time.Time
	amount   int64
	currency paygate.Currency
}

// parseTrade reads a trade number the bank issued for the attempt.
func (b *Bank) parseTrade(tradeNo, attemptID string) (tradeInfo, bool) {
	rest, ok := strings.CutPrefix(tradeNo, "NB")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 0 || len(rest) > 64 {
		return tradeInfo{}, false
	}
	body, mac := rest[:i], rest[i+1:]
	if !hmac.Equal([]byte(mac), []byte(b.tradeMAC(attemptID, body))) {
		return tradeInfo{}, false
	}
	exp, money, _ := strings.Cut(body, "-")
	if len(money) < 4 {
		return tradeInfo{}, false
	}
	sec, err1 := strconv.ParseInt(exp, 10, 64)
	amount, err2 := strconv.ParseInt(money[:len(money)-3], 10, 64)
	cur := paygate.Currency(money[len(money)-3:])
	if err1 != nil || err2 != nil || !cur.Valid() {
		return tradeInfo{}, false
	}
	return tradeInfo{ends: time.Unix(sec, 0), amount: amount, currency: cur}, true
}

// Query reports a payment from durable state first: the ledger holding
// its transfer (TransferPrefix + attempt id) means SUCCESS, even after a
// restart. Otherwise a session this bank knows is PROCESSING while it is
// open, and FAILED once cancelled (FailCancelled), ended unconfirmed
// (FailSessionExpired) or refused because the order was no longer payable
// (FailNotPayable). A session it no longer knows (a restart) is FAILED
// with FailSessionExpired once the end its trade number carries has
// passed. Errors: channel.ErrUnknownPayment when the bank knows nothing of
// the payment; the ledger's errors (the outcome is then unknown).
func (b *Bank) Query(ctx context.Context, q channel.QueryRequest) (channel.Result, error) {
	unknown := fmt.Errorf("netbank: query: %w", channel.ErrUnknownPayment)
	id := q.AttemptID
	b.mu.Lock()
	if q.ChannelTradeNo != "" {
		if a, ok := b.byTrade[q.ChannelTradeNo]; ok && (id == "" || id == a) {
			id = a
		}
	}
	s := b.sessions[id]
	b.mu.Unlock()
	if !validAttemptID(id) {
		return channel.Result{}, unknown
	}
	if s != nil && ((q.OrderID != "" && q.OrderID != s.req.OrderID) || (q.ChannelTradeNo != "" && q.ChannelTradeNo != s.tradeNo)) {
		return channel.Result{}, unknown
	}
	ts, err := b.cfg.Ledger.LookupTransfers(ctx, []string{TransferPrefix + id})
	if err != nil {
		return channel.Result{}, fmt.Errorf("netbank: query the ledger: %w", err)
	}
	if len(ts) == 1 {
		t := ts[0]
		if q.ChannelTradeNo != "" && t.Ref != q.ChannelTradeNo {
			return channel.Result{}, unknown
		}
		r := channel.Result{Channel: Name, ChannelTradeNo: t.Ref, AttemptID: id, Status: channel.StatusSuccess,
			Amount: t.Amount, Currency: t.Currency, PaidAt: t.CreatedAt}
		if s != nil {
			r.OrderID = s.req.OrderID
		}
		return r, nil
	}
	now := b.cfg.Clock.Now()
	if s == nil {
		if t, ok := b.parseTrade(q.ChannelTradeNo, id); ok && now.Sub(t.ends) >= expiredGrace {
			return channel.Result{Channel: Name, ChannelTradeNo: q.ChannelTradeNo, AttemptID: id, Status: channel.StatusFailed,
				Amount: t.amount, Currency: t.currency, FailCode: FailSessionExpired}, nil
		}
		return channel.Result{}, unknown
	}
	b.mu.Lock()
	st, code := s.state, s.failCode
	b.mu.Unlock()
	if st == open && !now.Before(s.ends) && s.ord.tryLock() {
		st, code = b.expire(s)
		s.ord.unlock()
	}
	r := b.result(s)
	if st == failed {
		r.Status, r.FailCode = channel.StatusFailed, code
	}
	return r, nil // paid without a transfer a moment ago: it is committing; PROCESSING
}

// expire ends an open session whose time is up (ord locked); it returns
// the session's state.
func (b *Bank) expire(s *session) (state, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.state == open {
		s.state, s.failCode = failed, FailSessionExpired
	}
	return s.state, s.failCode
}

// result is the session's payment as PROCESSING.
func (b *Bank) result(s *session) channel.Result {
	return channel.Result{Channel: Name, ChannelTradeNo: s.tradeNo, AttemptID: s.req.AttemptID, OrderID: s.req.OrderID,
		Status: channel.StatusProcessing, Amount: s.req.Amount, Currency: s.req.Currency}
}

// VerifyCallback authenticates a callback of the bank (headers
// Netbank-Timestamp, -Nonce and -Signature, the HMAC-SHA256 of
// "TIMESTAMP\nNONCE\nBODY\n" under Config.Secret; timestamp within
// sim.Window) and decodes its Result. Errors: CodeUnauthenticated (forged,
// tampered, stale); CodeInvalidArgument (an authentic but malformed body).
func (b *Bank) VerifyCallback(h http.Header, body []byte) (channel.Result, error) {
	return b.cb.Verify(h, body)
}

// Sign returns callback headers for body at t (tests, tools).
func (b *Bank) Sign(t time.Time, nonce string, body []byte) http.Header {
	return b.cb.Sign(t, nonce, body)
}
