package otp_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/otp"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

var ctx = context.Background()

func requireOTPErr(t *testing.T, err error, code paygate.Code, sentinel error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, paygate.CodeOf(err), "%v", err)
	require.ErrorIs(t, err, sentinel)
}

func TestIssueVerifyAndReuse(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var kicks int
		e := newEnv(t, db, func(c *otp.Config) { c.Kick = func() { kicks++ } })
		iss, code := e.issue(t, "quickpay:ord_1", "cus_1")
		require.Equal(t, 1, kicks, "the worker is woken after the commit")
		_, err := e.svc.Issue(ctx, "quickpay:ord_1", "cus_1", phone)
		requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrResendTooSoon)
		require.Equal(t, 1, kicks, "not after a refusal")
		require.Equal(t, "138****0000", iss.Phone)
		require.Equal(t, t0.Add(5*time.Minute), iss.ExpiresAt)
		require.Equal(t, t0.Add(time.Minute), iss.ResendAt)

		// The code is bound to its purpose and subject.
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_2", "cus_1", code), paygate.CodeNotFound, otp.ErrNoCode)
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_2", code), paygate.CodeNotFound, otp.ErrNoCode)

		require.NoError(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", " "+code+"\n"))
		// Single use, whatever is typed next.
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code), paygate.CodeConflict, otp.ErrUsed)
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", wrongCode(code)), paygate.CodeConflict, otp.ErrUsed)
		_, err = e.svc.Check(ctx, "quickpay:ord_1", "cus_1", code)
		requireOTPErr(t, err, paygate.CodeConflict, otp.ErrUsed)

		// The SMS is SENT and holds no body any more.
		r, err := db.SMS().Message(ctx, iss.SMSID)
		require.NoError(t, err)
		require.Equal(t, sms.StatusSent, r.Status)
		require.Equal(t, "sandbox-"+iss.SMSID, r.ProviderID)
		var body string
		require.NoError(t, db.SQL.QueryRow(`SELECT body_sealed FROM sms_messages WHERE id = $1`, iss.SMSID).Scan(&body))
		require.Empty(t, body)
	})
}

func TestExpiryAtExactlyFiveMinutes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tc := range []struct {
			name  string
			after time.Duration
			ok    bool
		}{
			{"just before", 5*time.Minute - time.Microsecond, true},
			{"exactly 5 min", 5 * time.Minute, false},
			{"later", time.Hour, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, db, nil)
				purpose := "quickpay:" + strings.ReplaceAll(tc.name, " ", "_")
				_, code := e.issue(t, purpose, "cus_1")
				e.clock.Advance(tc.after)
				err := e.svc.Verify(ctx, purpose, "cus_1", code)
				if tc.ok {
					require.NoError(t, err)
					return
				}
				requireOTPErr(t, err, paygate.CodeUnauthenticated, otp.ErrExpired)
				// A proof taken before expiry cannot be spent after it either.
			})
		}
		t.Run("proof spent after expiry", func(t *testing.T) {
			e := newEnv(t, db, nil)
			_, code := e.issue(t, "bind:card_1", "cus_1")
			e.clock.Advance(5*time.Minute - time.Second)
			p, err := e.svc.Check(ctx, "bind:card_1", "cus_1", code)
			require.NoError(t, err)
			require.Equal(t, t0.Add(5*time.Minute), p.ExpiresAt())
			e.clock.Advance(time.Second)
			err = db.InTx(ctx, func(tx *store.Tx) error { return e.svc.ConsumeTx(ctx, tx, "bind:card_1", "cus_1", p) })
			requireOTPErr(t, err, paygate.CodeUnauthenticated, otp.ErrExpired)
		})
	})
}

func TestFiveWrongTriesLockTheCode(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")
		bad := wrongCode(code)
		for left := 4; left >= 1; left-- {
			err := e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", bad)
			requireOTPErr(t, err, paygate.CodeUnauthenticated, otp.ErrWrongCode)
			require.Contains(t, err.(*paygate.Error).Message, fmt.Sprintf("%d tr", left))
		}
		// Malformed input is refused before it costs a try.
		for _, in := range []string{"", "12345", "1234567", "12 456", "abcdef", "１２３４５６"} {
			requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", in), paygate.CodeInvalidArgument, otp.ErrMalformed)
		}
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", bad), paygate.CodeLimitExceeded, otp.ErrTooManyTries)
		// Locked even for the right code.
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code), paygate.CodeLimitExceeded, otp.ErrTooManyTries)
		_, err := e.svc.Check(ctx, "quickpay:ord_1", "cus_1", code)
		requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrTooManyTries)

		// A new code (after the resend interval) starts afresh.
		e.clock.Advance(time.Minute)
		iss, err := e.svc.Issue(ctx, "quickpay:ord_1", "cus_1", phone)
		require.NoError(t, err)
		code2 := e.deliver(t, iss.SMSID)
		require.NoError(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code2))
	})
}

