#!/usr/bin/env bash
# Builds the SeaweedFS server (`weed`) that the S3 tests start (tests/it/common/seaweedfs.rs),
# once per pinned version, into a cache folder outside the work tree; later calls reuse it.
# Prints the binary's path on its last line.
#
# SeaweedFS is Apache-2.0. It comes from the Go module proxy as source: `go install` refuses
# the module (its go.mod has replace directives), so the module is downloaded, copied to a
# scratch folder and built there with the module's own go.mod/go.sum.
#
#   FLUXIONDB_WEED_CACHE   cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/fluxiondb)
set -euo pipefail

MODULE=github.com/seaweedfs/seaweedfs
# The pinned version: its S3 gateway enforces If-None-Match / If-Match on PUT (412), which the
# fencing of backups relies on and tests/it/objstore_s3.rs asserts.
VERSION=v0.0.0-20261109003541-7506e5f91cd6

cache=${FLUXIONDB_WEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fluxiondb}
bin=$cache/seaweedfs-$VERSION/weed

if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "seaweedfs.sh: the Go toolchain is needed to build SeaweedFS" >&2; exit 1; }

t0=$SECONDS
echo "seaweedfs.sh: building SeaweedFS $VERSION into $bin (a cold build takes several minutes)" >&2
src=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$src" ] && [ -d "$src" ] || { echo "seaweedfs.sh: go mod download gave no source folder" >&2; exit 1; }

mkdir -p "$(dirname "$bin")"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$src/." "$work/"
chmod -R u+w "$work"
(cd "$work" && GOFLAGS=-buildvcs=false go build -o "$work/weed.out" ./weed)
mv "$work/weed.out" "$bin"
echo "seaweedfs.sh: built in $((SECONDS - t0)) s" >&2
echo "$bin"
