#!/usr/bin/env bash
# RSS of a server under a steady insert stream with retention on (issue 13: "retention keeps a
# collection's memory flat"). Starts a release server with --max-age, drives it with
# `fluxiondb-bench insert` (each document's timestamps grow by one per record it gets), and
# prints the server's RSS every SAMPLE seconds. Run `cargo build --release` first.
#
#   benches/retention-rss.sh [SECONDS] [MAX_AGE] [extra server flags...]
#
# MAX_AGE 0 runs without retention, for comparison: memory then grows by hundreds of MiB a
# second, so keep that run to a few seconds. Environment: CONNS (2), DEPTH (4),
# BATCH (100), DOCS (100, per connection), SAMPLE (30).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-240}
MAX_AGE=${2:-2000}
shift $(( $# > 2 ? 2 : $# ))
SAMPLE=${SAMPLE:-30}
KEY=retention-rss
SERVER=./target/release/fluxiondb
BENCH=./target/release/fluxiondb-bench
OUT=$(mktemp)
LOADOUT=$(mktemp)
trap 'kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; rm -f "$OUT" "$LOADOUT"' EXIT

SECRET_KEY=$KEY "$SERVER" --port 0 --bind 127.0.0.1 --log-level warn --max-age "$MAX_AGE" "$@" >"$OUT" &
SRV=$!
for _ in $(seq 100); do grep -q 'listening on' "$OUT" && break; sleep 0.1; done
ADDR=$(sed -n 's/^fluxiondb listening on //p' "$OUT")
[ -n "$ADDR" ] || { echo "server did not start" >&2; exit 1; }

rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SRV/status"; }

"$BENCH" insert --url "ws://$ADDR" --key "$KEY" --server-pid "$SRV" \
    -c "${CONNS:-2}" -d "${DEPTH:-4}" -b "${BATCH:-100}" --docs "${DOCS:-100}" \
    --warmup 0 --duration "$SECONDS_TOTAL" >"$LOADOUT" &
LOAD=$!
echo "| seconds | server RSS (MiB) |"
echo "|---|---|"
START=$(date +%s)
echo "| 0 | $(rss_mib) |"
while kill -0 "$LOAD" 2>/dev/null; do
    sleep "$SAMPLE"
    kill -0 "$LOAD" 2>/dev/null || break
    echo "| $(( $(date +%s) - START )) | $(rss_mib) |"
done
wait "$LOAD"
grep -v '^{' "$LOADOUT" || true
echo "max_age $MAX_AGE, ${CONNS:-2} conns x ${DEPTH:-4} in flight x ${BATCH:-100} records/ins, ${DOCS:-100} docs per conn"
