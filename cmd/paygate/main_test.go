package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/store"
	"paygate/store/storetest"
)

// childEnv marks a re-executed test binary that must act as paygate.
const childEnv = "PAYGATE_TEST_CHILD"

// TestMain lets the tests run this test binary as the paygate command: with
// PAYGATE_TEST_CHILD=1 it runs main's dispatcher on its arguments instead of
// the tests. PAYGATE_TEST_CHILD=slow adds GET /test/slow, which announces
// itself on stderr and answers only after a line arrives on stdin, so a test
// can hold a request in flight for as long as it needs without sleeping.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		a := &app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
		if mode == "slow" {
			a.wrapHandler = slowEndpoint(os.Stdin, os.Stderr)
		}
		os.Exit(a.run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// slowStarted is the line the slow endpoint writes when a request arrives.
const slowStarted = "TEST: slow request started"

func slowEndpoint(release io.Reader, announce io.Writer) func(http.Handler) http.Handler {
	lines := bufio.NewReader(release)
	return func(next http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /test/slow", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(announce, slowStarted)
			if _, err := lines.ReadString('\n'); err != nil {
				http.Error(w, "stdin closed", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "slow done")
		})
		mux.Handle("/", next)
		return mux
	}
}

// child is a running (or finished) paygate process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout strings.Builder
	mu     sync.Mutex
	stderr []string    // lines so far
	lines  chan string // each stderr line, as it arrives
	done   chan struct{}
}

// startChild runs this test binary as `paygate args...` with a clean
// PAYGATE_* environment plus env.
func startChild(t *testing.T, mode string, env map[string]string, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAYGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"="+mode)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = t.TempDir() // the default SQLite file never lands in the source tree
	c := &child{cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	cmd.Stdout = &syncWriter{mu: &c.mu, w: &c.stdout}
	c.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr = append(c.stderr, sc.Text())
			c.mu.Unlock()
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			c.wait(t)
		}
	})
	return c
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// failAfter bounds how long a test waits for the child before failing; it
// is a guard against hangs, never a synchronisation.
const failAfter = 2 * time.Minute

// wait waits for the child to exit and returns its exit status.
func (c *child) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() {
		for range c.lines { // drain stderr so the child never blocks on it
		}
		exited <- c.cmd.Wait()
	}()
	select {
	case <-exited:
	case <-time.After(failAfter):
		c.cmd.Process.Kill()
		t.Fatalf("paygate did not exit; stderr:\n%s", c.output())
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return c.cmd.ProcessState.ExitCode()
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.stderr, "\n")
}

func (c *child) out() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String()
}

// waitLine reads stderr until a line satisfies match and returns it.
func (c *child) waitLine(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("paygate exited before %s; stderr:\n%s", what, c.output())
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %s after %s; stderr:\n%s", what, failAfter, c.output())
		}
	}
}

// waitLog waits for the JSON log record with message msg.
func (c *child) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var rec map[string]any
	c.waitLine(t, "log "+msg, func(l string) bool {
		rec = nil
		return json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg
	})
	return rec
}

// runChild runs paygate to completion and returns its status, stdout and
// stderr.
func runChild(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	c := startChild(t, "1", env, args...)
	c.stdin.Close()
	status := c.wait(t)
	return status, c.out(), c.output()
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantStatus int
		wantStdout string // regexp; "" checks nothing
		wantStderr string // regexp matched against the one stderr line; "" expects none
	}{
		{"no command", nil, nil, exitUsage, "", ""},
		{"unknown command", nil, []string{"launch"}, exitUsage, "", ""},
		{"version", nil, []string{"version"}, exitOK, `^paygate dev linux/\w+ go1\.`, ""},
		{"help", nil, []string{"help"}, exitOK, `paygate serve`, ""},
		{"help serve", nil, []string{"help", "serve"}, exitOK, ``, ""},
		{"serve invalid DSN flag", nil, []string{"serve", "--db", "mysql://root:hunter2@127.0.0.1/x"}, exitUsage, "",
			`^paygate serve: invalid --db / \$PAYGATE_DATABASE_URL: database URL must be empty, sqlite:PATH or postgres://\.\.\.$`},
		{"serve invalid DSN env", map[string]string{"PAYGATE_DATABASE_URL": "postgres://u:hunter2@127.0.0.1:notaport/x"}, []string{"serve"}, exitUsage, "",
			`^paygate serve: invalid --db / \$PAYGATE_DATABASE_URL: malformed PostgreSQL URL$`},
		{"migrate invalid DSN", nil, []string{"migrate", "--db", "oracle://x"}, exitUsage, "",
			`^paygate migrate: invalid --db`},
		{"serve bad log level", map[string]string{"PAYGATE_LOG_LEVEL": "loud"}, []string{"serve"}, exitUsage, "",
			`^paygate serve: invalid --log-level / \$PAYGATE_LOG_LEVEL: want debug, info, warn or error, got "loud"$`},
		{"serve unreachable PostgreSQL", nil, []string{"serve", "--db", "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"}, exitFailure, "",
			`^paygate serve: cannot open the database postgres://postgres:xxxxx@127\.0\.0\.1:1/x\?.*: UNAVAILABLE: database does not answer: .*connection refused`},
		{"migrate unreachable PostgreSQL", nil, []string{"migrate", "--db", "postgres://127.0.0.1:1/x?sslmode=disable&connect_timeout=5"}, exitFailure, "",
			`^paygate migrate: cannot open the database .*does not answer`},
		{"bench wants a target", nil, []string{"bench"}, exitUsage, "", `^paygate bench: want: paygate bench ledger`},
		{"bench ledger bad clients", nil, []string{"bench", "ledger", "--clients", "x"}, exitUsage, "", `^paygate bench ledger: invalid --clients`},
		{"migrate extra argument", nil, []string{"migrate", "sideways"}, exitUsage, "", `^paygate migrate: unexpected arguments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, stdout, stderr := runChild(t, tt.env, tt.args...)
			require.Equal(t, tt.wantStatus, status, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if tt.wantStdout != "" {
				require.Regexp(t, tt.wantStdout, stdout)
			}
			if tt.wantStderr != "" {
				require.NotContains(t, stderr, "\n", "the failure is one line")
				require.Regexp(t, tt.wantStderr, stderr)
			}
			require.NotContains(t, stdout+stderr, "hunter2", "a password never reaches the output")
		})
	}
}

var migratedRE = regexp.MustCompile(`^(\S+) migrated to version (\d+)\n$`)

func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			status, _, stderr := runChild(t, nil, "migrate", "status", "--db", u)
			require.Equal(t, exitOK, status, stderr)

			env := map[string]string{"PAYGATE_DATABASE_URL": u}
			status, stdout, stderr := runChild(t, env, "migrate")
			require.Equal(t, exitOK, status, stderr)
			m := migratedRE.FindStringSubmatch(stdout)
			require.NotNil(t, m, stdout)
			require.NotEqual(t, "0", m[2])

			// Migrating again changes nothing and reports the same version.
			status, again, stderr := runChild(t, env, "migrate")
			require.Equal(t, exitOK, status, stderr)
			require.Equal(t, stdout, again)

			status, st, stderr := runChild(t, env, "migrate", "status")
			require.Equal(t, exitOK, status, stderr)
			require.Contains(t, st, "applied")
			require.NotContains(t, st, "pending")

			// The schema is usable.
			db, err := store.Open(context.Background(), u, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			var n int
			require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_accounts`).Scan(&n))
		})
	}
}

