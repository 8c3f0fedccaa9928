# FluxionDB — build, run and test.
#   make run    in-memory server on 127.0.0.1:8080 with a development key
#   make test   every test: the server's, the S3 store's, the Node SDK's, the Go SDK's and the
#               Docker image's

SECRET_KEY ?= dev-secret
PORT ?= 8080
BIND ?= 127.0.0.1
IMAGE ?= fluxiondb
BIN := $(CURDIR)/target/debug/fluxiondb
export FLUXIONDB_BIN := $(BIN)
# The fully static binary (`make static`) that the Docker image holds. Building for an explicit
# --target applies RUSTFLAGS to the target's code only, not to build scripts and proc-macros.
STATIC_TARGET := x86_64-unknown-linux-gnu
STATIC_BIN := target/$(STATIC_TARGET)/release/fluxiondb
# `make docker-run`: a named volume, or a host folder with DATA=path.
VOLUME ?= fluxiondb-data
DATA ?=
IMAGE_UID := 10001
CONTAINER ?= fluxiondb

.PHONY: all build release static run test test-server test-s3 test-large seaweedfs test-node test-go test-docker lint fmt bench bench-cli bench-backup bench-subscribe bench-instructions soak fuzz powercut docker-build docker-run clean

all: build

build:
	cargo build

release:
	cargo build --release

static:
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release --locked --target $(STATIC_TARGET) --bin fluxiondb
	@if ldd $(STATIC_BIN) >/dev/null 2>&1; then echo "$(STATIC_BIN) is not static:"; ldd $(STATIC_BIN); exit 1; fi
	@echo "static binary: $(STATIC_BIN) ($$(du -h $(STATIC_BIN) | cut -f1))"

run: release
	@echo "FluxionDB in memory, listening on $(BIND) port $(PORT) (BIND=0.0.0.0 make run for every interface; default 127.0.0.1, this machine only) — API key: $(SECRET_KEY)"
	SECRET_KEY='$(SECRET_KEY)' ./target/release/fluxiondb --bind $(BIND) --port $(PORT)

test: build test-server test-s3 test-node test-go test-docker

test-server:
	cargo test

# SeaweedFS (Apache-2.0), the S3-compatible server the S3 tests start: built from the Go module
# proxy once per pinned version into a cache folder (.ci/seaweedfs.sh; minutes when cold).
seaweedfs:
	@bash .ci/seaweedfs.sh

# The tests against a real S3-compatible server (named `…s3::…`, ignored by a plain `cargo
# test`): each starts its own SeaweedFS from the binary `make seaweedfs` builds.
test-s3:
	@weed=$$(bash .ci/seaweedfs.sh) && \
		FLUXIONDB_WEED="$$weed" cargo test --test it -- --ignored s3::

test-node: build
	cd clients/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm test

test-go: build
	cd clients/go && go vet ./... && go test -race -count=1 ./...

# The image round trip (tests/it/docker.rs) against the image `make docker-build` makes. Without
# a reachable Docker daemon it is skipped with a message, except under CI=true, where that fails.
test-docker:
	@if docker info >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory docker-build && \
		FLUXIONDB_IMAGE=$(IMAGE) cargo test --test it -- --ignored --exact docker::image_round_trip; \
	elif [ "$$CI" = true ]; then \
		echo "test-docker: FAILED: no Docker daemon reachable (docker info failed), and CI=true does not allow skipping" >&2; exit 1; \
	else \
		echo "test-docker: SKIPPED: no Docker daemon reachable (docker info failed); start one to test the image"; \
	fi

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

# Model-based soak: the random-operation model test for SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
# A document filled to its 4 GiB limit with compressible data (sends 4 GiB; about a minute).
test-large:
	cargo test --release --test it -- --ignored --nocapture limits::a_batch_past_a_documents_4_gib

soak: build
	FLUXIONDB_SOAK_SECONDS=$(SOAK_SECONDS) cargo test --release --test it -- --ignored --nocapture model::soak
	FLUXIONDB_PUSH_RACE_ROUNDS=5000000 cargo test --release --lib -- push::tests::a_push_racing

# Power-loss trials over the page-cache model: POWERCUT_TRIALS per fsync policy (default 100),
# the cut at up to POWERCUT_OPS storage operations after start (a few seconds of writes);
# FLUXIONDB_POWERCUT_SEED=<seed> replays one trial. Prints each policy's figures.
POWERCUT_TRIALS ?= 100
POWERCUT_OPS ?= 40000
powercut:
	FLUXIONDB_POWERCUT_TRIALS=$(POWERCUT_TRIALS) FLUXIONDB_POWERCUT_OPS=$(POWERCUT_OPS) \
		cargo test --release --test it -- --nocapture --test-threads 3 storage::powercut

