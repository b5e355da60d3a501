package main

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/store"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cmd     string
		env     map[string]string
		args    []string
		check   func(t *testing.T, c Config)
		rest    []string
		wantErr []string // substrings of the error; nil means no error
	}{
		{
			name: "defaults",
			cmd:  "serve",
			check: func(t *testing.T, c Config) {
				require.Equal(t, "", c.DatabaseURL)
				require.Equal(t, store.SQLite, c.Dialect)
				require.Equal(t, "sqlite:data/paygate.db", c.Database())
				require.Equal(t, "127.0.0.1:8080", c.Listen)
				require.Equal(t, slog.LevelInfo, c.LogLevel)
				require.Equal(t, "text", c.LogFormat)
				require.Equal(t, "Asia/Shanghai", c.Calendar.Location.String())
				require.Equal(t, time.Duration(0), c.Calendar.Cutoff)
				require.Equal(t, 30*time.Second, c.ShutdownTimeout)
				require.Equal(t, 5*time.Second, c.ExpireInterval)
			},
		},
		{
			name: "environment",
			cmd:  "serve",
			env: map[string]string{
				"PAYGATE_DATABASE_URL":     "postgres://app:s3cret@127.0.0.1:5432/paygate?sslmode=disable",
				"PAYGATE_LISTEN":           "0.0.0.0:9000",
				"PAYGATE_LOG_LEVEL":        "debug",
				"PAYGATE_LOG_FORMAT":       "json",
				"PAYGATE_TIMEZONE":         "Europe/London",
				"PAYGATE_CUTOFF":           "23:30",
				"PAYGATE_SHUTDOWN_TIMEOUT": "5s",
				"PAYGATE_EXPIRE_INTERVAL":  "250ms",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, store.Postgres, c.Dialect)
				require.Equal(t, "postgres://app:s3cret@127.0.0.1:5432/paygate?sslmode=disable", c.DatabaseURL)
				require.Equal(t, "postgres://app:xxxxx@127.0.0.1:5432/paygate?sslmode=disable", c.Database())
				require.Equal(t, "0.0.0.0:9000", c.Listen)
				require.Equal(t, slog.LevelDebug, c.LogLevel)
				require.Equal(t, "json", c.LogFormat)
				require.Equal(t, "Europe/London", c.Calendar.Location.String())
				require.Equal(t, 23*time.Hour+30*time.Minute, c.Calendar.Cutoff)
				require.Equal(t, 5*time.Second, c.ShutdownTimeout)
				require.Equal(t, 250*time.Millisecond, c.ExpireInterval)
			},
		},
		{
			name: "flags override the environment",
			cmd:  "serve",
			env:  map[string]string{"PAYGATE_DATABASE_URL": "postgres://127.0.0.1/x", "PAYGATE_LISTEN": "127.0.0.1:1", "PAYGATE_LOG_LEVEL": "error"},
			args: []string{"--db", "sqlite:/tmp/p.db", "-listen=127.0.0.1:0", "--log-level", "warn", "--cutoff", "04:00"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, store.SQLite, c.Dialect)
				require.Equal(t, "sqlite:/tmp/p.db", c.DatabaseURL)
				require.Equal(t, "127.0.0.1:0", c.Listen)
				require.Equal(t, slog.LevelWarn, c.LogLevel)
				require.Equal(t, 4*time.Hour, c.Calendar.Cutoff)
			},
		},
		{
			name: "sqlite path",
			cmd:  "migrate",
			env:  map[string]string{"PAYGATE_DATABASE_URL": "sqlite:var/db.sqlite"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, store.SQLite, c.Dialect)
				require.Equal(t, "sqlite:var/db.sqlite", c.Database())
			},
		},
		{
			name: "migrate ignores serve-only variables",
			cmd:  "migrate",
			env:  map[string]string{"PAYGATE_LISTEN": "nonsense", "PAYGATE_CUTOFF": "nonsense"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, store.SQLite, c.Dialect)
			},
		},
		{
			name: "remaining arguments",
			cmd:  "migrate",
			args: []string{"--db", "sqlite:x.db", "extra", "--more"},
			rest: []string{"extra", "--more"},
		},
		{
			name:    "unknown database scheme",
			cmd:     "serve",
			env:     map[string]string{"PAYGATE_DATABASE_URL": "mysql://root:hunter2@db/x"},
			wantErr: []string{"--db / $PAYGATE_DATABASE_URL", "must be empty, sqlite:PATH or postgres://"},
		},
		{
			name:    "malformed postgres URL",
			cmd:     "migrate",
			args:    []string{"--db", "postgres://u:hunter2@127.0.0.1:99999999/x"},
			wantErr: []string{"--db", "malformed PostgreSQL URL"},
		},
		{
			name:    "bad listen address",
			cmd:     "serve",
			args:    []string{"--listen", "8080"},
			wantErr: []string{"--listen / $PAYGATE_LISTEN", `"8080"`},
		},
		{
			name:    "bad log level and format together",
			cmd:     "serve",
			env:     map[string]string{"PAYGATE_LOG_LEVEL": "loud", "PAYGATE_LOG_FORMAT": "xml"},
			wantErr: []string{"$PAYGATE_LOG_LEVEL", `"loud"`, "$PAYGATE_LOG_FORMAT", `"xml"`},
		},
		{
			name:    "unknown zone",
			cmd:     "serve",
			env:     map[string]string{"PAYGATE_TIMEZONE": "Mars/Olympus"},
			wantErr: []string{"--timezone", "Mars/Olympus"},
		},
		{
			name:    "bad cutoff",
			cmd:     "serve",
			args:    []string{"--cutoff", "24:00"},
			wantErr: []string{"--cutoff / $PAYGATE_CUTOFF"},
		},
		{
			name:    "bad durations",
			cmd:     "serve",
			args:    []string{"--shutdown-timeout", "0s", "--expire-interval", "soon"},
			wantErr: []string{"--shutdown-timeout", "--expire-interval", `"soon"`},
		},
		{
			name:    "unknown flag",
			cmd:     "migrate",
			args:    []string{"--listen", "127.0.0.1:1"},
			wantErr: []string{"flag provided but not defined: -listen"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, rest, err := parseConfig(tt.cmd, tt.args, envFrom(tt.env), io.Discard, nil)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					require.Contains(t, err.Error(), w)
				}
				require.NotContains(t, err.Error(), "hunter2", "errors never show a password")
				require.NotContains(t, err.Error(), "\n", "errors are one line")
				return
			}
			require.NoError(t, err)
			if tt.rest == nil {
				require.Empty(t, rest)
			} else {
				require.Equal(t, tt.rest, rest)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, _, err := parseConfig("serve", []string{"-h"}, envFrom(nil), &out, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, env := range []string{"PAYGATE_DATABASE_URL", "PAYGATE_LISTEN", "PAYGATE_LOG_LEVEL", "PAYGATE_LOG_FORMAT", "PAYGATE_TIMEZONE", "PAYGATE_CUTOFF"} {
		require.Contains(t, out.String(), env)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "sqlite:data/paygate.db"},
		{"sqlite:/var/lib/paygate.db", "sqlite:/var/lib/paygate.db"},
		{"postgres://u:pw@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable"},
		{"postgres://u:pw@h:5432/db%zz", "(unparseable URL)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, redactURL(tt.in), tt.in)
	}
}

func TestParseBenchLedger(t *testing.T) {
	t.Parallel()
	pg := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantDBs []string
		clients []int
		dur     time.Duration
		shards  int
		conns   int
		wantErr string
	}{
		{name: "defaults", wantDBs: []string{"sqlite:data/paygate.db"}, clients: []int{1, 4, 16, 64}, dur: 5 * time.Second, shards: 16},
		{name: "configured database", env: map[string]string{"PAYGATE_DATABASE_URL": pg}, wantDBs: []string{pg}, clients: []int{1, 4, 16, 64}, dur: 5 * time.Second, shards: 16},
		{
			name:    "repeated and comma lists",
			args:    []string{"--db", "sqlite:a.db," + pg, "--db", "postgres://h1,h2/db", "--clients", "2, 8", "--duration", "1s", "--fee-shards", "1", "--max-conns", "8"},
			wantDBs: []string{"sqlite:a.db", pg, "postgres://h1,h2/db"},
			clients: []int{2, 8}, dur: time.Second, shards: 1, conns: 8,
		},
		{name: "bad clients", args: []string{"--clients", "1,zero"}, wantErr: "--clients"},
		{name: "zero clients", args: []string{"--clients", "0"}, wantErr: "--clients"},
		{name: "bad duration", args: []string{"--duration", "-1s"}, wantErr: "--duration"},
		{name: "endless duration", args: []string{"--duration", "1h"}, wantErr: "--duration"},
		{name: "too many clients", args: []string{"--clients", "1,100000"}, wantErr: "--clients"},
		{name: "bad max conns", args: []string{"--max-conns", "-1"}, wantErr: "--max-conns"},
		{name: "bad shards", args: []string{"--fee-shards", "65"}, wantErr: "--fee-shards"},
		{name: "bad db", args: []string{"--db", "mysql://u:hunter2@x/y"}, wantErr: "invalid --db"},
		{name: "extra args", args: []string{"now"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lc, _, err := parseBenchLedger(tt.args, envFrom(tt.env), io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantDBs, lc.DatabaseURLs)
			require.Equal(t, tt.clients, lc.Clients)
			require.Equal(t, tt.dur, lc.Duration)
			require.Equal(t, tt.shards, lc.FeeShards)
			require.Equal(t, tt.conns, lc.MaxOpenConns)
		})
	}
}
