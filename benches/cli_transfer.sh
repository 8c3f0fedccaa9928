#!/usr/bin/env bash
# The CLI's export and import against the server's own rates, in one run on one server:
#   fill    fluxiondb-bench fill -c 2 -d 4 -b 1000 --docs 1000 --records N   (bulk-load rate)
#   export  fluxiondb export --col … (records/s, max RSS of the CLI)
#   qdoc    fluxiondb-bench qdoc -c 2 -d 4 --limit 1000 over the same documents (records/s of
#           the answers)
#   import  fluxiondb import --col … after `dcol` (records/s, max RSS of the CLI)
# Usage: benches/cli_transfer.sh [RECORDS]   (default 10000000; `make bench-cli RECORDS=…`)
# The archive goes to a folder under $TMPDIR (default /tmp); its file system is printed, as
# creating the 1,000 files can cost more than writing them (TMPDIR=/dev/shm for a tmpfs).
# The server's CPU per record in each phase is printed too: on a shared machine the rates move
# with the load, the CPU per record much less.
# Needs the release binaries (`cargo build --release --bins`) and GNU time (/usr/bin/time).
set -euo pipefail
RECORDS=${1:-10000000}
BIN=${BIN:-./target/release}
KEY=bench-cli
TMP=$(mktemp -d)
SRV=
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN/fluxiondb" --secret-key "$KEY" --port 0 --bind 127.0.0.1 --log-level warn >"$TMP/server.out" 2>"$TMP/server.err" &
SRV=$!
for _ in $(seq 100); do grep -q listening "$TMP/server.out" && break; sleep 0.1; done
URL="ws://$(sed -n 's/^fluxiondb listening on //p' "$TMP/server.out")"
export FLUXIONDB_URL=$URL FLUXIONDB_APIKEY=$KEY

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }
server_ticks() { awk '{print $14 + $15}' "/proc/$SRV/stat"; }
timed() { # prints "wall_seconds max_rss_kib cpu_seconds" of the command
    /usr/bin/time -f '%e %M %U %S' -o "$TMP/time" "$@" >"$TMP/cmd.out"
    cat "$TMP/time"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
fill=$("$BIN/fluxiondb-bench" fill --url "$URL" --key "$KEY" -c 2 -d 4 -b 1000 --docs 1000 \
    --records "$RECORDS" --col transfer | grep '^{' | field rec_per_s)
t0=$(server_ticks)
# EXPORT_FLAGS=--no-sync measures the export without waiting for the disk (page cache only).
read -r ex_s ex_rss ex_u ex_k < <(timed "$BIN/fluxiondb" export --col transfer --out-dir "$TMP/archive" --quiet ${EXPORT_FLAGS:-})
t1=$(server_ticks)
qdoc_json=$("$BIN/fluxiondb-bench" qdoc --url "$URL" --key "$KEY" -c 2 -d 4 --limit 1000 --prefill 0 \
    --docs 1000 --col transfer --duration 5 | grep '^{')
t2=$(server_ticks)
qdoc=$(echo "$qdoc_json" | field rec_per_s)
qdoc_n=$(echo "$qdoc_json" | field requests)
hz=$(getconf CLK_TCK)
"$BIN/fluxiondb" delete-collection --col transfer >/dev/null
read -r im_s im_rss im_u im_k < <(timed "$BIN/fluxiondb" import --col transfer --in-dir "$TMP/archive" --quiet)
imported=$(sed -n "s/.*\"records\": *\([0-9]*\).*/\1/p" "$TMP/cmd.out" | head -1)
archive_mb=$(du -sm "$TMP/archive" | cut -f1)
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "archive file system: $(df -T "$TMP" | awk 'NR == 2 {print $2 " (" $1 ")"}')"

awk -v n="$RECORDS" -v fill="$fill" -v qdoc="$qdoc" -v ex_s="$ex_s" -v ex_rss="$ex_rss" \
    -v im_s="$im_s" -v im_rss="$im_rss" -v imported="$imported" -v mb="$archive_mb" \
    -v ex_cpu="$(echo "$ex_u $ex_k" | awk '{print $1 + $2}')" \
    -v im_cpu="$(echo "$im_u $im_k" | awk '{print $1 + $2}')" \
    -v ex_srv="$(( t1 - t0 ))" -v qdoc_srv="$(( t2 - t1 ))" -v qdoc_n="$qdoc_n" -v hz="$hz" 'BEGIN {
    ex = n / ex_s; im = n / im_s
    printf "records: %d over 1000 documents, archive %d MB, %d records imported\n", n, mb, imported
    printf "| what | records/s | reference | ratio | CLI max RSS | CLI CPU |\n|---|---:|---:|---:|---:|---:|\n"
    printf "| export | %.0f | qdoc answers of 1,000 records: %.0f | %.0f%% | %.1f MiB | %.2f s (%.0f ns/record) |\n", ex, qdoc, 100 * ex / qdoc, ex_rss / 1024, ex_cpu, 1e9 * ex_cpu / n
    printf "| import | %.0f | bulk load (fill -c 2 -d 4 -b 1000): %.0f | %.0f%% | %.1f MiB | %.2f s (%.0f ns/record) |\n", im, fill, 100 * im / fill, im_rss / 1024, im_cpu, 1e9 * im_cpu / n
    printf "server CPU per record: export %.0f ns, qdoc answers %.0f ns\n", 1e9 * ex_srv / hz / n, 1e9 * qdoc_srv / hz / (qdoc_n * 1000)
}'
