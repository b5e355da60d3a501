package customer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/sealing"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// day0 is t0's business date.
const day0 = paygate.Date("2026-11-22")

// fastHash keeps argon2id cheap in tests; production uses DefaultHashParams.
var fastHash = customer.HashParams{Time: 1, Memory: 64, Threads: 1}

const (
	password = "Correct-horse-9"
	pin      = "271828"
)

// Identities of the tests: valid check digits, different people.
const (
	alicePhone = "13912345678"
	aliceName  = "张三"
	aliceID    = "110101199003071233"
	bobID      = "310104198511204567"
	bobName    = "李四"
	bobPhone   = "13700001111"
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

type fixture struct {
	db    *store.DB
	clock *paygate.ManualClock
	led   *ledger.Ledger
	svc   *customer.Service
	logs  *logBuffer
	ctx   context.Context
}

func testKeys(t testing.TB) (*sealing.Keyring, *sealing.BlindIndex) {
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	return kr, idx
}

func newFixture(t testing.TB, db *store.DB, opts ...func(*customer.Config)) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: paygate.NewManualClock(t0), logs: &logBuffer{}, ctx: context.Background()}
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	kr, idx := testKeys(t)
	cfg := customer.Config{Store: db.Customers(), Books: f.led, Clock: f.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Hash: fastHash}
	for _, o := range opts {
		o(&cfg)
	}
	var err error
	f.svc, err = customer.New(cfg)
	require.NoError(t, err)
	return f
}

func (f *fixture) register(t testing.TB, phone string) customer.Customer {
	t.Helper()
	c, err := f.svc.Register(f.ctx, customer.RegisterRequest{Phone: phone, Password: password})
	require.NoError(t, err)
	return c
}

// verified registers alice by phone and verifies her real name.
func (f *fixture) verified(t testing.TB) customer.Customer {
	t.Helper()
	c := f.register(t, alicePhone)
	c, err := f.svc.VerifyRealName(f.ctx, c.ID, aliceName, aliceID, alicePhone)
	require.NoError(t, err)
	return c
}

var alice = customer.Holder{Name: aliceName, IDNumber: aliceID, Phone: alicePhone}

// pan returns a Luhn-valid 16-digit number under bin ending in seq.
func pan(bin string, seq int) string {
	body := bin + fmt.Sprintf("%09d", seq)
	d, _ := customer.LuhnDigit(body)
	return body + string(d)
}

func (f *fixture) addCard(t testing.TB, customerID, number string, kind customer.CardKind, h customer.Holder) customer.Card {
	t.Helper()
	c, err := f.svc.AddCard(f.ctx, customer.AddCardRequest{CustomerID: customerID, Number: number, Kind: kind, Holder: h})
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

// reserve runs Reserve in its own transaction.
func (f *fixture) reserve(customerID, cardID string, m customer.Method, amount int64) (customer.Reservation, error) {
	var r customer.Reservation
	err := f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error {
		var err error
		r, err = f.svc.Reserve(f.ctx, tx, customerID, cardID, m, amount, day0)
		return err
	})
	return r, err
}

// requireLimit asserts err is CodeLimitExceeded naming the limit.
func requireLimit(t testing.TB, err error, which customer.Limit) {
	t.Helper()
	require.Equal(t, paygate.CodeLimitExceeded, paygate.CodeOf(err), "%v", err)
	var le *customer.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, which, le.Limit)
}

// dump returns every row of every table of the database as text.
func dump(t testing.TB, db *store.DB) string {
	t.Helper()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	if db.Dialect == store.SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	rows, err := db.SQL.Query(q)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tables = append(tables, s)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := db.SQL.Query(`SELECT * FROM ` + tbl)
		require.NoError(t, err)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s.%s=%v\n", tbl, cols[i], v)
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return b.String()
}

func sealingIndex(key string) (*sealing.BlindIndex, error) { return sealing.NewBlindIndex([]byte(key)) }