func TestNewCodeSupersedesTheOld(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Two distinct codes, whatever crypto/rand would say.
		e := newEnv(t, db, func(c *otp.Config) { c.Rand = &codes{vals: []uint32{111111, 222222}} })
		_, old := e.issue(t, "quickpay:ord_1", "cus_1")
		require.Equal(t, "111111", old)
		e.clock.Advance(time.Minute)
		iss, err := e.svc.Issue(ctx, "quickpay:ord_1", "cus_1", phone)
		require.NoError(t, err)
		cur := e.deliver(t, iss.SMSID)
		require.Equal(t, "222222", cur)

		err = e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", old)
		requireOTPErr(t, err, paygate.CodeUnauthenticated, otp.ErrSuperseded)
		require.Contains(t, err.(*paygate.Error).Message, "4 tries left", "the old code costs a try of the new one")
		require.NoError(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", cur))

		// A proof of the superseded code cannot be spent.
		e.clock.Advance(time.Minute)
		_, c3 := e.issue(t, "bind:card_9", "cus_1")
		p, err := e.svc.Check(ctx, "bind:card_9", "cus_1", c3)
		require.NoError(t, err)
		e.clock.Advance(time.Minute)
		_, err = e.svc.Issue(ctx, "bind:card_9", "cus_1", phone)
		require.NoError(t, err)
		err = db.InTx(ctx, func(tx *store.Tx) error { return e.svc.ConsumeTx(ctx, tx, "bind:card_9", "cus_1", p) })
		requireOTPErr(t, err, paygate.CodeUnauthenticated, otp.ErrSuperseded)
	})
}

func TestConcurrentVerifyExactlyOneSucceeds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			requireOTPErr(t, err, paygate.CodeConflict, otp.ErrUsed)
		}
		require.Equal(t, 1, ok)
	})
}

func TestConcurrentConsumeExactlyOneSucceeds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")
		var proofs []otp.Proof
		for range 3 { // e.g. three tabs that each entered the right code
			p, err := e.svc.Check(ctx, "quickpay:ord_1", "cus_1", code)
			require.NoError(t, err)
			proofs = append(proofs, p)
		}
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = db.InTx(ctx, func(tx *store.Tx) error {
					return e.svc.ConsumeTx(ctx, tx, "quickpay:ord_1", "cus_1", proofs[i%len(proofs)])
				})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			requireOTPErr(t, err, paygate.CodeConflict, otp.ErrUsed)
		}
		require.Equal(t, 1, ok)
	})
}

func TestProofMustMatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")
		p, err := e.svc.Check(ctx, "quickpay:ord_1", "cus_1", code)
		require.NoError(t, err)
		for _, tc := range []struct {
			name, purpose, subject string
			proof                  otp.Proof
			code                   paygate.Code
		}{
			{"zero proof", "quickpay:ord_1", "cus_1", otp.Proof{}, paygate.CodeInvalidArgument},
			{"other order", "quickpay:ord_2", "cus_1", p, paygate.CodeUnauthenticated},
			{"other customer", "quickpay:ord_1", "cus_2", p, paygate.CodeUnauthenticated},
		} {
			err := db.InTx(ctx, func(tx *store.Tx) error { return e.svc.ConsumeTx(ctx, tx, tc.purpose, tc.subject, tc.proof) })
			require.Equal(t, tc.code, paygate.CodeOf(err), tc.name)
		}
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error { return e.svc.ConsumeTx(ctx, tx, "quickpay:ord_1", "cus_1", p) }))
	})
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Run("resend interval", func(t *testing.T) {
			e := newEnv(t, db, nil)
			_, err := e.svc.Issue(ctx, "quickpay:ord_r", "cus_r", phone)
			require.NoError(t, err)
			for _, tc := range []struct {
				at   time.Duration
				ok   bool
				wait string
			}{
				{0, false, "60 seconds"},
				{30 * time.Second, false, "30 seconds"},
				{59*time.Second + time.Millisecond, false, "1 seconds"},
				{60 * time.Second, true, ""},
			} {
				e.clock.Set(t0.Add(tc.at))
				_, err := e.svc.Issue(ctx, "quickpay:ord_r", "cus_r", phone)
				if tc.ok {
					require.NoError(t, err, tc.at)
					continue
				}
				requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrResendTooSoon)
				require.Contains(t, err.(*paygate.Error).Message, tc.wait)
			}
			// Another purpose or subject is not held back.
			_, err = e.svc.Issue(ctx, "quickpay:ord_r2", "cus_r", phone)
			require.NoError(t, err)
		})
		t.Run("daily cap per phone", func(t *testing.T) {
			e := newEnv(t, db, func(c *otp.Config) { c.DailyCap = 3 })
			const p = "+86 139-0000-0001" // the same phone as 13900000001
			for i := range 3 {
				_, err := e.svc.Issue(ctx, "bind:card_"+strconv.Itoa(i), "cus_d", p)
				require.NoError(t, err)
			}
			_, err := e.svc.Issue(ctx, "bind:card_9", "cus_d", "13900000001")
			requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrDailyCap)
			// Other phones are not affected.
			_, err = e.svc.Issue(ctx, "bind:card_9", "cus_d", "13900000002")
			require.NoError(t, err)
			// The cap resets at local (Shanghai) midnight: t0 is 10:00 there.
			e.clock.Set(t0.Add(14*time.Hour - time.Second))
			_, err = e.svc.Issue(ctx, "bind:card_8", "cus_d", p)
			requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrDailyCap)
			e.clock.Set(t0.Add(14 * time.Hour))
			_, err = e.svc.Issue(ctx, "bind:card_8", "cus_d", p)
			require.NoError(t, err)
		})
		t.Run("concurrent issues never overshoot the cap", func(t *testing.T) {
			e := newEnv(t, db, func(c *otp.Config) { c.DailyCap = 5 })
			const n = 16
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = e.svc.Issue(ctx, "bind:card_c"+strconv.Itoa(i), "cus_c", "13700000000") })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else {
					requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrDailyCap)
				}
			}
			require.Equal(t, 5, ok)
		})
		t.Run("concurrent issues for one purpose send one code", func(t *testing.T) {
			e := newEnv(t, db, nil)
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = e.svc.Issue(ctx, "quickpay:ord_c", "cus_c", "13600000000") })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else {
					requireOTPErr(t, err, paygate.CodeLimitExceeded, otp.ErrResendTooSoon)
				}
			}
			require.Equal(t, 1, ok)
			var active int
			require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM otp_codes WHERE purpose = 'quickpay:ord_c' AND status = 'ACTIVE'`).Scan(&active))
			require.Equal(t, 1, active)
		})
	})
}

func TestRolledBackTransactionsChangeNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		boom := errors.New("payment failed")

		// An issue in a transaction that rolls back leaves no code and sends
		// nothing, and does not count against the limits.
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := e.svc.IssueTx(ctx, tx, "quickpay:ord_1", "cus_1", phone)
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		n, err := e.worker.RunOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		_, err = e.sandbox.Latest(ctx, phone)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		for _, table := range []string{"otp_codes", "otp_phone_quota", "sms_messages", "sms_sandbox_inbox"} {
			var rows int
			require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM `+table).Scan(&rows))
			require.Zero(t, rows, table)
		}
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", "123456"), paygate.CodeNotFound, otp.ErrNoCode)

		// Issued for real (no resend wait: nothing was committed before).
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")

		// A consumption in a transaction that rolls back consumes nothing.
		p, err := e.svc.Check(ctx, "quickpay:ord_1", "cus_1", code)
		require.NoError(t, err)
		err = db.InTx(ctx, func(tx *store.Tx) error {
			require.NoError(t, e.svc.ConsumeTx(ctx, tx, "quickpay:ord_1", "cus_1", p))
			return boom
		})
		require.ErrorIs(t, err, boom)
		// ... while a wrong try, checked before, stays counted.
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", wrongCode(code)), paygate.CodeUnauthenticated, otp.ErrWrongCode)
		var tries int
		require.NoError(t, db.SQL.QueryRow(`SELECT tries FROM otp_codes WHERE status = 'ACTIVE'`).Scan(&tries))
		require.Equal(t, 2, tries, "the right check and the wrong one")
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error { return e.svc.ConsumeTx(ctx, tx, "quickpay:ord_1", "cus_1", p) }))
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code), paygate.CodeConflict, otp.ErrUsed)
	})
}

