package customer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/store"
	"paygate/store/storetest"
)

func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.register(t, "+86 139-1234-5678")
		require.Equal(t, alicePhone, c.Phone)
		require.True(t, strings.HasPrefix(c.ID, customer.PrefixCustomer))
		require.Equal(t, customer.StatusActive, c.Status)
		require.Equal(t, customer.FactorPassword, c.Factors)
		require.True(t, c.OnlinePayment)
		require.False(t, c.PayPasswordSet)
		bal, err := f.svc.Balance(f.ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, paygate.Money{Amount: 0, Currency: "CNY"}, bal)

		u, err := f.svc.Register(f.ctx, customer.RegisterRequest{Username: "Zhang_San", Password: password})
		require.NoError(t, err)
		require.Equal(t, "zhang_san", u.Username)

		bad := []struct {
			name string
			req  customer.RegisterRequest
			code paygate.Code
		}{
			{"phone taken", customer.RegisterRequest{Phone: alicePhone, Password: password}, paygate.CodeConflict},
			{"username taken", customer.RegisterRequest{Username: "zhang_SAN", Password: password}, paygate.CodeConflict},
			{"both", customer.RegisterRequest{Phone: "13900000000", Username: "abcd", Password: password}, paygate.CodeInvalidArgument},
			{"neither", customer.RegisterRequest{Password: password}, paygate.CodeInvalidArgument},
			{"short password", customer.RegisterRequest{Phone: "13900000001", Password: "a1b2c3"}, paygate.CodeInvalidArgument},
			{"letters only", customer.RegisterRequest{Phone: "13900000001", Password: "abcdefghij"}, paygate.CodeInvalidArgument},
			{"bad phone", customer.RegisterRequest{Phone: "12345", Password: password}, paygate.CodeInvalidArgument},
			{"bad username", customer.RegisterRequest{Username: "9lives", Password: password}, paygate.CodeInvalidArgument},
		}
		for _, b := range bad {
			_, err := f.svc.Register(f.ctx, b.req)
			require.Equal(t, b.code, paygate.CodeOf(err), b.name)
		}

		got, err := f.svc.Login(f.ctx, "139 1234 5678", password)
		require.NoError(t, err)
		require.Equal(t, c.ID, got.ID)
		got, err = f.svc.Login(f.ctx, "ZHANG_san", password)
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)

		_, errWrong := f.svc.Login(f.ctx, alicePhone, "Wrong-horse-9")
		_, errUnknown := f.svc.Login(f.ctx, "13100000000", password)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(errWrong))
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(errUnknown))
		require.True(t, strings.HasPrefix(errWrong.(*paygate.Error).Message, errUnknown.(*paygate.Error).Message),
			"an unknown login and a wrong password read alike")

		require.NoError(t, f.svc.ChangePassword(f.ctx, c.ID, password, "New-password-1"))
		_, err = f.svc.Login(f.ctx, alicePhone, password)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
		_, err = f.svc.Login(f.ctx, alicePhone, "New-password-1")
		require.NoError(t, err)
		require.NotContains(t, f.logs.String(), password)
		require.NotContains(t, f.logs.String(), "New-password-1")
	})
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		pol := customer.Lockout{MaxFailures: 3, Window: 10 * time.Minute, Duration: 30 * time.Minute}
		f := newFixture(t, db, func(c *customer.Config) { c.LoginLockout = pol })
		c := f.register(t, alicePhone)
		wrong := func() error { _, err := f.svc.Login(f.ctx, alicePhone, "Wrong-horse-9"); return err }
		right := func() error { _, err := f.svc.Login(f.ctx, alicePhone, password); return err }

		// Failures outside the window are forgotten.
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		f.clock.Advance(pol.Window)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		// A success clears the count.
		require.NoError(t, right())
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(wrong()))
		err := wrong() // the third within the window locks
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err))
		var le *customer.LockedError
		require.ErrorAs(t, err, &le)
		require.Equal(t, f.clock.Now().Add(pol.Duration), le.Until)

		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(right()), "locked even for the right password")
		f.clock.Advance(pol.Duration - time.Microsecond)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(right()))
		f.clock.Advance(time.Microsecond)
		require.NoError(t, right(), "the lock ends after its duration")

		// The payment password's lock-out is separate: the login stays open.
		_, err = f.svc.SetPayPassword(f.ctx, c.ID, password, pin)
		require.NoError(t, err)
		for i := 0; i < customer.DefaultPayLockout.MaxFailures; i++ {
			err = f.svc.VerifyPayPassword(f.ctx, c.ID, "975319")
		}
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err))
		require.NoError(t, right())
	})
}

