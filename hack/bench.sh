#!/usr/bin/env bash
# Benchmark (not a test): time `run` of /bin/true, and `exec` of /bin/true into a running
# container, with brig, runc and crun on the same rootfs, each in one hyperfine run, and print
# brig's ratio to each. Run as root.
#
# All three get the same config with a relative cgroupsPath, so their cgroups land under this
# script's own cgroup (never at a hierarchy root) and each creates and removes one per run.
# crun 1.8 refuses hybrid cgroup hosts, so everything runs in a private mount namespace where an
# empty tmpfs hides /sys/fs/cgroup/unified; crun 1.8 also refuses ociVersion 1.2, so the
# config says 1.0.2 for all three.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh runc crun hyperfine jq
hack/build.sh
brig=$PWD/target/release/brig
runs=${BENCH_RUNS:-200}

work=$(mktemp -d /tmp/brig-bench.XXXXXX)
cleanup() {
  for rt in brig runc crun; do
    bin=$rt; [ "$rt" = brig ] && bin=$brig
    for id in "bench-$rt" "svc-$rt"; do
      "$bin" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

hack/make-rootfs.sh "$work/rootfs-bundle" >/dev/null
rootfs=$work/rootfs-bundle/rootfs
mkdir -p "$work/brig"
"$brig" spec --bundle "$work/brig"
jq --arg root "$rootfs" --arg cg "brig-bench-$$" \
  '.root.path = $root | .process.terminal = false | .process.args = ["/bin/true"] | .ociVersion = "1.0.2" | .linux.cgroupsPath = $cg' \
  "$work/brig/config.json" > "$work/brig/c" && mv "$work/brig/c" "$work/brig/config.json"

# A long-running container per runtime for the exec benchmark, each in a cgroup of its own.
for rt in brig runc crun; do
  mkdir -p "$work/svc-$rt"
  jq --arg cg "brig-bench-$$-svc-$rt" '.process.args = ["/bin/sleep", "100000"] | .linux.cgroupsPath = $cg' \
    "$work/brig/config.json" > "$work/svc-$rt/config.json"
done

export brig work
unshare --mount --propagation private bash -c '
  set -euo pipefail
  [ -d /sys/fs/cgroup/unified ] && mount -t tmpfs -o size=1m tmpfs /sys/fs/cgroup/unified
  cmds=("$brig --root $work/state-brig run -b $work/brig bench-brig"
        "runc --root $work/state-runc run -b $work/brig bench-runc")
  names=(brig runc)
  if crun --version >/dev/null 2>&1; then
    cmds+=("crun --root $work/state-crun run -b $work/brig bench-crun"); names+=(crun)
  fi
  args=()
  for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
  hyperfine -N --warmup 10 --runs '"$runs"' --export-json "$work/result.json" "${args[@]}"

  # exec of /bin/true into a running container of each runtime (what liveness probes do).
  args=()
  for name in "${names[@]}"; do
    bin=$name; [ "$name" = brig ] && bin=$brig
    $bin --root "$work/state-$name" run -d -b "$work/svc-$name" "svc-$name" </dev/null >/dev/null
    args+=(-n "$name" "$bin --root $work/state-$name exec svc-$name /bin/true")
  done
  hyperfine -N --warmup 10 --runs '"$runs"' --export-json "$work/exec.json" "${args[@]}"
  for name in "${names[@]}"; do
    bin=$name; [ "$name" = brig ] && bin=$brig
    $bin --root "$work/state-$name" delete --force "svc-$name" >/dev/null 2>&1 || true
  done
'
ratios() {
  jq -r '.results | (map(select(.command == "brig")) | .[0].mean) as $b
    | .[] | "\(.command): mean \(.mean * 1000 | . * 100 | round / 100) ms, brig/\(.command) = \(($b / .mean) * 100 | round / 100)"' "$1"
}
echo "run /bin/true:"
ratios "$work/result.json"
echo "exec /bin/true into a running container:"
ratios "$work/exec.json"