# Decoder fuzzing for FUZZ_SECONDS (default 300); see fuzz/README.md.
FUZZ_SECONDS ?= 300
fuzz:
	cargo run --profile fuzz -p fluxiondb-fuzz -- $(FUZZ_SECONDS)

# Throughput, latency and memory figures (never asserted by tests); results go to benches/results/.
# Realistic payloads (JSON with quotes; best-case rows labelled), each read shape and the inserts
# beside their answer-size ceiling, the mixed shape, bulk loads and push latency: about four
# minutes. BENCH_FLAGS="--only qry --rounds 1" runs a subset (see benches/README.md).
BENCH_FLAGS ?=
bench:
	cargo build --release --bins
	./target/release/fluxiondb-bench standard --server ./target/release/fluxiondb --out benches/results $(BENCH_FLAGS)

# CLI export/import speed and memory against the server's bulk-load and qdoc rates (same run).
RECORDS ?= 10000000
bench-cli:
	cargo build --release --bins
	benches/cli_transfer.sh $(RECORDS)

# Issue 16's backup figures against a local SeaweedFS: bulk load with and without --backup
# (ROUNDS interleaved rounds), the upload lag, restore vs local recovery (benches/backup_s3.sh).
ROUNDS ?= 3
bench-backup:
	cargo build --release --bins
	benches/backup_s3.sh $(RECORDS) $(ROUNDS)

# Live subscriptions: push vs ack latency, throughput and fan-out with and without subscribers,
# a stalled subscriber (ratios within one run; see benches/README.md).
bench-subscribe:
	cargo build --release --bins
	./target/release/fluxiondb-bench subscribe --server ./target/release/fluxiondb --subscribers 100 --rate 500 --duration 3

# Instructions per request under callgrind (needs valgrind): uncached qry and qdoc, 16 x 4 ins.
bench-instructions:
	cargo build --release --bins
	benches/callgrind.sh ./target/release/fluxiondb qry
	benches/callgrind.sh ./target/release/fluxiondb qdoc --limit 100 --newest
	benches/callgrind.sh ./target/release/fluxiondb insert -c 16 -d 4

# The image holds the static binary only: build that first (the Dockerfile has no build stage).
docker-build: static
	mkdir -p target/docker-data
	docker build -t $(IMAGE) .
	@docker images $(IMAGE) --format 'image {{.Repository}}:{{.Tag}}: {{.Size}}'

# Foreground, no terminal needed (Ctrl-C or `docker stop` shut it down cleanly). Needs
# SECRET_KEY set explicitly (the development key is not used here). Data go to the named volume
# $(VOLUME), or to a host folder with DATA=path (created; the container then runs as your uid, or
# as $(IMAGE_UID) with the folder given to it when you are root).
docker-run:
	@if [ "$(origin SECRET_KEY)" != environment ] && [ "$(origin SECRET_KEY)" != "command line" ]; then \
		echo "docker-run: set SECRET_KEY, e.g. SECRET_KEY=change-me make docker-run (the development key is not used for containers)" >&2; exit 2; fi
	@if [ -z "$(SECRET_KEY)" ]; then echo "docker-run: SECRET_KEY is empty" >&2; exit 2; fi
	@set -e; \
	if [ -n "$(DATA)" ]; then \
		mkdir -p "$(DATA)"; mount="$$(cd "$(DATA)" && pwd)"; \
		if [ "$$(id -u)" = 0 ]; then chown $(IMAGE_UID):$(IMAGE_UID) "$$mount"; user=$(IMAGE_UID):$(IMAGE_UID); \
		else user="$$(id -u):$$(id -g)"; fi; \
		echo "FluxionDB in Docker on port $(PORT), data in $$mount (uid $$user)"; \
		set -- --user "$$user" -v "$$mount:/data"; \
	else \
		echo "FluxionDB in Docker on port $(PORT), data in the volume $(VOLUME)"; \
		set -- -v "$(VOLUME):/data"; \
	fi; \
	SECRET_KEY='$(SECRET_KEY)' exec docker run --rm --name $(CONTAINER) -p $(PORT):8080 -e SECRET_KEY "$$@" $(IMAGE)

clean:
	cargo clean
	rm -rf clients/node/node_modules clients/node/dist