// TestCodeNeverInLogsNorInTheDatabase pushes codes through every path
// (issue, resend, send, retries, right and wrong and superseded and expired
// codes) and scans the logs and every column of every table but the sandbox
// inbox for them.
func TestCodeNeverInLogsNorInTheDatabase(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Codes that appear in no timestamp or id of this test by chance.
		vals := []uint32{493817, 582046, 730159}
		e := newEnv(t, db, func(c *otp.Config) { c.Rand = &codes{vals: vals} })
		var sent []string
		_, c1 := e.issue(t, "quickpay:ord_1", "cus_1")
		sent = append(sent, c1)
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", wrongCode(c1)), paygate.CodeUnauthenticated, otp.ErrWrongCode)
		e.clock.Advance(time.Minute)
		iss, err := e.svc.Issue(ctx, "quickpay:ord_1", "cus_1", phone)
		require.NoError(t, err)
		c2 := e.deliver(t, iss.SMSID)
		sent = append(sent, c2)
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", c1), paygate.CodeUnauthenticated, otp.ErrSuperseded)
		require.NoError(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", c2))
		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", c2), paygate.CodeConflict, otp.ErrUsed)
		// A third code left PENDING in the outbox (never sent): sealed only.
		pending, err := e.svc.Issue(ctx, "bind:card_1", "cus_1", phone)
		require.NoError(t, err)
		sent = append(sent, "730159")
		requireOTPErr(t, e.svc.Verify(ctx, "bind:card_1", "cus_1", "730158"), paygate.CodeUnauthenticated, otp.ErrWrongCode)
		e.clock.Advance(10 * time.Minute)
		requireOTPErr(t, e.svc.Verify(ctx, "bind:card_1", "cus_1", "730159"), paygate.CodeUnauthenticated, otp.ErrExpired)
		// The worker now finds it past its send-by time: FAILED, body wiped.
		_, err = e.worker.RunOnce(ctx)
		require.NoError(t, err)
		r, err := db.SMS().Message(ctx, pending.SMSID)
		require.NoError(t, err)
		require.Equal(t, sms.StatusFailed, r.Status)
		require.Equal(t, sms.ClassExpired, r.LastError)
		require.Equal(t, []string{"493817", "582046", "730159"}, sent)

		logs := e.logs.String()
		require.Contains(t, logs, "otp issued", "the capture works")
		require.Contains(t, logs, "sms sent")
		for _, c := range sent {
			require.NotContains(t, logs, c, "a code in the logs")
		}
		require.NotContains(t, logs, "valid for", "SMS text in the logs")
		require.NotContains(t, logs, "730158", "a typed code in the logs")

		dump := dumpDB(t, db, "sms_sandbox_inbox")
		for _, c := range sent {
			for _, v := range dump {
				require.NotContains(t, v, c, "a code in clear in the database")
			}
		}
		// The sandbox inbox does hold the delivered texts.
		m, err := e.sandbox.Latest(ctx, phone)
		require.NoError(t, err)
		require.Equal(t, c2, m.Code())
	})
}

// dumpDB returns every value of every column of every table (except skip and
// the migration table) as text.
func dumpDB(t *testing.T, db *store.DB, skip string) []string {
	t.Helper()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	if db.Dialect == store.SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.SQL.Query(q)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		if n != skip && n != "goose_db_version" {
			tables = append(tables, n)
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Contains(t, tables, "otp_codes")
	var out []string
	for _, table := range tables {
		rows, err := db.SQL.Query(`SELECT * FROM ` + table)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for _, v := range vals {
				out = append(out, string(v))
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	require.NotEmpty(t, out)
	return out
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	kr, err := sms.NewKeyring(smsKey)
	require.NoError(t, err)
	db := storetest.Open(t, store.SQLite)
	for _, tc := range []struct {
		name string
		cfg  otp.Config
	}{
		{"no store", otp.Config{Keys: [][]byte{hmacKey}, SMSKeys: kr, Clock: paygate.SystemClock{}}},
		{"no keys", otp.Config{Store: db.OTP(), SMSKeys: kr, Clock: paygate.SystemClock{}}},
		{"short key", otp.Config{Store: db.OTP(), Keys: [][]byte{hmacKey[:16]}, SMSKeys: kr, Clock: paygate.SystemClock{}}},
		{"no sms keys", otp.Config{Store: db.OTP(), Keys: [][]byte{hmacKey}, Clock: paygate.SystemClock{}}},
	} {
		_, err := otp.New(tc.cfg)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), tc.name)
	}
}

func TestIssueValidates(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	e := newEnv(t, db, nil)
	for _, tc := range []struct{ purpose, subject, phone, field string }{
		{"", "cus_1", phone, "purpose"},
		{"quick pay", "cus_1", phone, "purpose"},
		{strings.Repeat("p", 129), "cus_1", phone, "purpose"},
		{"quickpay:o", "", phone, "subject"},
		{"quickpay:o", "cus\n1", phone, "subject"},
		{"quickpay:o", "cus_1", "12345", "phone"},
		{"quickpay:o", "cus_1", "1380000000a", "phone"},
		{"quickpay:o", "cus_1", "", "phone"},
	} {
		_, err := e.svc.Issue(ctx, tc.purpose, tc.subject, tc.phone)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%+v", tc)
		require.Equal(t, tc.field, err.(*paygate.Error).Field, "%+v", tc)
	}
}

func TestKeyRotationKeepsLiveCodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, code := e.issue(t, "quickpay:ord_1", "cus_1")
		newKey := []byte("a brand new HMAC key of 32+ bytes!!")
		rotated := newEnv(t, db, func(c *otp.Config) { c.Keys = [][]byte{newKey, hmacKey} })
		rotated.clock.Set(e.clock.Now())
		require.NoError(t, rotated.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code))
		// A code made under a key no longer configured cannot verify.
		_, code2 := e.issue(t, "quickpay:ord_2", "cus_1")
		dropped := newEnv(t, db, func(c *otp.Config) { c.Keys = [][]byte{newKey} })
		requireOTPErr(t, dropped.svc.Verify(ctx, "quickpay:ord_2", "cus_1", code2), paygate.CodeUnauthenticated, otp.ErrWrongCode)
	})
}

