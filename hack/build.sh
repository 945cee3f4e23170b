#!/usr/bin/env bash
# Build brig as one static binary and put it at target/release/brig, where every script and
# test looks for it. glibc's static-pie (+crt-static) needs an explicit --target so that
# proc-macro crates, which run inside the compiler, are still built as shared objects.
# Extra arguments go to cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$host" "$@"
out=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$out/release"
cp -f "$out/$host/release/brig" "$out/release/.brig.tmp"
mv -f "$out/release/.brig.tmp" "$out/release/brig"
