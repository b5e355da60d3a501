package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/otp"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

// runApp runs the binary in-process with env and returns the exit status,
// stdout and stderr.
func runApp(env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: envFrom(env)}
	status := a.run(args)
	return status, out.String(), errb.String()
}

func TestSMSLatest(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := storetest.URL(t, d)
			env := map[string]string{"PAYGATE_DATABASE_URL": u}

			status, _, stderr := runApp(env, "sms", "latest", "--phone", "13800000000")
			require.Equal(t, exitFailure, status)
			require.Contains(t, stderr, "no SMS to 138****0000 in the sandbox inbox")

			// Two codes to the phone, sent by the sandbox worker.
			db, err := store.Open(ctx, u, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			_, err = db.Migrate(ctx)
			require.NoError(t, err)
			kr, err := sms.NewKeyring(bytes.Repeat([]byte{1}, 32))
			require.NoError(t, err)
			clock := paygate.NewManualClock(paygate.SystemClock{}.Now())
			svc, err := otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{bytes.Repeat([]byte{2}, 32)}, SMSKeys: kr,
				Clock: clock, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			w, err := sms.NewWorker(db.SMS(), kr, sms.NewSandbox(db.SMSInbox(), clock), clock,
				sms.Options{Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			for _, purpose := range []string{"bind:card_1", "quickpay:ord_1"} {
				_, err := svc.Issue(ctx, purpose, "cus_1", "13800000000")
				require.NoError(t, err)
				_, err = w.RunOnce(ctx)
				require.NoError(t, err)
				clock.Advance(time.Millisecond) // a later SMS
			}
			latest, err := sms.NewSandbox(db.SMSInbox(), clock).Latest(ctx, "13800000000")
			require.NoError(t, err)
			require.Equal(t, "quickpay:ord_1", latest.Purpose)
			code := latest.Code()
			require.Len(t, code, 6)

			status, stdout, stderr := runApp(env, "sms", "latest", "--phone", "+86 138 0000 0000")
			require.Equal(t, exitOK, status, stderr)
			lines := strings.Split(stdout, "\n")
			require.Equal(t, code, lines[0], "the code first, for scripts")
			require.Contains(t, stdout, "quickpay:ord_1")
			require.Contains(t, stdout, latest.Text)

			status, stdout, stderr = runApp(env, "sms", "latest", "--json", "--phone=13800000000")
			require.Equal(t, exitOK, status, stderr)
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(stdout), &got))
			require.Equal(t, code, got["code"])
			require.Equal(t, "13800000000", got["phone"])
			require.Equal(t, "quickpay:ord_1", got["purpose"])
			require.Equal(t, latest.MessageID, got["message_id"])
			require.Equal(t, latest.Text, got["text"])
			require.NotEmpty(t, got["received_at"])

			// The code works once.
			require.NoError(t, svc.Verify(ctx, "quickpay:ord_1", "cus_1", code))
		})
	}
}

func TestSMSCommandErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PAYGATE_DATABASE_URL": "sqlite:" + t.TempDir() + "/p.db"}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"sms"}, exitUsage, "usage:"},
		{[]string{"sms", "oldest"}, exitUsage, `unknown subcommand "oldest"`},
		{[]string{"sms", "latest"}, exitUsage, "--phone is required"},
		{[]string{"sms", "latest", "--phone", "123"}, exitUsage, "invalid --phone"},
		{[]string{"sms", "latest", "--phone", "13800000000", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"sms", "latest", "--phone", "13800000000", "--db", "mysql://x"}, exitUsage, "--db"},
	} {
		status, _, stderr := runApp(env, tc.args...)
		require.Equal(t, tc.status, status, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, tc.args)
	}
	status, stdout, _ := runApp(env, "sms", "-h")
	require.Equal(t, exitOK, status)
	require.Contains(t, stdout, "paygate sms latest --phone PHONE")
}
