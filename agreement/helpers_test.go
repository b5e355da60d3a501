package agreement_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
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

const (
	mch      = "1900000001" // sandbox merchant, fee 60 bps
	mchOther = "1900000002"
)

// The sandbox customers of customer.SandboxCustomers used here.
const (
	wangPhone    = "13800000001"
	wangName     = "王小明"
	wangID       = "110101199003071233"
	cardPays     = "6288880000000013" // own debit, 50,000.00
	cardPoor     = "6288880000000021" // own debit, 0.01
	cardFrozen   = "6288880000000039"
	cardOther    = "6299990000000066" // another bank's
	cardDeclined = customer.SandboxDeclinedCard
	liName       = "李四"
	liID         = "310104198511204567"
	liPhone      = "13800000002"
	liCard       = "6288880000000054"
)

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
	smsw     *sms.Worker
	inbox    *sms.Sandbox
	dispatch *sim.ManualDispatcher
	svc      *agreement.Service
	seeded   map[string]customer.Customer // by login
	cards    map[string]customer.Card     // by number
	n        int
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, ctx: ctx, clock: paygate.NewManualClock(t0), seeded: map[string]customer.Customer{}, cards: map[string]customer.Card{}}
	log := slog.New(slog.DiscardHandler)
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	f.cus, err = customer.New(customer.Config{Store: db.Customers(), Books: f.led, Clock: f.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	smsKeys, err := sms.NewKeyring([]byte("sms sealing key of 32 bytes, ok!"))
	require.NoError(t, err)
	f.inbox = sms.NewSandbox(db.SMSInbox(), f.clock)
	f.smsw, err = sms.NewWorker(db.SMS(), smsKeys, f.inbox, f.clock, sms.Options{Logger: log})
	require.NoError(t, err)
	codes, err := otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{[]byte("otp hmac key of at least 32 bytes")}, SMSKeys: smsKeys,
		Clock: f.clock, Logger: log, ResendInterval: -1, DailyCap: -1})
	require.NoError(t, err)

	f.dispatch = sim.NewManualDispatcher(f.clock)
	var pay *payment.Service
	var co *checkout.Service
	interbank, err := sim.New(sim.Config{Name: "interbank", Secret: []byte("interbank-callback-secret-32-byt"), Clock: f.clock,
		Dispatcher: f.dispatch, Delay: time.Second, Logger: log,
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			_, err := pay.Callback(ctx, "interbank", h, body)
			return err
		}})
	require.NoError(t, err)
	ms := merchants{
		mch:      {ID: mch, Name: "Demo Shop", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60},
		mchOther: {ID: mchOther, Name: "Other Shop", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY"},
	}
	pay, err = payment.New(payment.Config{Store: db.Payments(), Ledger: f.led, Clock: f.clock, Logger: log, Merchants: ms,
		Channels: []channel.Channel{interbank},
		AttemptFailed: func(ctx context.Context, tx payment.Tx, a payment.Attempt) error {
			return co.ReleaseFailed(ctx, tx, a)
		}})
	require.NoError(t, err)
	f.pay = pay
	co, err = checkout.New(checkout.Config{Payments: pay, Customers: f.cus, Codes: codes, Clock: f.clock, Interbank: "interbank", Logger: log})
	require.NoError(t, err)
	f.svc, err = agreement.New(agreement.Config{Store: db.Agreements(), Payments: pay, Customers: f.cus, Codes: codes, Merchants: ms,
		Clock: f.clock, SignBaseURL: "https://pay.example/agreements/", Interbank: "interbank",
		InterbankScenario: customer.SandboxInterbankOutcome, Logger: log})
	require.NoError(t, err)

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

// request is a valid create request with a fresh out_agreement_no.
func (f *fixture) request(mod ...func(*agreement.Request)) agreement.Request {
	f.n++
	r := agreement.Request{OutAgreementNo: fmt.Sprintf("AGR-%03d-%s", f.n, paygate.NewID("")[24:32]), Plan: "Monthly tea box",
		Description: "One box of tea a month", NotifyURL: "https://shop.example/agreements/notify", ReturnURL: "https://shop.example/done"}
	for _, m := range mod {
		m(&r)
	}
	return r
}

// create creates a PENDING agreement.
func (f *fixture) create(t testing.TB, mod ...func(*agreement.Request)) agreement.Agreement {
	t.Helper()
	a, replay, err := f.svc.Create(f.ctx, mch, f.request(mod...))
	require.NoError(t, err)
	require.False(t, replay)
	return a
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

// sign signs the agreement with 王小明's card number.
func (f *fixture) sign(t testing.TB, id, number string) agreement.Agreement {
	t.Helper()
	ch, err := f.svc.StartSign(f.ctx, id, agreement.SignCard{Number: number, Name: wangName, IDNumber: wangID, Phone: wangPhone})
	require.NoError(t, err)
	a, err := f.svc.ConfirmSign(f.ctx, id, ch.CardID, f.code(t, wangPhone))
	require.NoError(t, err)
	return a
}

// signed creates and signs an agreement with the card.
func (f *fixture) signed(t testing.TB, number string, mod ...func(*agreement.Request)) agreement.Agreement {
	t.Helper()
	return f.sign(t, f.create(t, mod...).ID, number)
}

// charge is a charge request of amount fen with a fresh out_trade_no.
func charge(amount int64) agreement.ChargeRequest {
	return agreement.ChargeRequest{OutTradeNo: "C" + paygate.NewID("")[12:32], Description: "Tea box, November",
		Amount: payment.AmountRequest{Total: amount}}
}

func (f *fixture) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL.QueryRowContext(f.ctx, q, args...).Scan(&n))
	return n
}

// events counts the outbox rows of the type naming the id.
func (f *fixture) events(t testing.TB, typ, id string) int {
	t.Helper()
	return f.count(t, `SELECT count(*) FROM notify_events WHERE event_type = $1 AND payload LIKE '%' || $2 || '%'`, typ, id)
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

// requireCode asserts err carries code.
func requireCode(t testing.TB, code paygate.Code, err error, msg ...any) {
	t.Helper()
	require.Error(t, err, msg...)
	require.Equal(t, code, paygate.CodeOf(err), "%v %v", err, msg)
}

// requireField asserts err carries code and names field.
func requireField(t testing.TB, code paygate.Code, field string, err error) {
	t.Helper()
	requireCode(t, code, err)
	var pe *paygate.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, field, pe.Field, "%v", err)
}
