#!/usr/bin/env bash
# Issue 16's figures against a local S3-compatible server (SeaweedFS, built by
# .ci/seaweedfs.sh), each a ratio within one run:
#   bulk load   fluxiondb-bench fill -c 2 -d 4 -b 1000 --docs 1000 --records N into a server
#               with --data, alternately without and with --backup s3://…, ROUNDS times each;
#               records/s of each and the median ratio, the largest upload lag seen during
#               each backed-up load (fluxiondb_backup_lag_seconds) and the backup metrics after it
#   restore     after a backed-up load and a clean stop (final snapshot): `fluxiondb restore
#               --from s3://… --data NEW` against the same server's restart on its own folder
#               (listening to /readyz 200), in records/s of each
# Usage: benches/backup_s3.sh [RECORDS] [ROUNDS]   (defaults 10000000 and 3)
# Needs the release binaries (`cargo build --release --bins`), curl and Go (for SeaweedFS).
set -euo pipefail
RECORDS=${1:-10000000}
ROUNDS=${2:-3}
BIN=${BIN:-./target/release}
KEY=bench-backup
WEED_PORT=${WEED_PORT:-28300}   # master; +1…+7 for the others
ACCESS=bench-key
SECRET=bench-secret
BUCKET=fluxiondb-bench
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

