#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind: the A/B measure of
# docs/performance.md on machines without hardware counters (and steadier than wall clock on
# any). Needs valgrind and curl.
#
#   benches/callgrind.sh BIN qry  [fluxiondb-bench qry args…]    uncached reads (cache off)
#   benches/callgrind.sh BIN qdoc --limit 100 --newest
#   benches/callgrind.sh BIN insert -c 16 -d 4                    single-record inserts
#
# The server runs under callgrind on a free port with --metrics-public. For reads, a first
# short run of the bench fills the collection (PREFILL records per document, default 1000) and
# callgrind's counters are dumped after it, so the figure counts the measured run alone; for
# inserts the whole run counts. Requests come from /metrics (fluxiondb_requests_total).
# Prints `Ir=<instructions> req=<requests> per_req=<instructions per request>`; the callgrind
# output stays in the folder it names, for callgrind_annotate. CACHE=<MiB> sets
# --answer-cache-mib (default 0); BENCH=path picks the load generator.
set -euo pipefail
BIN=$1
SHAPE=$2
shift 2
BENCH=${BENCH:-$(dirname "$0")/../target/release/fluxiondb-bench}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/fluxiondb-callgrind.XXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=ws://127.0.0.1:$PORT

requests() {
    curl -s "http://127.0.0.1:$PORT/metrics" |
        awk '/^fluxiondb_requests_total/ {s += $NF} END {printf "%d", s}'
}

SECRET_KEY=bench-secret valgrind --tool=callgrind --dump-instr=no --compress-strings=no \
    --callgrind-out-file="$DIR/cg.out" \
    "$BIN" --port "$PORT" --bind 127.0.0.1 --metrics-public --log-level error \
    --answer-cache-mib "${CACHE:-0}" >"$DIR/server.log" 2>&1 &
VPID=$!
trap 'kill $VPID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics" && break
    sleep 0.2
done

if [ "$SHAPE" = insert ]; then
    R0=0
    "$BENCH" insert --url "$URL" -b 1 --duration 6 "$@" >"$DIR/bench.log" 2>&1
else
    "$BENCH" "$SHAPE" --url "$URL" -c 1 -d 32 --duration 1 --warmup 0.2 "$@" \
        --prefill "${PREFILL:-1000}" >"$DIR/bench0.log" 2>&1
    R0=$(requests)
    callgrind_control -d "$VPID" >/dev/null
    "$BENCH" "$SHAPE" --url "$URL" -c 1 -d 32 --duration 5 --warmup 0 "$@" --prefill 0 \
        >"$DIR/bench.log" 2>&1
fi
N=$(($(requests) - R0))
kill -TERM "$VPID"
wait "$VPID" || true
trap - EXIT
IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$DIR/cg.out")
echo "$(basename "$BIN") $SHAPE $* Ir=$IR req=$N per_req=$((IR / (N > 0 ? N : 1))) dir=$DIR"
