# firma: remote cloud-signature service. `make run` and `make test` are the
# two commands; see README.md.

SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
STATE := var
CONFIG := $(STATE)/firmad.yaml

# Benchmarks: adjust -benchtime, the number of runs or the packages here.
# The suite runs BENCH_RUNS times over; bench/report takes medians across
# runs so that load on a shared machine weighs on both sides of a ratio.
BENCH_FLAGS ?= -run '^$$' -bench . -benchtime=2s -timeout 30m
BENCH_PKGS ?= ./bench/...
BENCH_RUNS ?= 3
BENCH_RAW := bench/out/raw.txt

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_DIR := api/proto
PROTO_FILES := $(wildcard $(PROTO_DIR)/firma/v1/*.proto)

# Debian packages: for running, and for the tests' outside verifiers.
RUN_PKGS := softhsm2 opensc openssl
# postgresql: the PostgreSQL store's tests start a throwaway server of their
# own (store/postgres/pgtest) from its binaries, as the postgres user, on a
# free loopback port; no service is used or needs to be running.
# jq, netcat-openbsd, curl: the curl example portal (examples/portal-curl).
TEST_PKGS := softhsm2 opensc openssl poppler-utils qpdf chromium libnss3-tools postgresql xmlsec1 unzip jq netcat-openbsd curl systemd
# xadesjs: the outside XAdES verifier of signer/xades's tests (npm, pinned
# by its package-lock.json).
XADESJS_DIR := signer/xades/testdata/xadesjs
# pkijs: the outside CAdES archive timestamp check of signer's tests.
PKIJS_DIR := signer/testdata/pkijs

.PHONY: all build run test bench proto deps-run deps-test vet clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/firmad ./cmd/firmad
	$(GO) build -o $(BIN)/firmactl ./cmd/firmactl

# Installs only what is missing, so it is quick when everything is present.
# Another apt or dpkg run (unattended upgrades on a fresh machine) holds the
# lock for a while: wait for it, bounded, rather than fail at once.
APT_LOCK_WAIT ?= 300
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) install -y -qq $$missing; \
	fi
endef

deps-run:
	$(call apt_install,$(RUN_PKGS))

deps-test:
	$(call apt_install,$(TEST_PKGS))
	@# node and npm may come from outside Debian (with npm bundled): only
	@# when there is no npm at all are Debian's installed.
	@command -v npm >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) install -y -qq nodejs npm; }
	@# promtool checks deploy/alerts.yml; Debian ships it in prometheus,
	@# whose recommends (node exporter, web assets) the test needs not.
	@command -v promtool >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) install -y -qq --no-install-recommends prometheus; }
	@[ -d $(XADESJS_DIR)/node_modules/xadesjs ] || npm ci --prefix $(XADESJS_DIR) --no-audit --no-fund
	@[ -d $(PKIJS_DIR)/node_modules/pkijs ] || npm ci --prefix $(PKIJS_DIR) --no-audit --no-fund

# Brings up firmad on ./var state, making it on the first run: token,
# config, CAs (firmactl init), then the sandbox citizens, whose DNIs and
# passwords are printed (firmactl demo seed; idempotent, so a seed cut
# short is redone on the next run).
run: deps-run build
	@if [ ! -f $(CONFIG) ]; then $(BIN)/firmactl init --state $(STATE); fi
	@if [ ! -f $(STATE)/demo-seeded ]; then \
		$(BIN)/firmactl demo seed --state $(STATE) && touch $(STATE)/demo-seeded; \
	fi
	exec $(BIN)/firmad -config $(CONFIG)

vet:
	$(GO) vet ./...

test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

bench: deps-test
	@mkdir -p bench/out
	@set -o pipefail; : > $(BENCH_RAW); \
	for i in $$(seq $(BENCH_RUNS)); do \
		echo "== bench run $$i of $(BENCH_RUNS)"; \
		$(GO) test $(BENCH_FLAGS) $(BENCH_PKGS) | tee -a $(BENCH_RAW) || exit 1; \
	done
	$(GO) run ./bench/report < $(BENCH_RAW) > bench/out/latest.jsonl
	@echo "wrote bench/out/latest.jsonl"

# Regenerates api/firmav1 from api/proto. Needs protoc (apt-get install -y
# protobuf-compiler); the generated code is committed so nothing else does.
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I $(PROTO_DIR) \
		--go_out=. --go_opt=module=github.com/firma-cloud/firma \
		--go-grpc_out=. --go-grpc_opt=module=github.com/firma-cloud/firma \
		$(PROTO_FILES)

clean:
	rm -rf $(BIN)

# Scale curve (docs/scale.md): make the state with 'firmactl init --key-mode
# wrapped', enrol citizens in bulk up to each of SCALE_STEPS, and at each step
# start the firmad binary once per SCALE_CACHE setting and drive SignDigests
# for random citizens over gRPC, reporting the enrolment rate, signatures/s,
# firmad's resident memory and the store's size (bench/out/scale.json).
# Not part of 'make test': a million keys take SoftHSM2 several minutes.
# SCALE_CACHE lists hsm.cache_size settings: 0 the default, -1 none.
SCALE_STEPS ?= 1000,100000,1000000
SCALE_SIGN ?= 20s
SCALE_CACHE ?= 0,-1
SCALE_CALLERS ?=
SCALE_VERIFY ?= 16
.PHONY: bench-scale bench-load
bench-scale: deps-test
	@mkdir -p bench/out
	cd bench && FIRMA_SCALE_STEPS=$(SCALE_STEPS) FIRMA_SCALE_SIGN=$(SCALE_SIGN) FIRMA_SCALE_CACHE=$(SCALE_CACHE) \
		FIRMA_SCALE_CALLERS=$(SCALE_CALLERS) FIRMA_SCALE_VERIFY=$(SCALE_VERIFY) \
		FIRMA_SCALE_OUT=out/scale.json $(GO) test -count=1 -run '^TestScaleCurve$$' -timeout 120m -v .

# Load of two firmad nodes on one PostgreSQL and one token directory with
# 'firmactl bench' for LOAD_DURATION; fails on any error, lost or duplicated
# signature, or an audit log that does not verify (docs/scale.md).
LOAD_DURATION ?= 5m
LOAD_WORKERS ?= 8
bench-load: deps-test
	@mkdir -p bench/out
	FIRMA_BENCH_LOAD=$(LOAD_DURATION) FIRMA_BENCH_LOAD_WORKERS=$(LOAD_WORKERS) FIRMA_BENCH_LOAD_OUT=$(CURDIR)/bench/out \
		$(GO) test -count=1 -run '^TestLoad$$' -timeout 60m -v ./cluster/

# Peer benchmark (issue 18): builds sigstore's timestamp-server at the
# version pinned in bench/peers/go.mod (its own module: the service's go.mod
# stays clean), then runs BenchmarkPeers PEERS_RUNS times: firmad's built-in
# TSA and sigstore's on loopback, same load generator and query, at 1, 4 and
# 16 clients, one reply of each checked with openssl ts -verify. The
# firma/sigstore ratios (replies/s, p99) replace the Peers/ lines of
# bench/out/latest.jsonl. Not part of 'make test'.
PEERS_RUNS ?= 3
PEERS_SECONDS ?= 5
PEERS_RAW := bench/out/peers-raw.txt
.PHONY: bench-peers
bench-peers: deps-test
	@mkdir -p bench/out
	cd bench/peers && $(GO) build -o ../out/sigstore-timestamp-server github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server
	@set -o pipefail; : > $(PEERS_RAW); \
	for i in $$(seq $(PEERS_RUNS)); do \
		echo "== peers run $$i of $(PEERS_RUNS) (load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
		FIRMA_PEERS_SIGSTORE=$(CURDIR)/bench/out/sigstore-timestamp-server FIRMA_PEERS_SECONDS=$(PEERS_SECONDS) \
			$(GO) test -count=1 -run '^$$' -bench '^BenchmarkPeers$$' -benchtime=1x -timeout 20m ./bench/ | tee -a $(PEERS_RAW) || exit 1; \
	done
	$(GO) run ./bench/report < $(PEERS_RAW) > bench/out/peers.jsonl
	@touch bench/out/latest.jsonl; grep -v '"name":"\(target:\)\?Peers/' bench/out/latest.jsonl > bench/out/latest.tmp || true; \
		cat bench/out/peers.jsonl >> bench/out/latest.tmp; mv bench/out/latest.tmp bench/out/latest.jsonl
	@echo "wrote the Peers/ lines of bench/out/latest.jsonl"

# fuzz runs every fuzz target for FUZZTIME, one after another with one
# worker (the machine is shared); docs/fuzzing.md lists them. The bound on
# -fuzzminimizetime matters: unbounded, the fuzzer spends up to 60 s
# minimising each new interesting input and most targets stall. It goes
# on past a failing target: a real finding writes testdata/fuzz/<Target>/
# (git status shows it); a bare "context deadline exceeded" with no file is
# Go's coordinator race at the end of -fuzztime (golang/go#75804, Go 1.26).
FUZZTIME ?= 10s
.PHONY: fuzz
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$t ./$$(dirname $${f#./})"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x -parallel 1 ./$$(dirname $${f#./}); \
		done; \
	done
