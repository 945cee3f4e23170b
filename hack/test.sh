#!/usr/bin/env bash
# Set up a fresh Debian 12 machine and run every brig test: formatting, lints, unit tests and
# the integration tests on real containers. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: run as root (containers need it)" >&2
  exit 1
fi
hack/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# libcontainer's module graph stays acyclic (ARCHITECTURE.md).
python3 hack/module-graph.py >/dev/null
hack/build.sh
# The product is one static binary: no program interpreter, no shared libraries.
if LC_ALL=C readelf -l target/release/brig | grep -q 'INTERP'; then
  echo "test.sh: target/release/brig is dynamically linked" >&2
  exit 1
fi
export BRIG_BINARY=$PWD/target/release/brig
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --all-targets 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, the last may be empty).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
