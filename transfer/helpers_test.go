package transfer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/sealing"
	"paygate/store"
	"paygate/transfer"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

const (
	day0     = paygate.Date("2026-11-22")
	password = "Correct-horse-9"
	pin      = "271828"
	otherPIN = "314159"
)

// Identities of the tests.
const (
	alicePhone, aliceName, aliceID = "13912345678", "张三", "110101199003071233"
	bobPhone, bobName, bobID       = "13700001111", "李四", "310104198511204567"
	carolPhone                     = "13600002222"
	davePhone                      = "13500003333"
)

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixture is a customer service and a transfer service over one database,
// with alice (verified, payment password set, ¥10,000.00 on her balance),
// bob (verified, an own debit card and a frozen one), carol (frozen) and
// dave (active, online payment off, ¥100.00).
type fixture struct {
	db      *store.DB
	clock   *paygate.ManualClock
	led     *ledger.Ledger
	cus     *customer.Service
	svc     *transfer.Service
	payouts *sim.Payouts
	logs    *logBuffer
	ctx     context.Context

	alice, bob, carol, dave customer.Customer
	bobCard, bobFrozen      customer.Card
	bobCardNo, frozenNo     string
}

func testKeys(t testing.TB) (*sealing.Keyring, *sealing.BlindIndex) {
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	return kr, idx
}

// pan returns a Luhn-valid 16-digit number under bin ending in seq.
func pan(bin string, seq int) string {
	body := bin + fmt.Sprintf("%09d", seq)
	d, _ := customer.LuhnDigit(body)
	return body + string(d)
}

type fixtureOpts struct {
	limits     *customer.Limits
	payLockout *customer.Lockout
	scenario   func(customer.Card) string
	noPayout   bool
}

func newFixture(t testing.TB, db *store.DB, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: paygate.NewManualClock(t0), logs: &logBuffer{}, ctx: context.Background()}
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	kr, idx := testKeys(t)
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ccfg := customer.Config{Store: db.Customers(), Books: f.led, Clock: f.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}}
	if o.limits != nil {
		ccfg.Limits = *o.limits
	}
	if o.payLockout != nil {
		ccfg.PayLockout = *o.payLockout
	}
	var err error
	f.cus, err = customer.New(ccfg)
	require.NoError(t, err)
	f.payouts, err = sim.NewPayouts(sim.PayoutConfig{Clock: f.clock})
	require.NoError(t, err)
	tcfg := transfer.Config{Store: db.Transfers(), Customers: f.cus, Books: f.led, Clock: f.clock, Keyring: kr, Logger: log,
		Payouts: f.payouts, InterbankScenario: customer.SandboxInterbankOutcome}
	if o.scenario != nil {
		tcfg.InterbankScenario = o.scenario
	}
	if o.noPayout {
		tcfg.Payouts = nil
	}
	f.svc, err = transfer.New(tcfg)
	require.NoError(t, err)

	f.alice = f.register(t, alicePhone)
	f.alice, err = f.cus.VerifyRealName(f.ctx, f.alice.ID, aliceName, aliceID, alicePhone)
	require.NoError(t, err)
	_, err = f.cus.SetPayPassword(f.ctx, f.alice.ID, password, pin)
	require.NoError(t, err)
	f.fund(t, f.cus.BalanceAccount(f.alice.ID), 1_000_000)

	f.bob = f.register(t, bobPhone)
	f.bob, err = f.cus.VerifyRealName(f.ctx, f.bob.ID, bobName, bobID, bobPhone)
	require.NoError(t, err)
	_, err = f.cus.SetPayPassword(f.ctx, f.bob.ID, password, otherPIN)
	require.NoError(t, err)
	bobHolder := customer.Holder{Name: bobName, IDNumber: bobID, Phone: bobPhone}
	f.bobCardNo, f.frozenNo = pan(customer.SandboxOwnBIN, 1), pan(customer.SandboxOwnBIN, 2)
	f.bobCard, err = f.cus.AddCard(f.ctx, customer.AddCardRequest{CustomerID: f.bob.ID, Number: f.bobCardNo, Holder: bobHolder})
	require.NoError(t, err)
	f.bobFrozen, err = f.cus.AddCard(f.ctx, customer.AddCardRequest{CustomerID: f.bob.ID, Number: f.frozenNo, Holder: bobHolder})
	require.NoError(t, err)
	_, err = f.cus.SetCardStatus(f.ctx, f.bob.ID, f.bobFrozen.ID, customer.StatusFrozen)
	require.NoError(t, err)

	f.carol = f.register(t, carolPhone)
	f.carol, err = f.cus.SetStatus(f.ctx, f.carol.ID, customer.StatusFrozen)
	require.NoError(t, err)

	f.dave = f.register(t, davePhone)
	_, err = f.cus.SetPayPassword(f.ctx, f.dave.ID, password, pin)
	require.NoError(t, err)
	f.dave, err = f.cus.SetOnlinePayment(f.ctx, f.dave.ID, false)
	require.NoError(t, err)
	f.fund(t, f.cus.BalanceAccount(f.dave.ID), 10_000)
	return f
}

func (f *fixture) register(t testing.TB, phone string) customer.Customer {
	t.Helper()
	c, err := f.cus.Register(f.ctx, customer.RegisterRequest{Phone: phone, Password: password})
	require.NoError(t, err)
	return c
}

// fund credits an account from the sandbox funding account.
func (f *fixture) fund(t testing.TB, account string, amount int64) {
	t.Helper()
	_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.SandboxFunding("CNY")})
	require.NoError(t, err)
	_, err = f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: paygate.NewID(paygate.PrefixTransfer),
		DebitAccountID: ledger.SandboxFunding("CNY").ID, CreditAccountID: account, Amount: amount}})
	require.NoError(t, err)
}

// balance is the available balance of a customer's balance account.
func (f *fixture) balance(t testing.TB, customerID string) int64 {
	t.Helper()
	m, err := f.cus.Balance(f.ctx, customerID)
	require.NoError(t, err)
	return m.Amount
}

// cardBalance is the available balance of an own-bank card.
func (f *fixture) cardBalance(t testing.TB, c customer.Card) int64 {
	t.Helper()
	m, err := f.cus.CardBalance(f.ctx, c.CustomerID, c.ID)
	require.NoError(t, err)
	return m.Amount
}

// usage is the customer's transfer usage today (customer total, method).
func (f *fixture) usage(t testing.TB, customerID string) customer.Usage {
	t.Helper()
	u, err := f.cus.UsageOn(f.ctx, customerID, "", customer.MethodTransfer, day0)
	require.NoError(t, err)
	return u
}

// rows counts the customer_transfers rows.
func (f *fixture) rows(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL.QueryRow(`SELECT COUNT(*) FROM customer_transfers`).Scan(&n))
	return n
}

// balanced checks the ledger's invariants.
func (f *fixture) balanced(t testing.TB) {
	t.Helper()
	problems, err := f.db.LedgerCheck(f.ctx)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func cny(fen int64) paygate.Money { return paygate.Money{Amount: fen, Currency: "CNY"} }

// req is a request from alice's side with a fresh request id.
func req(to string, fen int64) transfer.Request {
	return transfer.Request{RequestID: paygate.NewID("req_"), To: to, Amount: cny(fen), PayPassword: pin}
}