func TestPayPassword(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		pol := customer.Lockout{MaxFailures: 3, Window: time.Hour, Duration: 2 * time.Hour}
		f := newFixture(t, db, func(c *customer.Config) { c.PayLockout = pol })
		c := f.register(t, alicePhone)
		err := f.svc.VerifyPayPassword(f.ctx, c.ID, pin)
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err), "none set yet")

		for _, bad := range []string{"12345", "1234567", "12a456", "111111", "123456", "654321", "０１２３４５"} {
			_, err := f.svc.SetPayPassword(f.ctx, c.ID, password, bad)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), bad)
		}
		_, err = f.svc.SetPayPassword(f.ctx, c.ID, "Wrong-horse-9", pin)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "setting it needs the login password")
		c, err = f.svc.SetPayPassword(f.ctx, c.ID, password, pin)
		require.NoError(t, err)
		require.True(t, c.PayPasswordSet)

		require.NoError(t, f.svc.VerifyPayPassword(f.ctx, c.ID, pin))
		err = f.svc.VerifyPayPassword(f.ctx, c.ID, "975319")
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
		require.Contains(t, err.Error(), "2 tries left")
		err = f.svc.VerifyPayPassword(f.ctx, c.ID, "975319")
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
		require.Contains(t, err.Error(), "1 try left")
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(f.svc.VerifyPayPassword(f.ctx, c.ID, "975319")))
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(f.svc.VerifyPayPassword(f.ctx, c.ID, pin)), "locked for the right one too")
		f.clock.Advance(pol.Duration)
		require.NoError(t, f.svc.VerifyPayPassword(f.ctx, c.ID, pin))

		// Resetting it with the login password clears its lock-out.
		for i := 0; i < 3; i++ {
			f.svc.VerifyPayPassword(f.ctx, c.ID, "975319")
		}
		_, err = f.svc.SetPayPassword(f.ctx, c.ID, password, "802468")
		require.NoError(t, err)
		require.NoError(t, f.svc.VerifyPayPassword(f.ctx, c.ID, "802468"))

		_, err = f.svc.SetStatus(f.ctx, c.ID, customer.StatusFrozen)
		require.NoError(t, err)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(f.svc.VerifyPayPassword(f.ctx, c.ID, "802468")))
		_, err = f.svc.Login(f.ctx, alicePhone, password)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err), "a frozen customer cannot log in")
		require.NotContains(t, f.logs.String(), pin)
	})
}

func TestLoginLockoutUnderConcurrentGuesses(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		pol := customer.Lockout{MaxFailures: 5, Window: time.Hour, Duration: time.Hour}
		f := newFixture(t, db, func(c *customer.Config) { c.LoginLockout = pol })
		f.register(t, alicePhone)
		errs := make(chan error, 30)
		for i := 0; i < 30; i++ {
			go func() { _, err := f.svc.Login(f.ctx, alicePhone, "Wrong-horse-9"); errs <- err }()
		}
		checked := 0
		for i := 0; i < 30; i++ {
			if paygate.CodeOf(<-errs) == paygate.CodeUnauthenticated {
				checked++
			}
		}
		require.LessOrEqual(t, checked, pol.MaxFailures, "no more guesses are checked than the lock-out allows")
	})
}

func TestVerifyRealName(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.register(t, alicePhone)
		cases := []struct {
			name, real, id, phone string
			code                  paygate.Code
		}{
			{"bad check digit", aliceName, "110101199003071234", alicePhone, paygate.CodeInvalidArgument},
			{"bad phone", aliceName, aliceID, "1234", paygate.CodeInvalidArgument},
			{"bad name", "", aliceID, alicePhone, paygate.CodeInvalidArgument},
			{"no match (sequence 999)", aliceName, "110101199003079999", alicePhone, paygate.CodeInvalidArgument},
			{"service down (phone ending 0000)", aliceName, aliceID, "13900000000", paygate.CodeUnavailable},
		}
		for _, k := range cases {
			_, err := f.svc.VerifyRealName(f.ctx, c.ID, k.real, k.id, k.phone)
			require.Equal(t, k.code, paygate.CodeOf(err), k.name)
			require.NotContains(t, err.Error(), "19900307", k.name)
		}
		got, err := f.svc.Customer(f.ctx, c.ID)
		require.NoError(t, err)
		require.False(t, got.Verified())
		ok, err := f.svc.NameMatches(f.ctx, c.ID, aliceName)
		require.NoError(t, err)
		require.False(t, ok, "an unverified customer matches no name")

		v, err := f.svc.VerifyRealName(f.ctx, c.ID, aliceName, aliceID, alicePhone)
		require.NoError(t, err)
		require.True(t, v.Verified())
		require.Equal(t, customer.FactorPassword|customer.FactorRealName|customer.FactorPhone, v.Factors)
		require.Equal(t, "*三", v.NameMasked)
		require.Equal(t, "110***********1233", v.IDMasked)
		require.Equal(t, "139****5678", v.PhoneMasked)
		require.Equal(t, t0, v.VerifiedAt)
		for _, tc := range []struct {
			name string
			want bool
		}{{aliceName, true}, {" 张三 ", true}, {"李三", false}, {"张", false}, {"张三丰", false}} {
			ok, err := f.svc.NameMatches(f.ctx, c.ID, tc.name)
			require.NoError(t, err)
			require.Equal(t, tc.want, ok, "%q: the whole name, not its mask *三", tc.name)
		}
		_, err = f.svc.NameMatches(f.ctx, c.ID, "1")
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		_, err = f.svc.NameMatches(f.ctx, "cus_nobody", aliceName)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.VerifyRealName(f.ctx, c.ID, aliceName, aliceID, alicePhone)
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))
		_, err = f.svc.VerifyRealName(f.ctx, "cus_nobody", aliceName, aliceID, alicePhone)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		c, err = f.svc.SetCertificate(f.ctx, c.ID, true)
		require.NoError(t, err)
		require.Equal(t, []string{"PASSWORD", "REAL_NAME", "PHONE", "CERTIFICATE"}, c.Factors.Names())
		c, err = f.svc.SetOnlinePayment(f.ctx, c.ID, false)
		require.NoError(t, err)
		require.False(t, c.OnlinePayment)
		require.NotContains(t, f.logs.String(), aliceID)
	})
}
