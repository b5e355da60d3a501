package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"paygate"
	"paygate/store"
)

// Config is the resolved configuration of one paygate command.
type Config struct {
	// DatabaseURL is the database as configured ("" for the default SQLite
	// file). It may hold a password: log Database(), never this.
	DatabaseURL     string
	Dialect         store.Dialect
	Listen          string
	LogLevel        slog.Level
	LogFormat       string // "text" or "json"
	Calendar        paygate.Calendar
	ShutdownTimeout time.Duration
	ExpireInterval  time.Duration
	// AuthorizationPeriod is how long a manual-capture order's
	// authorization holds the payer's money before it is released
	// (payment.Config.AuthorizationPeriod); 0 means the default, 7 days.
	AuthorizationPeriod time.Duration
	// PublicURL is where customers and merchants reach paygate (checkout
	// links are built from it); default http:// + Listen.
	PublicURL string
}

// Database names the configured database for logs and messages, with any
// password removed.
func (c Config) Database() string { return redactURL(c.DatabaseURL) }

// redactURL returns a database URL fit for logs: the default SQLite path
// spelled out, and a PostgreSQL URL with its password replaced by "xxxxx".
func redactURL(raw string) string {
	if raw == "" {
		return "sqlite:" + store.DefaultSQLitePath
	}
	if strings.HasPrefix(raw, "sqlite:") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// setting is one configuration key: its flag, its environment variable, its
// default and how it is checked.
type setting struct {
	flag, env, def, usage string
}

// The settings, in the order the help lists them. Flags override the
// environment, which overrides the default.
var (
	settingDB = setting{"db", "PAYGATE_DATABASE_URL", "",
		"database: empty or sqlite:PATH for SQLite (default sqlite:" + store.DefaultSQLitePath + "), postgres://... for PostgreSQL"}
	settingListen = setting{"listen", "PAYGATE_LISTEN", "127.0.0.1:8080",
		"HTTP listen address (port 0 picks a free port; the bound address is logged)"}
	settingLogLevel  = setting{"log-level", "PAYGATE_LOG_LEVEL", "info", "log level: debug, info, warn or error"}
	settingLogFormat = setting{"log-format", "PAYGATE_LOG_FORMAT", "text", "log format: text, or json (the production choice)"}
	settingTimezone  = setting{"timezone", "PAYGATE_TIMEZONE", "Asia/Shanghai", "time zone of the business day (IANA name)"}
	settingCutoff    = setting{"cutoff", "PAYGATE_CUTOFF", "00:00", "local time HH:MM at which the business day rolls over"}
	settingShutdown  = setting{"shutdown-timeout", "PAYGATE_SHUTDOWN_TIMEOUT", "30s",
		"on SIGTERM/SIGINT, how long in-flight requests may take to finish"}
	settingExpire = setting{"expire-interval", "PAYGATE_EXPIRE_INTERVAL", "5s",
		"how often the hold-expiry job runs"}
	settingAuthPeriod = setting{"authorization-period", "PAYGATE_AUTHORIZATION_PERIOD", "168h",
		"how long a manual-capture order's authorization holds the payer's money before it is released (whole seconds)"}
	settingPublicURL = setting{"public-url", "PAYGATE_PUBLIC_URL", "",
		"base URL customers and merchants reach paygate at, for checkout links (default http://LISTEN)"}
)

// settingsFor lists the settings a command reads.
func settingsFor(cmd string) []setting {
	logs := []setting{settingLogLevel, settingLogFormat}
	switch cmd {
	case "serve":
		return append([]setting{settingDB, settingListen}, append(logs, settingTimezone, settingCutoff, settingShutdown, settingExpire, settingAuthPeriod, settingPublicURL)...)
	case "migrate":
		return append([]setting{settingDB}, logs...)
	}
	return logs
}

// bindSettings registers the settings' flags on fs with defaults taken from
// getenv, and returns the values after parsing and whether each came from a
// flag (for error messages).
func bindSettings(fs *flag.FlagSet, settings []setting, getenv func(string) string) map[setting]*string {
	vals := make(map[setting]*string, len(settings))
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s] = fs.String(s.flag, def, s.usage+" ($"+s.env+")")
	}
	return vals
}