func TestDefaultText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ purpose, want string }{
		{"quickpay:ord_1", "payment code is 123456"},
		{"bind:card_1", "card binding code is 123456"},
		{"checkout.quick_pay", "payment code is 123456"},
		{"agreement.sign", "agreement signing code is 123456"},
		{"login", "verification code is 123456"},
	} {
		got := otp.DefaultText(tc.purpose, "123456", 5*time.Minute)
		require.Contains(t, got, tc.want)
		require.Contains(t, got, "valid for 5 minutes")
		require.Equal(t, "123456", sms.InboxMessage{Text: got}.Code())
	}
}

func TestPurgeDeletesOldCodesOnly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		for i := range 3 {
			_, err := e.svc.Issue(ctx, "bind:card_"+strconv.Itoa(i), "cus_1", phone)
			require.NoError(t, err)
		}
		e.clock.Advance(48 * time.Hour)
		_, err := e.svc.Issue(ctx, "bind:card_new", "cus_1", phone)
		require.NoError(t, err)
		_, err = e.svc.Purge(ctx, time.Hour, 10)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		_, err = e.svc.Purge(ctx, 0, 0)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))

		n, err := e.svc.Purge(ctx, 0, 10)
		require.NoError(t, err)
		require.Zero(t, n, "kept for the retention")
		e.clock.Advance(6 * 24 * time.Hour)
		n, err = e.svc.Purge(ctx, 0, 2)
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "at most limit")
		n, err = e.svc.Purge(ctx, 0, 10)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		var codes, quotas int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM otp_codes`).Scan(&codes))
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM otp_phone_quota`).Scan(&quotas))
		require.Equal(t, 1, codes, "the code of two days later stays")
		require.Zero(t, quotas, "the days before yesterday are gone")
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, err := e.svc.Status(ctx, "quickpay:ord_1", "cus_1")
		requireOTPErr(t, err, paygate.CodeNotFound, otp.ErrNoCode)
		_, err = e.svc.Status(ctx, "", "cus_1")
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))

		iss, code := e.issue(t, "quickpay:ord_1", "cus_1")
		st, err := e.svc.Status(ctx, "quickpay:ord_1", "cus_1")
		require.NoError(t, err)
		require.Equal(t, otp.State{ID: iss.ID, Phone: "138****0000", Status: otp.StatusActive, Live: true, TriesLeft: 5,
			ExpiresAt: t0.Add(5 * time.Minute), ResendAt: t0.Add(time.Minute)}, st)

		requireOTPErr(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", wrongCode(code)), paygate.CodeUnauthenticated, otp.ErrWrongCode)
		st, err = e.svc.Status(ctx, "quickpay:ord_1", "cus_1")
		require.NoError(t, err)
		require.Equal(t, 4, st.TriesLeft)
		e.clock.Advance(5 * time.Minute)
		st, err = e.svc.Status(ctx, "quickpay:ord_1", "cus_1")
		require.NoError(t, err)
		require.False(t, st.Live, "expired")
		require.Equal(t, otp.StatusActive, st.Status)

		e.clock.Advance(time.Minute)
		_, code = e.issue(t, "quickpay:ord_1", "cus_1")
		require.NoError(t, e.svc.Verify(ctx, "quickpay:ord_1", "cus_1", code))
		st, err = e.svc.Status(ctx, "quickpay:ord_1", "cus_1")
		require.NoError(t, err)
		require.Equal(t, otp.StatusUsed, st.Status)
		require.False(t, st.Live)
	})
}
