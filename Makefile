# paygate — `make help` lists the targets.

GO        ?= go
PKGS      ?= ./...
# The whole suite runs under the race detector in about 15–20 minutes on 2 cores.
TESTFLAGS ?= -race -count=1 -timeout 30m
# `make bench-ledger` targets; override on the command line.
BENCH_SQLITE   ?= sqlite:data/bench.db
BENCH_POSTGRES ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
BENCH_FLAGS    ?= --clients 1,4,16,64 --duration 5s --fee-shards 16
# `make bench-api` targets; the target creates the paygate_bench database
# if psql can (it is left in place, like every row the load writes).
BENCH_API_SQLITE   ?= sqlite:data/bench-api.db
BENCH_API_POSTGRES ?= postgres://postgres@127.0.0.1:5432/paygate_bench?sslmode=disable
BENCH_API_FLAGS    ?= --clients 1,4,16 --duration 5s

# `make bench-payouts` targets (the target creates paygate_bench_payouts).
BENCH_PAYOUTS_SQLITE   ?= sqlite:data/bench-payouts.db
BENCH_PAYOUTS_POSTGRES ?= postgres://postgres@127.0.0.1:5432/paygate_bench_payouts?sslmode=disable

# `make bench-refunds` targets (the target creates paygate_bench_refunds).
BENCH_REFUNDS_SQLITE   ?= sqlite:data/bench-refunds.db
BENCH_REFUNDS_POSTGRES ?= postgres://postgres@127.0.0.1:5432/paygate_bench_refunds?sslmode=disable
BENCH_REFUNDS_FLAGS    ?= --clients 1,4,16 --duration 5s --batches 3 --batch-size 1000
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.DEFAULT_GOAL := help
.PHONY: help run test deps bench bench-ledger bench-api bench-refunds bench-payouts lint fmt build clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## start paygate (SQLite under ./data, http://127.0.0.1:8080)
	$(GO) run ./cmd/paygate serve

test: deps ## run every test (race detector on), on SQLite and PostgreSQL
	$(GO) test $(TESTFLAGS) $(PKGS)

deps: ## install what the tests need (PostgreSQL server binaries, chromium) if missing
	@scripts/ensure-postgres.sh
	@scripts/ensure-chromium.sh

bench: deps ## run the go test benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-ledger: ## load the ledger on SQLite and PostgreSQL (BENCH_SQLITE, BENCH_POSTGRES, BENCH_FLAGS)
	$(GO) run ./cmd/paygate bench ledger --db '$(BENCH_SQLITE)' --db '$(BENCH_POSTGRES)' $(BENCH_FLAGS)

bench-api: ## load the open API on PostgreSQL and SQLite (BENCH_API_POSTGRES, BENCH_API_SQLITE, BENCH_API_FLAGS)
	-@psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE paygate_bench' >/dev/null 2>&1
	$(GO) run ./cmd/paygate bench api --db '$(BENCH_API_POSTGRES)' --db '$(BENCH_API_SQLITE)' $(BENCH_API_FLAGS)

bench-refunds: ## single refunds and refund batches over the open API on PostgreSQL and SQLite (BENCH_REFUNDS_POSTGRES, BENCH_REFUNDS_SQLITE, BENCH_REFUNDS_FLAGS)
	-@psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE paygate_bench_refunds' >/dev/null 2>&1
	$(GO) run ./cmd/paygate bench refunds --db '$(BENCH_REFUNDS_POSTGRES)' --db '$(BENCH_REFUNDS_SQLITE)' $(BENCH_REFUNDS_FLAGS)

bench-payouts: ## payout batches over the open API on PostgreSQL and SQLite: items/s, per-item latency (BENCH_PAYOUTS_POSTGRES, BENCH_PAYOUTS_SQLITE, BENCH_PAYOUTS_FLAGS)
	-@psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE paygate_bench_payouts' >/dev/null 2>&1
	$(GO) run ./cmd/paygate bench payouts --db '$(BENCH_PAYOUTS_POSTGRES)' --db '$(BENCH_PAYOUTS_SQLITE)' $(BENCH_PAYOUTS_FLAGS)

lint: ## check formatting, go vet and go mod tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt: needs formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@tmp=$$(mktemp -d); cp go.mod go.sum "$$tmp"/; $(GO) mod tidy; \
	if ! cmp -s go.mod "$$tmp"/go.mod || ! cmp -s go.sum "$$tmp"/go.sum; then \
		echo "go mod tidy changes go.mod/go.sum (run it and commit):"; diff -u "$$tmp"/go.mod go.mod; \
		cp "$$tmp"/go.mod "$$tmp"/go.sum .; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"

fmt: ## format the code
	gofmt -w .

build: ## build bin/paygate with the version stamped
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/paygate ./cmd/paygate

clean: ## remove built binaries (keeps ./data)
	rm -rf bin
