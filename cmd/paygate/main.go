// Command paygate is the one binary of the paygate payment platform.
//
// Usage:
//
//	paygate serve [flags]            migrate the database, then serve HTTP
//	paygate migrate [status] [flags] apply pending migrations (or list them)
//	paygate bench ledger [flags]     drive load against the ledger
//	paygate bench api [flags]        drive load against the open API
//	paygate bench refunds [flags]    drive single and batch refunds through the open API
//	paygate bench payouts [flags]    drive payout batches through the open API
//	paygate merchant create|get|status|keys|platform-keys ...
//	                                 manage merchants and their credentials
//	paygate version                  print the version
//	paygate help [command]           show help
//
// Configuration comes from flags and PAYGATE_* environment variables (a flag
// overrides its variable); `paygate help serve` lists them.
//
// Exit status: 0 on success (including a graceful shutdown), 1 when the
// command failed (database unreachable, migration failed, ...), 2 for a
// usage or configuration error.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// app is one invocation of the binary, with its outputs and environment
// injected so that tests run it in-process or re-executed.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// wrapHandler, when set, wraps the HTTP handler serve builds. Tests use
	// it to add a slow endpoint; production leaves it nil.
	wrapHandler func(http.Handler) http.Handler
}

func main() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(a.run(os.Args[1:]))
}

const usage = `paygate — an open online payment platform.

usage:
  paygate serve [flags]             migrate the database, then serve HTTP until SIGTERM/SIGINT
  paygate migrate [status] [flags]  apply pending migrations and print the version (status: list them)
  paygate bench ledger [flags]      drive concurrent load against the ledger and a raw SQL baseline
  paygate bench api [flags]         drive signed load against the open API, a raw SQL baseline and RSA signing
  paygate bench refunds [flags]     drive single refunds and refund batches through the open API
  paygate bench payouts [flags]     drive payout batches through the open API (items/s, latency per item)
  paygate merchant create --name N  create a merchant and its credentials (paygate merchant -h for more)
  paygate version                   print the version
  paygate help [command]            show this help, or a command's flags

Configuration comes from flags and PAYGATE_* environment variables; a flag
overrides its variable. The database defaults to SQLite under ./data.
`

// run dispatches to a subcommand and returns the exit status.
func (a *app) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return a.serve(rest)
	case "migrate":
		return a.migrate(rest)
	case "bench":
		return a.bench(rest)
	case "merchant":
		return a.merchant(rest)
	case "sms":
		return a.sms(rest)
	case "version", "-version", "--version":
		fmt.Fprintf(a.stdout, "paygate %s %s/%s %s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version())
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return a.run(append(rest, "-h"))
		}
		fmt.Fprint(a.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "paygate: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// fail writes one line "paygate CMD: MESSAGE" to stderr and returns status.
func (a *app) fail(status int, cmd, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	msg = strings.Join(strings.Fields(msg), " ") // one line, whatever the cause's layout
	fmt.Fprintf(a.stderr, "paygate %s: %s\n", cmd, msg)
	return status
}
