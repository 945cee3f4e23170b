#!/usr/bin/env bash
# Benchmark (not a test) of what the binary protection of issue 12 costs: brig as built
# (target/release/brig), another brig to compare with (BEFORE, default target/brig-before: the
# base commit's binary, built by hand) and runc, alternated run by run, RUNS times (default 30):
#   run /bin/true; create + start + delete --force; exec /bin/true into a running container.
# Prints min/median/max per runtime and the ratios of the medians. Run as root.
#
# Same config for all, relative cgroupsPath (cgroups under this script's own cgroup); runs in
# a private mount namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

brig=${BRIG:-$PWD/target/release/brig}
before=${BEFORE:-$PWD/target/brig-before}
runc=${RUNC:-/usr/sbin/runc}
runs=${RUNS:-30}
for bin in "$brig" "$before" "$runc"; do
  [ -x "$bin" ] || { echo "missing $bin" >&2; exit 1; }
done

work=$(mktemp -d /tmp/brig-bench-binary.XXXXXX)
names=(brig before runc)
bins=("$brig" "$before" "$runc")
cleanup() {
  for i in 0 1 2; do
    for id in "svc-${names[$i]}" "r-${names[$i]}" "c-${names[$i]}"; do
      "${bins[$i]}" --root "$work/state-${names[$i]}" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

hack/make-rootfs.sh "$work/rootfs-bundle" >/dev/null
rootfs=$work/rootfs-bundle/rootfs
mkdir -p "$work/b" "$work/svc"
"$brig" spec --bundle "$work/b"
jq --arg root "$rootfs" --arg cg "brig-bench-binary-$$" \
  '.root.path = $root | .process.terminal = false | .process.args = ["/bin/true"] | .ociVersion = "1.0.2" | .linux.cgroupsPath = $cg' \
  "$work/b/config.json" > "$work/b/c" && mv "$work/b/c" "$work/b/config.json"
jq --arg cg "brig-bench-binary-$$-svc" '.process.args = ["/bin/sleep", "100000"]' \
  "$work/b/config.json" > "$work/svc/config.json"

export work runs
export BINS="${bins[*]}" NAMES="${names[*]}"
unshare --mount --propagation private bash -c '
  set -euo pipefail; [ -n "${BENCH_TRACE:-}" ] && set -x
  read -r -a bins <<<"$BINS"; read -r -a names <<<"$NAMES"
  now() { date +%s%N; }
  for i in 0 1 2; do
    n=${names[$i]}
    jq --arg cg "brig-bench-binary-$$-svc-$n" ".linux.cgroupsPath = \$cg" "$work/svc/config.json" > "$work/svc-$n.json"
    mkdir -p "$work/svc-$n"; mv "$work/svc-$n.json" "$work/svc-$n/config.json"
    "${bins[$i]}" --root "$work/state-$n" run -d -b "$work/svc-$n" "svc-$n" </dev/null >/dev/null
  done
  : > "$work/times"
  for r in $(seq "$runs"); do
    # Rotate the order every run so no runtime always goes first.
    for k in 0 1 2; do
      i=$(( (k + r) % 3 )); b=${bins[$i]}; n=${names[$i]}; s="$work/state-$n"
      t0=$(now); "$b" --root "$s" run -b "$work/b" "r-$n" </dev/null >/dev/null; t1=$(now)
      echo "run $n $(( (t1 - t0) / 1000 ))" >> "$work/times"
      t0=$(now)
      "$b" --root "$s" create -b "$work/b" "c-$n" </dev/null >/dev/null
      "$b" --root "$s" start "c-$n"
      "$b" --root "$s" delete --force "c-$n"
      t1=$(now)
      echo "create+start+delete $n $(( (t1 - t0) / 1000 ))" >> "$work/times"
      t0=$(now); "$b" --root "$s" exec "svc-$n" /bin/true </dev/null >/dev/null; t1=$(now)
      echo "exec $n $(( (t1 - t0) / 1000 ))" >> "$work/times"
    done
  done
'
python3 - "$work/times" "$runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ops = ["run", "create+start+delete", "exec"]
names = ["brig", "before", "runc"]
print(f"{sys.argv[2]} runs each, alternated; times in ms (min / median / max)")
for op in ops:
    med = {}
    for n in names:
        t = sorted(int(r[2]) / 1000 for r in rows if r[0] == op and r[1] == n)
        med[n] = statistics.median(t)
        print(f"{op:>20} {n:>7}: {t[0]:7.2f} / {med[n]:7.2f} / {t[-1]:7.2f}")
    print(f"{op:>20} brig/before = {med['brig'] / med['before']:.2f}, brig/runc = {med['brig'] / med['runc']:.2f}, before/runc = {med['before'] / med['runc']:.2f}")
PY
