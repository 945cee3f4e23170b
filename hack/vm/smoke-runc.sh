#!/usr/bin/env bash
# Check that a VM booted by hack/vm-test.sh confines containers with cgroup v2, using
# Debian's runc (independent of brig):
#   hack/vm-test.sh -- hack/vm/smoke-runc.sh [RUNTIME]
# A busybox container with memory.max 32 MiB and pids.max 16 reports its own cgroup files,
# a memory hog in it is OOM-killed (memory.events counts it), and forks stop at pids.max.
# RUNTIME defaults to runc (apt-get install -y runc); any runc-compatible binary works.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runtime=${1:-runc}
command -v "$runtime" >/dev/null || { echo "smoke: no $runtime (apt-get install -y runc)" >&2; exit 1; }
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || { echo "smoke: /sys/fs/cgroup is not cgroup2" >&2; exit 1; }

dir=$(mktemp -d /tmp/smoke.XXXXXX)
id=smoke-$$
cleanup() {
  "$runtime" --root "$dir/state" delete --force "$id" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# The integration tests' rootfs when it is built (making one forks ~400 times: slow in a VM).
if [ -e "$repo/target/brig-it/rootfs/bin/busybox" ]; then
  cp -a "$repo/target/brig-it/rootfs" "$dir/rootfs"
else
  "$repo/hack/make-rootfs.sh" "$dir" >/dev/null
fi
(cd "$dir" && "$runtime" spec)
# A cgroup namespace (runc's spec has one on v2 hosts, brig's not): the container's
# /sys/fs/cgroup is then its own cgroup.
jq '.process.terminal = false
  | .linux.namespaces = ([.linux.namespaces[] | select(.type != "cgroup")] + [{type: "cgroup"}])
  | .linux.cgroupsPath = "smoke"
  | .linux.resources.memory = {limit: 33554432, swap: 33554432}
  | .linux.resources.pids = {limit: 16}
  | .process.args = ["sh", "-c", $script]' --arg script '
    echo "memory.max $(cat /sys/fs/cgroup/memory.max)"
    echo "pids.max $(cat /sys/fs/cgroup/pids.max)"
    # A hog in a child: its parent survives the OOM kill and reports it.
    sh -c "x=\$(head -c 100000000 /dev/zero | tr \"\\\\0\" a); echo hog survived" && echo "hog exited 0"
    echo "hog status $?"
    echo "oom_kill $(sed -n "s/^oom_kill //p" /sys/fs/cgroup/memory.events)"
    # A subshell forks until pids.max refuses (busybox sh then exits); its sleepers are left
    # to be counted with builtins only (no fork left).
    (n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n + 1)); done) 2>/dev/null
    c=0
    while read -r p; do c=$((c + 1)); done </sys/fs/cgroup/cgroup.procs
    echo "procs $c"
    kill -9 -1
    wait
    echo "pids.events $(cat /sys/fs/cgroup/pids.events)"
  ' "$dir/config.json" >"$dir/config.new"
mv "$dir/config.new" "$dir/config.json"

start=$(date +%s.%N)
(cd "$dir" && "$runtime" --root "$dir/state" run "$id") >"$dir/out" 2>&1 || true
end=$(date +%s.%N)
cat "$dir/out"

passed=0
failed=0
check() { # NAME EXTENDED-REGEX: one line of the container's output must match
  if grep -Eq "$2" "$dir/out"; then
    echo "ok: $1"
    passed=$((passed + 1))
  else
    echo "FAILED: $1 (no line matches '$2')"
    failed=$((failed + 1))
  fi
}
check "memory.max is the limit" '^memory\.max 33554432$'
check "pids.max is the limit" '^pids\.max 16$'
check "the hog was killed by SIGKILL" '^hog status 137$'
check "memory.events counted the OOM kill" '^oom_kill [1-9]'
check "forks stopped at pids.max" '^procs (1[0-6]|[1-9])$'
check "pids.events counted refused forks" '^pids\.events max [1-9]'
# "smoke" is relative: runc puts it beside its own cgroup, brig below; look everywhere.
left=$(find /sys/fs/cgroup -type d -name smoke)
if [ -n "$left" ]; then
  echo "FAILED: the container's cgroup is left: $left"
  failed=$((failed + 1))
else
  echo "ok: the container's cgroup is gone"
  passed=$((passed + 1))
fi
awk -v s="$start" -v e="$end" 'BEGIN { printf "smoke: the container ran %.1f s\n", e - s }'
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
