package otp_test

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/otp"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

// issuedCode is the model's view of one code.
type issuedCode struct {
	value string
	at    time.Time
	tries int
	used  bool
	// superseded: a newer code replaced it while it was unused.
	superseded bool
}

// TestOTPProperties runs random sequences of issues, right, wrong and
// superseded codes and clock jumps for one purpose and subject against a
// model of the rules (5 min, 5 tries, single use, supersede, 60 s resend),
// and checks every outcome.
func TestOTPProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, err := sms.NewKeyring(smsKey)
		require.NoError(t, err)
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			clock := paygate.NewManualClock(t0)
			src := &codes{}
			svc, err := otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{hmacKey}, SMSKeys: kr, Clock: clock,
				DailyCap: -1, Rand: src, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(rt, err)
			purpose := fmt.Sprintf("quickpay:prop%d", run.Add(1))
			const subject = "cus_1"
			var all []*issuedCode // oldest first; the last is the newest
			latest := func() *issuedCode {
				if len(all) == 0 {
					return nil
				}
				return all[len(all)-1]
			}
			// expect returns the sentinel the model predicts for a
			// verification of value (nil: success), updating the model.
			expect := func(value string) error {
				c, now := latest(), clock.Now()
				switch {
				case c == nil:
					return otp.ErrNoCode
				case c.used:
					return otp.ErrUsed
				case !now.Before(c.at.Add(5 * time.Minute)):
					return otp.ErrExpired
				case c.tries >= 5:
					return otp.ErrTooManyTries
				}
				c.tries++
				if value == c.value {
					c.used = true
					return nil
				}
				if c.tries >= 5 {
					return otp.ErrTooManyTries
				}
				for _, o := range all[:len(all)-1] {
					if o.superseded && o.value == value && o.at.After(now.Add(-5*time.Minute)) {
						return otp.ErrSuperseded
					}
				}
				return otp.ErrWrongCode
			}
			check := func(rt *rapid.T, value string) {
				want := expect(value)
				err := svc.Verify(ctx, purpose, subject, value)
				if want == nil {
					require.NoError(rt, err)
					return
				}
				require.ErrorIs(rt, err, want, "got %v", err)
			}
			digits := rapid.Uint32Range(0, 999_999)
			rt.Repeat(map[string]func(*rapid.T){
				"advance": func(rt *rapid.T) {
					d := rapid.SampledFrom([]time.Duration{time.Microsecond, time.Second, 30 * time.Second,
						59 * time.Second, time.Minute, 4*time.Minute + 59*time.Second, 5 * time.Minute, 10 * time.Minute}).Draw(rt, "advance")
					clock.Advance(d)
				},
				"issue": func(rt *rapid.T) {
					v := digits.Draw(rt, "code")
					src.mu.Lock()
					src.vals = []uint32{v}
					src.mu.Unlock()
					_, err := svc.Issue(ctx, purpose, subject, phone)
					c, now := latest(), clock.Now()
					if c != nil && now.Before(c.at.Add(time.Minute)) {
						require.ErrorIs(rt, err, otp.ErrResendTooSoon)
						return
					}
					require.NoError(rt, err)
					if c != nil {
						c.superseded = !c.used
					}
					all = append(all, &issuedCode{value: fmt.Sprintf("%06d", v), at: now})
				},
				"right": func(rt *rapid.T) {
					if latest() == nil {
						rt.Skip("nothing issued")
					}
					check(rt, latest().value)
				},
				"wrong": func(rt *rapid.T) {
					check(rt, fmt.Sprintf("%06d", digits.Draw(rt, "guess")))
				},
				"old": func(rt *rapid.T) {
					if len(all) < 2 {
						rt.Skip("nothing superseded")
					}
					check(rt, all[rapid.IntRange(0, len(all)-2).Draw(rt, "which")].value)
				},
			})
			// The database agrees with the model on the newest code.
			if c := latest(); c != nil {
				st, err := svc.Status(ctx, purpose, subject)
				require.NoError(rt, err)
				require.Equal(rt, max(5-c.tries, 0), st.TriesLeft)
				require.Equal(rt, c.used, st.Status == otp.StatusUsed)
				var active int
				require.NoError(rt, db.SQL.QueryRow(`SELECT COUNT(*) FROM otp_codes WHERE purpose = $1 AND status = 'ACTIVE'`,
					purpose).Scan(&active))
				require.Equal(rt, !c.used, active == 1)
			}
		})
	})
}
