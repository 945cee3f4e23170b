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
cargo build --release --locked
export BRIG_BINARY=$PWD/target/release/brig
cargo test --workspace --locked
