#!/usr/bin/env bash
# The cost of `create` with --systemd-cgroup next to the cgroupfs driver's, on a host with
# systemd as PID 1 (the systemd VM: hack/vm-test.sh --systemd -- hack/bench-systemd-create.sh).
# hyperfine rounds, the two drivers alternated (ROUNDS rounds of RUNS runs each); each run is
# a `create` of a fresh container, deleted (--force) before the next. Prints each round's
# means and the median of the round means per driver.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
brig=${BRIG_BINARY:-$repo/target/release/brig}
rounds=${ROUNDS:-4}
runs=${RUNS:-5}
rootfs=${CARGO_TARGET_DIR:-$repo/target}/brig-it/rootfs
[ -x "$rootfs/bin/busybox" ] || { echo "no $rootfs (run the integration tests once)" >&2; exit 1; }
work=$(mktemp -d /tmp/brig-bench.XXXXXX)
trap '"$brig" --root "$work/state" delete --force bench-fs >/dev/null 2>&1 || true
      "$brig" --root "$work/state" delete --force bench-sd >/dev/null 2>&1 || true
      rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
cp -a "$rootfs" "$work/bundle/rootfs"
"$brig" spec --bundle "$work/bundle"
sed -i 's/"terminal": true/"terminal": false/' "$work/bundle/config.json"
b=(--root "$work/state")
for round in $(seq "$rounds"); do
  for driver in fs sd; do
    flag=
    [ $driver = fs ] || flag=--systemd-cgroup
    hyperfine -w 1 -r "$runs" --export-json "$work/$driver-$round.json" \
      --prepare "$brig ${b[*]} delete --force bench-$driver >/dev/null 2>&1 || true" \
      "$brig ${b[*]} $flag create --bundle $work/bundle bench-$driver" >/dev/null 2>&1 || {
      echo "hyperfine failed for $driver" >&2
      "$brig" "${b[@]}" $flag create --bundle "$work/bundle" bench-$driver
      exit 1
    }
    mean=$(jq '.results[0].mean * 1000' "$work/$driver-$round.json")
    echo "round $round $driver: mean ${mean} ms"
    echo "$mean" >>"$work/$driver.means"
  done
done
for driver in fs sd; do
  echo "$driver median of round means: $(sort -n "$work/$driver.means" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms"
done
