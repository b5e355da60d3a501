package payout_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payout"
	"paygate/sealing"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

const password = "Correct-horse-9"

// Recipients of the tests.
const (
	alicePhone, aliceName, aliceID = "13912345678", "张三", "110101199003071233"
	bobPhone, bobName, bobID       = "13700001111", "李四", "310104198511204567"
	carolPhone                     = "13600002222" // frozen
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

// fixture is a payout service over one database with a funded sandbox
// merchant, alice (verified, balance account), bob (verified, an own-bank
// debit card) and carol (frozen).
type fixture struct {
	db      *store.DB
	clock   *paygate.ManualClock
	led     *ledger.Ledger
	cus     *customer.Service
	svc     *payout.Service
	channel *sim.Payouts
	logs    *logBuffer
	ctx     context.Context
	mch     paygate.Merchant
	kicks   atomic.Int64

	alice, bob, carol customer.Customer
	bobCard           customer.Card
	bobCardNo         string
}

// pan returns a Luhn-valid 16-digit number under bin ending in seq.
func pan(bin string, seq int) string {
	body := bin + fmt.Sprintf("%09d", seq)
	d, _ := customer.LuhnDigit(body)
	return body + string(d)
}

// otherCard is another bank's card number the sandbox pays.
var otherCard = pan("621700", 7)

func newFixture(t testing.TB, db *store.DB, funds int64) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: paygate.NewManualClock(t0), logs: &logBuffer{}, ctx: context.Background(),
		mch: paygate.Merchant{ID: "mch_" + paygate.NewID("")[20:], Status: paygate.MerchantSandbox}}
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.cus, err = customer.New(customer.Config{Store: db.Customers(), Books: f.led, Clock: f.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	f.channel, err = sim.NewPayouts(sim.PayoutConfig{Clock: f.clock, Delay: time.Second})
	require.NoError(t, err)
	f.svc, err = payout.New(payout.Config{Store: db.Payouts(), Customers: f.cus, Books: f.led, Clock: f.clock, Keyring: kr,
		Logger: log, Payouts: f.channel, InterbankScenario: customer.SandboxInterbankOutcome, QueryInterval: time.Second,
		Kick: func() { f.kicks.Add(1) }})
	require.NoError(t, err)

	f.alice = f.register(t, alicePhone)
	f.alice, err = f.cus.VerifyRealName(f.ctx, f.alice.ID, aliceName, aliceID, alicePhone)
	require.NoError(t, err)
	f.bob = f.register(t, bobPhone)
	f.bob, err = f.cus.VerifyRealName(f.ctx, f.bob.ID, bobName, bobID, bobPhone)
	require.NoError(t, err)
	f.bobCardNo = pan(customer.SandboxOwnBIN, 1)
	f.bobCard, err = f.cus.AddCard(f.ctx, customer.AddCardRequest{CustomerID: f.bob.ID, Number: f.bobCardNo,
		Holder: customer.Holder{Name: bobName, IDNumber: bobID, Phone: bobPhone}})
	require.NoError(t, err)
	f.carol = f.register(t, carolPhone)
	f.carol, err = f.cus.SetStatus(f.ctx, f.carol.ID, customer.StatusFrozen)
	require.NoError(t, err)
	if funds > 0 {
		f.fund(t, funds)
	}
	return f
}

func (f *fixture) register(t testing.TB, phone string) customer.Customer {
	t.Helper()
	c, err := f.cus.Register(f.ctx, customer.RegisterRequest{Phone: phone, Password: password})
	require.NoError(t, err)
	return c
}

// fund credits the merchant's available balance from the sandbox funding
// account.
func (f *fixture) fund(t testing.TB, amount int64) {
	t.Helper()
	_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.SandboxFunding("CNY"), ledger.MerchantSettled(f.mch.ID, "CNY")})
	require.NoError(t, err)
	_, err = f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: paygate.NewID(paygate.PrefixTransfer),
		DebitAccountID: ledger.SandboxFunding("CNY").ID, CreditAccountID: ledger.MerchantSettled(f.mch.ID, "CNY").ID, Amount: amount}})
	require.NoError(t, err)
}

// account returns a ledger account with its balances.
func (f *fixture) account(t testing.TB, id string) ledger.Account {
	t.Helper()
	as, err := f.led.LookupAccounts(f.ctx, []string{id})
	require.NoError(t, err)
	require.Len(t, as, 1, id)
	return as[0]
}

// available is the merchant's available balance.
func (f *fixture) available(t testing.TB) int64 {
	a := f.account(t, ledger.MerchantSettled(f.mch.ID, "CNY").ID)
	return a.Available(a.Normal)
}

// balanced checks the ledger's invariants.
func (f *fixture) balanced(t testing.TB) {
	t.Helper()
	problems, err := f.db.LedgerCheck(f.ctx)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// count runs a COUNT(*) query.
func (f *fixture) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL.QueryRow(query, args...).Scan(&n))
	return n
}

// drain runs the worker and the channel follow-up until nothing is left,
// advancing the clock past the channel's delay: the batch is then final.
func (f *fixture) drain(t testing.TB) {
	t.Helper()
	for range 20 {
		_, err := f.svc.Process(f.ctx, 100)
		require.NoError(t, err)
		f.clock.Advance(2 * time.Second)
		_, err = f.svc.Reconcile(f.ctx, 100)
		require.NoError(t, err)
		if f.count(t, `SELECT COUNT(*) FROM payout_items WHERE status IN ('PENDING', 'PROCESSING')`) == 0 {
			return
		}
	}
	t.Fatal("payout items stayed open")
}

func account(phone, name string) payout.RecipientRequest {
	return payout.RecipientRequest{Type: payout.RecipientAccount, Account: phone, Name: name}
}

func card(number, name string) payout.RecipientRequest {
	return payout.RecipientRequest{Type: payout.RecipientCard, CardNumber: number, Name: name}
}

func line(no string, amount int64, r payout.RecipientRequest) payout.ItemRequest {
	return payout.ItemRequest{OutDetailNo: no, Amount: amount, Recipient: r}
}