weed=$(bash "$(dirname "$0")/../.ci/seaweedfs.sh")
S3=http://127.0.0.1:$((WEED_PORT + 6))
mkdir -p "$TMP/weed"
cat >"$TMP/weed/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$ACCESS","secretKey":"$SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
p=$WEED_PORT
(cd "$TMP/weed" && exec "$weed" server -dir=. -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$p -master.port.grpc=$((p + 1)) -master.volumeSizeLimitMB=256 -volume.max=48 \
    -volume.port=$((p + 2)) -volume.port.grpc=$((p + 3)) -volume.preStopSeconds=0 \
    -filer -filer.port=$((p + 4)) -filer.port.grpc=$((p + 5)) \
    -s3 -s3.port=$((p + 6)) -s3.port.grpc=$((p + 7)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config=s3.json >"$TMP/weed.log" 2>&1) &
WEED=$!
PIDS+=("$WEED")
# An empty-body SigV4 request (curl signs; SeaweedFS wants the payload hash header too).
s3req() {
    curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 --user "$ACCESS:$SECRET" \
        -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' "$@"
}
for _ in $(seq 600); do
    code=$(s3req -X PUT "$S3/$BUCKET" || true)
    [ "$code" = 200 ] || [ "$code" = 409 ] && break
    sleep 0.1
done
[ "$code" = 200 ] || [ "$code" = 409 ] || { echo "SeaweedFS did not come up (last answer $code):"; tail -20 "$TMP/weed.log"; exit 1; }
export AWS_ENDPOINT_URL=$S3 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_S3_FORCE_PATH_STYLE=true

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }
SRV=
ADDR=
# start_server OUTFILE ARGS…: a server on a free port; sets SRV and ADDR.
start_server() {
    local out=$1
    shift
    "$BIN/fluxiondb" --secret-key "$KEY" --port 0 --bind 127.0.0.1 --log-level warn "$@" >"$out" 2>"$out.err" &
    SRV=$!
    PIDS+=("$SRV")
    for _ in $(seq 6000); do grep -q listening "$out" && break; sleep 0.1; done
    ADDR=$(sed -n 's/^fluxiondb listening on //p' "$out")
    [ -n "$ADDR" ] || { echo "the server did not start within 10 minutes: $*"; tail "$out.err"; exit 1; }
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ]; }
stop_server() { kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true; }
fill() {
    "$BIN/fluxiondb-bench" fill --url "ws://$ADDR" --key "$KEY" -c 2 -d 4 -b 1000 --docs 1000 \
        --records "$RECORDS" --col bulk | grep '^{' | field rec_per_s
}
now() { date +%s.%N; }
# CPU seconds (user + system) a process used so far, or one named thread of it.
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v hz="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }
thread_cpu_s() {
    local total=0 t
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && total=$(awk -v a="$total" -v b="$(cpu_s "$1/task/${t##*/}")" 'BEGIN { print a + b }')
    done
    echo "$total"
}
metrics() { curl -s -H "Authorization: Bearer $KEY" "http://$ADDR/metrics"; }
# The backup's upload lag every half second while the load runs, one value a line.
sample_lag() {
    while true; do
        metrics | sed -n 's/^fluxiondb_backup_lag_seconds \([0-9.eE+-]*\).*/\1/p'
        sleep 0.5
    done
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
plain=()
backed=()
for r in $(seq "$ROUNDS"); do
    start_server "$TMP/plain-$r.out" --data "$TMP/plain-$r"
    w0=$(cpu_s "$WEED")
    plain+=("$(fill)")
    echo "round $r without backup: server CPU $(cpu_s "$SRV") s, SeaweedFS CPU $(awk -v a="$(cpu_s "$WEED")" -v b="$w0" 'BEGIN { print a - b }') s during the load"
    stop_server
    rm -rf "$TMP/plain-$r"
    start_server "$TMP/backed-$r.out" --data "$TMP/backed-$r" --backup "s3://$BUCKET/round-$r"
    sample_lag >"$TMP/lag-$r" &
    sampler=$!
    w0=$(cpu_s "$WEED")
    t0=$(now)
    backed+=("$(fill)")
    echo "round $r with backup: load $(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s; server CPU $(cpu_s "$SRV") s of which the backup thread $(thread_cpu_s "$SRV" backup) s; SeaweedFS CPU $(awk -v a="$(cpu_s "$WEED")" -v b="$w0" 'BEGIN { print a - b }') s during the load"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    max_lag=$(sort -g "$TMP/lag-$r" | tail -1)
    echo "round $r: without backup ${plain[-1]} records/s, with ${backed[-1]} records/s; upload lag at most ${max_lag:-?} s (sampled every 0.5 s); backup metrics at the end of the load:"
    metrics | grep '^fluxiondb_backup' | sed 's/^/    /' || true
    stop_server
done

# Restore from the last round's backup against a restart on that round's own folder.
t0=$(now)
start_server "$TMP/recover.out" --data "$TMP/backed-$ROUNDS"
for _ in $(seq 6000); do ready && break; sleep 0.05; done
local_s=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }')
stop_server
t0=$(now)
w0=$(cpu_s "$WEED")
"$BIN/fluxiondb" restore --from "s3://$BUCKET/round-$ROUNDS" --data "$TMP/restored" | tail -1
restore_s=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }')
echo "SeaweedFS CPU during the restore: $(awk -v a="$(cpu_s "$WEED")" -v b="$w0" 'BEGIN { print a - b }') s"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

ratios=$(for i in "${!plain[@]}"; do echo "${backed[$i]} ${plain[$i]}" | awk '{ printf "%.4f\n", $1 / $2 }'; done | sort -n)
median=$(echo "$ratios" | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
echo "| what | records/s | reference | ratio |"
echo "|---|---:|---:|---:|"
for i in "${!plain[@]}"; do
    echo "${backed[$i]} ${plain[$i]}" | awk -v r=$((i + 1)) '{ printf "| bulk load with --backup, round %d | %.0f | without: %.0f | %.0f%% |\n", r, $1, $2, 100 * $1 / $2 }'
done
awk -v m="$median" 'BEGIN { printf "| bulk load, median ratio | | | %.0f%% |\n", 100 * m }'
awk -v n="$RECORDS" -v l="$local_s" -v s="$restore_s" 'BEGIN {
    printf "| restore of %d records from S3 (%.2f s) | %.0f | local recovery (%.2f s): %.0f | %.0f%% |\n", n, s, n / s, l, n / l, 100 * l / s
}'
