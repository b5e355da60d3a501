package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paygate"
	"paygate/bench"
	"paygate/client"
	"paygate/customer"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
)

// parseBenchPayouts parses `paygate bench payouts` flags. Without --db it
// runs against the configured database ($PAYGATE_DATABASE_URL, else the
// default SQLite file).
func parseBenchPayouts(args []string, getenv func(string) string, out io.Writer) (bench.PayoutsConfig, Config, error) {
	var (
		dbs                                 dbList
		batches, items, clients, otherEvery int
		maxConns                            int
	)
	cfg, rest, err := parseConfig("bench payouts", args, getenv, out, func(fs *flag.FlagSet) {
		fs.Var(&dbs, "db", "database to load, repeatable or comma-separated (default $PAYGATE_DATABASE_URL, else sqlite:"+store.DefaultSQLitePath+")")
		fs.IntVar(&batches, "batches", bench.DefaultPayoutBatches, "payout batches per database")
		fs.IntVar(&items, "items", bench.DefaultPayoutItems, "items per batch (at most 1000)")
		fs.IntVar(&clients, "clients", bench.DefaultPayoutClients, "merchant clients submitting batches concurrently")
		fs.IntVar(&otherEvery, "other-bank-every", 0, "send every n-th item to another bank's card through the interbank switch (0: none)")
		fs.IntVar(&maxConns, "max-conns", 0, "connection pool size per database (0: 4 per CPU)")
	})
	if err != nil {
		return bench.PayoutsConfig{}, cfg, err
	}
	if len(rest) > 0 {
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("unexpected arguments %q", rest)
	}
	if len(dbs) == 0 {
		def := getenv(settingDB.env)
		if def == "" {
			def = "sqlite:" + store.DefaultSQLitePath
		}
		dbs = dbList{def}
	}
	for _, u := range dbs {
		if _, _, err := store.ParseURL(u); err != nil {
			return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --db %s: %s", redactURL(u), safeMessage(err))
		}
	}
	switch {
	case batches < 1 || batches > 10_000:
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --batches %d: want 1 to 10000", batches)
	case items < 1 || items > 1000:
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --items %d: want 1 to 1000", items)
	case clients < 1 || clients > bench.MaxClients:
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --clients %d: want 1 to %d", clients, bench.MaxClients)
	case otherEvery < 0:
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --other-bank-every %d: want 0 or more", otherEvery)
	case maxConns < 0:
		return bench.PayoutsConfig{}, cfg, fmt.Errorf("invalid --max-conns %d: want 0 (automatic) or more", maxConns)
	}
	return bench.PayoutsConfig{DatabaseURLs: dbs, Batches: batches, Items: items, Clients: clients, OtherBankEvery: otherEvery,
		MaxOpenConns: maxConns}, cfg, nil
}

// benchPayouts runs `paygate bench payouts`: the whole platform in-process,
// a funded sandbox merchant paying customers' accounts and own-bank cards
// in batches over loopback HTTP (bench.Payouts).
func (a *app) benchPayouts(args []string) int {
	pc, cfg, err := parseBenchPayouts(args, a.getenv, a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "bench payouts", "%v", err)
	}
	log := newLogger(a.stderr, cfg)
	slog.SetDefault(log)
	pc.Start = a.payoutPlatform(cfg, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := bench.Payouts(ctx, pc, a.stdout); err != nil {
		return a.fail(exitFailure, "bench payouts", "%v", err)
	}
	return exitOK
}

// payoutBenchRecipients is how many customers (each with a balance account
// and an own-bank card) the payout load pays in turn.
const payoutBenchRecipients = 8

