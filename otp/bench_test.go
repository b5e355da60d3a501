package otp_test

import (
	"log/slog"
	"strconv"
	"testing"

	"paygate"
	"paygate/otp"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

// BenchmarkOTP measures the database side of quick pay's code: Issue (code
// row, phone count, sealed SMS in one transaction), Verify (claim a try and
// consume: one transaction), and Check + ConsumeTx (two). Sending the SMS
// is not included. Limits are off so every iteration may issue.
func BenchmarkOTP(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			kr, err := sms.NewKeyring(smsKey)
			if err != nil {
				b.Fatal(err)
			}
			svc, err := otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{hmacKey}, SMSKeys: kr,
				Clock: paygate.NewManualClock(t0), ResendInterval: -1, DailyCap: -1,
				Rand: &codes{}, Logger: slog.New(slog.DiscardHandler)}) // every code is 000000
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			issue := func(b *testing.B) string {
				n++
				purpose := "quickpay:ord_" + strconv.Itoa(n)
				if _, err := svc.Issue(ctx, purpose, "cus_1", phone); err != nil {
					b.Fatal(err)
				}
				return purpose
			}
			b.Run("issue", func(b *testing.B) {
				for b.Loop() {
					issue(b)
				}
			})
			b.Run("verify", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					p := issue(b)
					b.StartTimer()
					if err := svc.Verify(ctx, p, "cus_1", "000000"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("check+consume", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					p := issue(b)
					b.StartTimer()
					proof, err := svc.Check(ctx, p, "cus_1", "000000")
					if err != nil {
						b.Fatal(err)
					}
					if err := db.InTx(ctx, func(tx *store.Tx) error { return svc.ConsumeTx(ctx, tx, p, "cus_1", proof) }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