// TestServeRefusesAFailedMigration breaks the schema so that the first
// migration fails: serve must exit non-zero without ever listening.
func TestServeRefusesAFailedMigration(t *testing.T) {
	t.Parallel()
	u := storetest.URL(t, store.SQLite)
	db, err := store.Open(context.Background(), u, store.Options{})
	require.NoError(t, err)
	_, err = db.SQL.Exec(`CREATE TABLE ledger_accounts (unrelated INTEGER)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	status, _, stderr := runChild(t, map[string]string{"PAYGATE_LOG_FORMAT": "json"}, "serve", "--db", u, "--listen", "127.0.0.1:0")
	require.Equal(t, exitFailure, status, stderr)
	require.NotContains(t, stderr, `"msg":"listening"`)
	require.Regexp(t, `^paygate serve: cannot migrate the database sqlite:.* \(nothing was served\): .*ledger_accounts`, stderr)
	require.NotContains(t, stderr, "\n")
}

// TestServe runs the real command on a fresh SQLite file: it answers the
// probes and metrics, and on SIGTERM stops accepting, lets the request in
// flight finish, and exits 0.
func TestServe(t *testing.T) {
	t.Parallel()
	u := storetest.URL(t, store.SQLite)
	c := startChild(t, "slow", map[string]string{
		"PAYGATE_DATABASE_URL": u,
		"PAYGATE_LOG_FORMAT":   "json",
		"PAYGATE_LOG_LEVEL":    "debug",
	}, "serve", "--listen", "127.0.0.1:0")
	rec := c.waitLog(t, "listening")
	addr, _ := rec["addr"].(string)
	require.NotEmpty(t, addr)
	require.Equal(t, "sqlite:"+strings.TrimPrefix(u, "sqlite:"), rec["database"])
	base := "http://" + addr

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	status, body := get("/healthz")
	require.Equal(t, 200, status)
	require.JSONEq(t, `{"status":"ok"}`, body)
	status, body = get("/readyz")
	require.Equal(t, 200, status)
	require.JSONEq(t, `{"status":"ok"}`, body)
	status, body = get("/nope")
	require.Equal(t, 404, status)
	require.JSONEq(t, `{"code":"NOT_FOUND","message":"no such endpoint"}`, body)
	status, body = get("/metrics")
	require.Equal(t, 200, status)
	for _, want := range []string{
		`paygate_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`,
		`paygate_http_requests_total{method="GET",route="GET /readyz",status="200"} 1`,
		`paygate_ledger_calls_total{code="OK",method="ExpireHolds"}`,
		`paygate_build_info{`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
		`go_sql_open_connections{db_name="sqlite"}`,
	} {
		require.Contains(t, body, want)
	}
	c.waitLog(t, "request") // the request log is written

	// Hold a request in flight, then ask the server to stop.
	slow := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Get(base + "/test/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	c.waitLine(t, "the slow request", func(l string) bool { return l == slowStarted })
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	c.waitLog(t, "draining: no longer accepting connections, waiting for in-flight requests")

	// The listener is closed: new connections are refused...
	_, err := net.Dial("tcp", addr)
	require.Error(t, err, "a draining server accepts no new connections")
	select {
	case r := <-slow:
		t.Fatalf("the in-flight request ended before it was released: %s", r)
	default:
	}
	// ...while the request in flight completes normally.
	_, err = io.WriteString(c.stdin, "go\n")
	require.NoError(t, err)
	require.Equal(t, "200 slow done", <-slow)

	c.waitLog(t, "stopped")
	require.Equal(t, exitOK, c.wait(t), c.output())
}
