package checkout_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/checkout"
	"paygate/customer"
	"paygate/ledger"
	"paygate/otp"
	"paygate/payment"
	"paygate/sealing"
	"paygate/sms"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// day0 is t0's business date.
const day0 = paygate.Date("2026-11-22")

const (
	mch      = "1900000001" // sandbox merchant, fee 60 bps
	mchOther = "1900000002"
)

// The sandbox customers of customer.SandboxCustomers used here.
const (
	wangPhone   = "13800000001"
	wangName    = "王小明"
	wangID      = "110101199003071233"
	wangPIN     = "135790"
	cardPays    = "6288880000000013" // own debit, bound, 50,000.00
	cardPoor    = "6288880000000021" // own debit, 0.01
	cardFrozen  = "6288880000000039"
	cardCorp    = "6288880000000047" // corporate, 100,000.00
	cardOther   = "6299990000000066" // another bank's, bound
	liPIN       = "246801"
	liCard      = "6288880000000054" // 李四's own debit, 2,000.00
	noPINPhone  = "13800000003"
	wangBalance = 1_000_000
)

var fastHash = customer.HashParams{Time: 1, Memory: 64, Threads: 1}

type merchants map[string]paygate.Merchant

func (m merchants) Merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	v, ok := m[id]
	if !ok {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "merchant not found")
	}
	return v, nil
}

type fixture struct {
	db       *store.DB
	ctx      context.Context
	clock    *paygate.ManualClock
	led      *ledger.Ledger
	pay      *payment.Service
	cus      *customer.Service
	codes    *otp.Service
	smsw     *sms.Worker
	inbox    *sms.Sandbox
	dispatch *sim.ManualDispatcher
	co       *checkout.Service
	seeded   map[string]customer.Customer // by login
	cards    map[string]customer.Card     // by number
}

func newFixture(t testing.TB, db *store.DB, opts ...func(*customer.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, ctx: ctx, clock: paygate.NewManualClock(t0), seeded: map[string]customer.Customer{}, cards: map[string]customer.Card{}}
	log := slog.New(slog.DiscardHandler)
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	ccfg := customer.Config{Store: db.Customers(), Books: f.led, Clock: f.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: fastHash}
	for _, o := range opts {
		o(&ccfg)
	}
	f.cus, err = customer.New(ccfg)
	require.NoError(t, err)
	smsKeys, err := sms.NewKeyring([]byte("sms sealing key of 32 bytes, ok!"))
	require.NoError(t, err)
	f.inbox = sms.NewSandbox(db.SMSInbox(), f.clock)
	f.smsw, err = sms.NewWorker(db.SMS(), smsKeys, f.inbox, f.clock, sms.Options{Logger: log})
	require.NoError(t, err)
	f.codes, err = otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{[]byte("otp hmac key of at least 32 bytes")}, SMSKeys: smsKeys,
		Clock: f.clock, Logger: log, ResendInterval: -1, DailyCap: -1})
	require.NoError(t, err)

	f.dispatch = sim.NewManualDispatcher(f.clock)
	var svc *payment.Service
	var co *checkout.Service
	interbank, err := sim.New(sim.Config{Name: "interbank", Secret: []byte("interbank-callback-secret-32-byt"), Clock: f.clock,
		Dispatcher: f.dispatch, Delay: time.Second, Logger: log,
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			_, err := svc.Callback(ctx, "interbank", h, body)
			return err
		}})
	require.NoError(t, err)
	svc, err = payment.New(payment.Config{Store: db.Payments(), Ledger: f.led, Clock: f.clock, Logger: log,
		Merchants: merchants{
			mch:      {ID: mch, Name: "Demo Shop", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60},
			mchOther: {ID: mchOther, Name: "Other Shop", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY"},
		},
		Channels: []channel.Channel{interbank},
		AttemptFailed: func(ctx context.Context, tx payment.Tx, a payment.Attempt) error {
			return co.ReleaseFailed(ctx, tx, a)
		}})
	require.NoError(t, err)
	f.pay = svc
	co, err = checkout.New(checkout.Config{Payments: svc, Customers: f.cus, Codes: f.codes, Clock: f.clock,
		Interbank: "interbank", InterbankScenario: customer.SandboxInterbankOutcome, Logger: log})
	require.NoError(t, err)
	f.co = co

	res, err := f.cus.Seed(ctx)
	require.NoError(t, err)
	for i, r := range res {
		sc := customer.SandboxCustomers[i]
		f.seeded[sc.Phone+sc.Username] = r.Customer
		for j, c := range r.Cards {
			f.cards[sc.Cards[j].Number] = c
		}
	}
	return f
}

// order creates an order of the merchant for amount fen.
func (f *fixture) order(t testing.TB, amount int64, opts ...func(*payment.CreateRequest)) payment.Order {
	t.Helper()
	req := payment.CreateRequest{OutTradeNo: "T" + paygate.NewID("")[10:32], Description: "Tea",
		Amount: payment.AmountRequest{Total: amount, Currency: "CNY"}, NotifyURL: "https://shop.example/notify"}
	for _, o := range opts {
		o(&req)
	}
	o, _, err := f.pay.Create(f.ctx, mch, req)
	require.NoError(t, err)
	return o
}

// code delivers the waiting SMS and returns the latest code sent to phone.
func (f *fixture) code(t testing.TB, phone string) string {
	t.Helper()
	_, err := f.smsw.RunOnce(f.ctx)
	require.NoError(t, err)
	m, err := f.inbox.Latest(f.ctx, phone)
	require.NoError(t, err)
	require.NotEmpty(t, m.Code())
	return m.Code()
}

// status returns the order's status.
func (f *fixture) status(t testing.TB, id string) payment.Status {
	t.Helper()
	o, err := f.pay.Get(f.ctx, mch, id)
	require.NoError(t, err)
	return o.Status
}

// available returns an account's available balance.
func (f *fixture) available(t testing.TB, account string) int64 {
	t.Helper()
	as, err := f.led.LookupAccounts(f.ctx, []string{account})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Available(as[0].Normal)
}

// balanced checks the ledger's invariants.
func (f *fixture) balanced(t testing.TB) {
	t.Helper()
	problems, err := f.db.LedgerCheck(f.ctx)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// usage returns the customer's usage today with method and card.
func (f *fixture) usage(t testing.TB, customerID, cardID string, m customer.Method) customer.Usage {
	t.Helper()
	u, err := f.cus.UsageOn(f.ctx, customerID, cardID, m, day0)
	require.NoError(t, err)
	return u
}

var wangHolder = checkout.QuickPayCard{Name: wangName, IDNumber: wangID, Phone: wangPhone}

func withCard(number string) checkout.QuickPayCard {
	c := wangHolder
	c.Number = number
	return c
}

// requireCode asserts err carries code.
func requireCode(t testing.TB, code paygate.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, paygate.CodeOf(err), "%v", err)
}

var _ = fmt.Sprintf
var _ sync.Mutex
