#!/usr/bin/env bash
# Fuzz what brig reads from its users: config.json as `create` loads and validates it,
# process.json as `exec --process` does, and seccomp profiles compiled to BPF. Each target runs
# for SECONDS (default 60) from the seeds in fuzz/seeds/TARGET plus what earlier runs kept in
# fuzz/corpus/TARGET. Any crash, timeout or out-of-memory fails the run and its reproducer is
# printed. Built with overflow checks and debug assertions: an overflow is a crash too. Uses
# the nightly toolchain when rustup has one; otherwise the stable one with RUSTC_BOOTSTRAP=1
# (cargo-fuzz needs -Z flags; a fresh CI machine may have stable only). Installs cargo-fuzz
# when missing.
#   hack/fuzz.sh [SECONDS] [TARGET...]      (targets: config process seccomp)
# Reproduce one input: cargo +nightly fuzz run TARGET PATH; minimize: cargo +nightly fuzz tmin TARGET PATH
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config process seccomp)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz() { cargo +nightly fuzz "$@"; }
else
  echo "fuzz: no nightly toolchain: stable with RUSTC_BOOTSTRAP=1"
  fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi
for target in "${targets[@]}"; do
  fuzz build --debug-assertions "$target"
done
failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  artifacts=fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | sort)
  echo "=== fuzz $target: ${seconds}s"
  # The first corpus directory gets the new inputs; the seeds are only read.
  if ! fuzz run --debug-assertions "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -dict=fuzz/oci.dict -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1; then
    new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | grep . || true)
    echo "fuzz $target FAILED; reproducer: ${new:-(none written: see the output above)}" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each"
