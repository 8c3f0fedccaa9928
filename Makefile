# FluxionDB — build, run and test.
#   make run    in-memory server on :8080 with a development key
#   make test   every test: the server's, the Node SDK's and the Go SDK's

SECRET_KEY ?= dev-secret
PORT ?= 8080
IMAGE ?= fluxiondb
BIN := $(CURDIR)/target/debug/fluxiondb
export FLUXIONDB_BIN := $(BIN)

.PHONY: all build release run test test-server test-node test-go lint fmt bench bench-cli soak fuzz powercut docker-build docker-run clean

all: build

build:
	cargo build

release:
	cargo build --release

run: release
	@echo "FluxionDB in memory on ws://localhost:$(PORT) — API key: $(SECRET_KEY)"
	SECRET_KEY=$(SECRET_KEY) ./target/release/fluxiondb --port $(PORT)

test: build test-server test-node test-go

test-server:
	cargo test

test-node: build
	cd clients/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm test

test-go: build
	cd clients/go && go vet ./... && go test -race -count=1 ./...

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

# Model-based soak: the random-operation model test for SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
soak: build
	FLUXIONDB_SOAK_SECONDS=$(SOAK_SECONDS) cargo test --release --test it -- --ignored --nocapture model::soak

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
bench:
	cargo build --release --bins
	./target/release/fluxiondb-bench standard --server ./target/release/fluxiondb --out benches/results

# CLI export/import speed and memory against the server's bulk-load and qdoc rates (same run).
RECORDS ?= 10000000
bench-cli:
	cargo build --release --bins
	benches/cli_transfer.sh $(RECORDS)

docker-build:
	docker build -t $(IMAGE) .

docker-run:
	@test -n "$(SECRET_KEY)" || { echo "set SECRET_KEY"; exit 2; }
	mkdir -p tmp_data
	docker run --init --rm -it -p $(PORT):8080 -e SECRET_KEY=$(SECRET_KEY) \
		-v $(CURDIR)/tmp_data:/app/data $(IMAGE) --data /app/data

clean:
	cargo clean
	rm -rf clients/node/node_modules clients/node/dist