// payoutPlatform stands paygate up for the payout load as serve does
// (buildPlatform, the configured master key, the platform signing key),
// listening on a free loopback port with the jobs on serve's intervals,
// plus a new sandbox merchant funded from the sandbox's funding account and
// a few customers to pay. The platform logs at warn and above.
func (a *app) payoutPlatform(cfg Config, log *slog.Logger) bench.StartPayoutPlatform {
	return func(ctx context.Context, db *store.DB, funds int64) (*bench.PayoutPlatform, error) {
		plog := slog.New(warnOnly{log.Handler()})
		keys, err := a.masterKeyring(cfg, plog)
		if err != nil {
			return nil, err
		}
		merchants, err := newMerchantsWith(keys, db, plog)
		if err != nil {
			return nil, err
		}
		pk, err := merchants.EnsurePlatformKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("platform signing key: %w", err)
		}
		pub, err := signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		base := "http://" + ln.Addr().String()
		p, err := buildPlatform(cfg, db, merchants, prometheus.NewRegistry(), plog,
			wiring{CheckoutBaseURL: base + "/checkout/", Keys: keys, SimDelay: 100 * time.Millisecond})
		if err != nil {
			ln.Close()
			return nil, err
		}
		created, err := merchants.Create(ctx, merchant.CreateRequest{Name: "Payout Bench Shop", Sandbox: true})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("sandbox merchant: %w", err)
		}
		cur := paygate.Currency("CNY")
		if _, err := p.ledger.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding(cur), ledger.MerchantSettled(created.Merchant.ID, cur)}); err != nil {
			ln.Close()
			return nil, err
		}
		if _, err := p.ledger.CreateTransfers(ctx, []ledger.Transfer{{ID: "fund_" + created.Merchant.ID, DebitAccountID: ledger.SandboxFunding(cur).ID,
			CreditAccountID: ledger.MerchantSettled(created.Merchant.ID, cur).ID, Amount: funds}}); err != nil {
			ln.Close()
			return nil, fmt.Errorf("fund the merchant: %w", err)
		}
		out := &bench.PayoutPlatform{OtherBank: luhnNumber("621700", 424242)}
		run := time.Now().UnixNano() % 10_000
		for i := range payoutBenchRecipients {
			phone := fmt.Sprintf("137%04d%04d", run, i+1)
			c, err := p.customers.Register(ctx, customer.RegisterRequest{Phone: phone, Password: "Bench-password-9"})
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("recipient: %w", err)
			}
			if _, err := p.customers.VerifyRealName(ctx, c.ID, "张三", "110101199003071233", phone); err != nil {
				ln.Close()
				return nil, fmt.Errorf("recipient: %w", err)
			}
			number := luhnNumber(customer.SandboxOwnBIN, int(run)*100+i)
			if _, err := p.customers.AddCard(ctx, customer.AddCardRequest{CustomerID: c.ID, Number: number,
				Holder: customer.Holder{Name: "张三", IDNumber: "110101199003071233", Phone: phone}}); err != nil {
				ln.Close()
				return nil, fmt.Errorf("recipient card: %w", err)
			}
			out.Recipients = append(out.Recipients, client.PayoutRecipient{Type: "ACCOUNT", Account: phone},
				client.PayoutRecipient{Type: "CARD", CardNumber: number, Name: "张三"})
		}
		srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			ErrorLog: slog.NewLogLogger(plog.Handler(), slog.LevelWarn)}
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
		jctx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
		var jobs sync.WaitGroup
		p.runJobs(jctx, &jobs, jobIntervals{Expire: cfg.ExpireInterval, Notify: time.Second,
			CloseOrders: 10 * time.Second, Reconcile: 30 * time.Second, Nonces: 5 * time.Minute})
		out.Merchant = client.Config{BaseURL: base, MchID: created.Merchant.ID, SerialNo: created.Key.SerialNo,
			PrivateKey: created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: pub}, APIv3Key: created.APIv3Key}
		out.Stop = func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
			stopJobs()
			jobs.Wait()
		}
		return out, nil
	}
}

// luhnNumber is a 16-digit card number under bin with the check digit.
func luhnNumber(bin string, seq int) string {
	body := bin + fmt.Sprintf("%09d", seq%1_000_000_000)
	d, _ := customer.LuhnDigit(body)
	return body + string(d)
}