// parseConfig parses a command's flags, with defaults from the environment
// read through getenv, and validates every value. It returns the remaining
// arguments. A help request returns flag.ErrHelp after writing the usage to
// out; an invalid value returns an error naming the flag and variable (and
// never a database URL, which may hold a password).
//
// extra, when not nil, registers the command's own flags on the flag set.
func parseConfig(cmd string, args []string, getenv func(string) string, out io.Writer, extra func(*flag.FlagSet)) (Config, []string, error) {
	fs := flag.NewFlagSet("paygate "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	vals := bindSettings(fs, settingsFor(cmd), getenv)
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: paygate %s [flags]\n\nflags (a flag overrides its environment variable):\n", cmd)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	cfg, err := resolve(vals)
	return cfg, fs.Args(), err
}

// resolve validates the parsed values. Settings absent from vals keep their
// defaults.
func resolve(vals map[setting]*string) (Config, error) {
	get := func(s setting) string {
		if p, ok := vals[s]; ok {
			return *p
		}
		return s.def
	}
	bad := func(s setting, format string, args ...any) error {
		return fmt.Errorf("invalid --%s / $%s: %s", s.flag, s.env, fmt.Sprintf(format, args...))
	}
	var cfg Config
	var errs []error

	cfg.DatabaseURL = get(settingDB)
	dialect, _, err := store.ParseURL(cfg.DatabaseURL)
	if err != nil {
		errs = append(errs, bad(settingDB, "%s", safeMessage(err)))
	}
	cfg.Dialect = dialect

	cfg.Listen = get(settingListen)
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, bad(settingListen, "want HOST:PORT, got %q", cfg.Listen))
	}

	if err := cfg.LogLevel.UnmarshalText([]byte(get(settingLogLevel))); err != nil {
		errs = append(errs, bad(settingLogLevel, "want debug, info, warn or error, got %q", get(settingLogLevel)))
	}
	cfg.LogFormat = get(settingLogFormat)
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		errs = append(errs, bad(settingLogFormat, "want text or json, got %q", cfg.LogFormat))
	}

	tz, cutoff := get(settingTimezone), get(settingCutoff)
	if cfg.Calendar, err = paygate.NewCalendar(tz, cutoff); err != nil {
		s := settingCutoff
		if _, zerr := time.LoadLocation(tz); zerr != nil {
			s = settingTimezone
		}
		errs = append(errs, bad(s, "%s", safeMessage(err)))
	}

	duration := func(s setting) time.Duration {
		d, err := time.ParseDuration(get(s))
		if err != nil || d <= 0 {
			errs = append(errs, bad(s, "want a positive duration such as 30s, got %q", get(s)))
		}
		return d
	}
	cfg.ShutdownTimeout = duration(settingShutdown)
	cfg.ExpireInterval = duration(settingExpire)
	if cfg.AuthorizationPeriod = duration(settingAuthPeriod); cfg.AuthorizationPeriod%time.Second != 0 {
		errs = append(errs, bad(settingAuthPeriod, "want a whole number of seconds such as 168h, got %q", get(settingAuthPeriod)))
	}
	cfg.PublicURL = strings.TrimRight(get(settingPublicURL), "/")
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Listen
	} else if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, bad(settingPublicURL, "want an http(s) URL such as https://pay.example.com"))
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return cfg, errors.New(strings.Join(msgs, "; ")) // one line, for the exit message
	}
	return cfg, nil
}

// safeMessage is the caller-safe text of err: a paygate.Error's message, or
// the whole text of any other error.
func safeMessage(err error) string {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// newLogger returns the slog logger the configuration asks for, writing to w.
func newLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
