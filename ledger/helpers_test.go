package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

type fixture struct {
	l     *ledger.Ledger
	db    *store.DB
	clock *paygate.ManualClock
	ctx   context.Context
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	clock := paygate.NewManualClock(t0)
	return &fixture{l: ledger.New(db.Ledger(), clock, paygate.DefaultCalendar()), db: db, clock: clock, ctx: context.Background()}
}

// accounts creates accounts of the currency; flags may be nil.
func (f *fixture) account(t *testing.T, id string, cur paygate.Currency, normal ledger.Side, flags ledger.AccountFlags, shards int) {
	t.Helper()
	_, err := f.l.CreateAccounts(f.ctx, []ledger.Account{{ID: id, Currency: cur, Normal: normal, Flags: flags, Shards: shards, Code: 1}})
	require.NoError(t, err)
}

func (f *fixture) balance(t *testing.T, id string) ledger.Balance {
	t.Helper()
	as, err := f.l.LookupAccounts(f.ctx, []string{id})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Balance
}

func (f *fixture) transfer(t *testing.T, ts ...ledger.Transfer) []ledger.Result {
	t.Helper()
	r, err := f.l.CreateTransfers(f.ctx, ts)
	require.NoError(t, err)
	return r
}

func requireCode(t *testing.T, err error, code paygate.Code, msg ...any) {
	t.Helper()
	require.Error(t, err, msg...)
	require.Equal(t, code, paygate.CodeOf(err), "error: %v %v", err, msg)
}
