#!/usr/bin/env bash
# Benchmark (not a test): what an engine's default seccomp profile costs a syscall-heavy
# container, against the same container with no profile. Run as root.
#
# Workloads, each in a brig container (busybox rootfs), timed with hyperfine for every profile:
#   true  - container start and exit: the fixed cost (compile and install the profile)
#   dd    - dd if=/dev/zero of=/dev/null bs=1 count=N: 2 syscalls (read, write) per byte
#   fork  - a shell loop running /bin/true M times: clone, execve, mmap... per iteration
# Per-syscall cost = (dd - true) / 2N for each profile; the profile's extra cost is the
# difference to "none". Profiles: none; "minimal" (ALLOW by default, one ERRNO rule: one small
# filter, what any filter costs); podman's and containerd's defaults (the test fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh hyperfine jq
hack/build.sh
brig=$PWD/target/release/brig
runs=${BENCH_RUNS:-10}
n=${BENCH_BYTES:-1000000}
m=${BENCH_FORKS:-500}
fixtures=$PWD/integration/tests/fixtures/seccomp

work=$(mktemp -d /tmp/brig-bench-seccomp.XXXXXX)
cleanup() {
  for state in "$work"/state-*; do
    [ -d "$state" ] || continue
    for id in $(ls "$state"); do "$brig" --root "$state" delete --force "$id" >/dev/null 2>&1 || true; done
  done
  { grep -o " $work[^ ]*" /proc/mounts || true; } | sort -r | while read -r mnt; do umount -l "$mnt" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

hack/make-rootfs.sh "$work/rootfs-bundle" >/dev/null
rootfs=$work/rootfs-bundle/rootfs

declare -A script=(
  [true]="true"
  [dd]="dd if=/dev/zero of=/dev/null bs=1 count=$n 2>/dev/null"
  [fork]="i=0; while [ \$i -lt $m ]; do /bin/true; i=\$((i+1)); done"
)
profiles=(none minimal podman containerd)
minimal='{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}'
for p in "${profiles[@]}"; do
  for w in "${!script[@]}"; do
    b=$work/bundle-$p-$w
    mkdir -p "$b"
    "$brig" spec --bundle "$b"
    case $p in
      none) seccomp=null ;;
      minimal) seccomp=$minimal ;;
      *) seccomp=$(cat "$fixtures/$p.json") ;;
    esac
    jq --arg root "$rootfs" --arg cg "brig-bench-seccomp-$$-$p-$w" --arg s "${script[$w]}" \
      --argjson seccomp "$seccomp" \
      '.root.path = $root | .process.terminal = false | .process.args = ["sh", "-c", $s] | .linux.cgroupsPath = $cg
       | if $seccomp == null then del(.linux.seccomp) else .linux.seccomp = $seccomp end' \
      "$b/config.json" > "$b/c" && mv "$b/c" "$b/config.json"
  done
done

for w in true dd fork; do
  args=()
  for p in "${profiles[@]}"; do
    args+=(-n "$p" "$brig --root $work/state-$p run -b $work/bundle-$p-$w bench-$p-$w")
  done
  hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/$w.json" "${args[@]}" >&2
done

echo
echo "seccomp cost, $runs runs each (mean ± stddev):"
jq -rn --slurpfile t "$work/true.json" --slurpfile d "$work/dd.json" --slurpfile f "$work/fork.json" \
  --argjson n "$n" --argjson m "$m" '
  def mean($r; $p): $r[0].results | map(select(.command == $p)) | .[0].mean;
  def sd($r; $p): $r[0].results | map(select(.command == $p)) | .[0].stddev;
  def ms: . * 1000 | . * 100 | round / 100;
  def r2: . * 100 | round / 100;
  (mean($t; "none")) as $t0 | (mean($d; "none")) as $d0 | (mean($f; "none")) as $f0
  | ["none", "minimal", "podman", "containerd"][] as $p
  | (mean($t; $p)) as $tp | (mean($d; $p)) as $dp | (mean($f; $p)) as $fp
  | (($dp - $tp) / (2 * $n) * 1e9) as $ns
  | "\($p): start \($tp | ms) ms; dd \($dp | ms) ± \(sd($d; $p) | ms) ms (x\($dp / $d0 | r2) of none), "
    + "\($ns | r2) ns/syscall (+\($ns - (($d0 - $t0) / (2 * $n) * 1e9) | r2) vs none); "
    + "fork loop \($fp | ms) ms (x\($fp / $f0 | r2)), \(($fp - $tp) / $m * 1e6 | r2) us/iteration"'
