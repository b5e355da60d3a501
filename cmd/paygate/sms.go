package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"paygate"
	"paygate/sms"
)

const smsUsage = `usage:
  paygate sms latest --phone PHONE [--json] [--db URL]

latest prints the newest SMS the sandbox delivered to PHONE (11 digits, or
+E.164): its one-time code on the first line, then the details. --json
prints one JSON object: message_id, phone, purpose, text, code, received_at.

Only the sandbox inbox is read: messages reach it once a worker has sent
them through the sandbox sender. A live SMS sender keeps no text, so there
is nothing to read back in production.

Takes --db / $PAYGATE_DATABASE_URL, --log-level and --log-format like serve.
`

// smsLatest is what `paygate sms latest --json` prints; the field names are
// a fixed contract for test scripts.
type smsLatest struct {
	sms.InboxMessage
	Code string `json:"code"`
}

// sms runs `paygate sms ...`.
func (a *app) sms(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, smsUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "latest":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, smsUsage)
		return exitOK
	default:
		return a.fail(exitUsage, "sms", "unknown subcommand %q (see paygate sms -h)", sub)
	}
	const cmd = "sms latest"
	fs := flag.NewFlagSet("paygate "+cmd, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	vals := bindSettings(fs, []setting{settingDB, settingLogLevel, settingLogFormat}, a.getenv)
	var phone string
	var asJSON bool
	fs.StringVar(&phone, "phone", "", "the phone the SMS was sent to (required)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, smsUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return a.fail(exitUsage, cmd, "%v", err)
	}
	if fs.NArg() > 0 {
		return a.fail(exitUsage, cmd, "unexpected argument %q (see paygate sms -h)", fs.Arg(0))
	}
	cfg, err := resolve(vals)
	if err != nil {
		return a.fail(exitUsage, cmd, "%v", err)
	}
	if phone == "" {
		return a.fail(exitUsage, cmd, "--phone is required")
	}
	if _, err := sms.NormalizePhone(phone); err != nil {
		return a.fail(exitUsage, cmd, "invalid --phone: %s", safeMessage(err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, _, err := openAndMigrate(ctx, cfg)
	if err != nil {
		return a.fail(exitFailure, cmd, "%v", err)
	}
	defer db.Close()
	m, err := sms.NewSandbox(db.SMSInbox(), paygate.SystemClock{}).Latest(ctx, phone)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		return a.fail(exitFailure, cmd, "no SMS to %s in the sandbox inbox", sms.MaskPhone(phone))
	}
	if err != nil {
		return a.fail(exitFailure, cmd, "%s", userMessage(err))
	}
	if asJSON {
		return a.printJSON(smsLatest{InboxMessage: m, Code: m.Code()})
	}
	code := m.Code()
	if code == "" {
		code = "(no code in this message)"
	}
	fmt.Fprintln(a.stdout, code)
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  phone\t%s\n", m.Phone)
	fmt.Fprintf(w, "  purpose\t%s\n", m.Purpose)
	fmt.Fprintf(w, "  received\t%s\n", m.ReceivedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "  message\t%s\n", m.MessageID)
	fmt.Fprintf(w, "  text\t%s\n", m.Text)
	w.Flush()
	return exitOK
}
