#!/usr/bin/env bash
# The OCI runtime-tools validation suite, as published, against brig (or any runtime).
#
#   sudo hack/validation.sh                      # report; exits 0 even when programs fail
#   VALIDATION_STRICT=1 sudo hack/validation.sh  # exit 1 if a program not in hack/validation-skip.txt fails
#   VALIDATION_TESTS="create hooks" ...          # run only these programs (default: all 58)
#   BRIG_BINARY=/path/to/runtime ...             # default: target/release/brig (hack/build.sh)
#   VALIDATION_TIMEOUT=120                       # seconds per program
#   RUNTIME_TOOLS_SRC=DIR                        # default: ../shared/runtime-tools
#   VALIDATION_SKIP_FILE=FILE                    # default: hack/validation-skip.txt
#   VALIDATION_RUN_DIR=DIR                       # where each run's bundles go (default target/validation)
#   VALIDATION_BUILD_ONLY=1 / VALIDATION_NO_BUILD=1  # build the suite and stop / run what is built
#   VALIDATION_RUNTIME_FLAGS="--systemd-cgroup"  # global flags given to the runtime on every call
#
# The upstream tree (runtime-tools 0105384 with its vendor/, unmodified) is copied to target/ and
# built offline with Debian's golang-go: every validation/<name> program and cmd/runtimetest
# (static, it runs inside the container). Each program runs in its own private mount namespace
# with a timeout, from a directory holding rootfs-amd64.tar.gz (busybox, hack/make-rootfs.sh) and
# runtimetest, as upstream's Makefile expects; its TAP is kept in target/validation/last-run/.
# A program passes when it exits 0, prints no `not ok` and at least one `ok`; the lifecycle
# programs that run no test point pass with a plan of 1..0 and no "error" diagnostic, and the two
# that only expect an error print nothing when they pass (see silent_on_success).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=$repo/target/validation
per_test_timeout=${VALIDATION_TIMEOUT:-120}
strict=${VALIDATION_STRICT:-0}
skip_file=${VALIDATION_SKIP_FILE:-$repo/hack/validation-skip.txt}
rt_upstream=${RUNTIME_TOOLS_SRC:-$repo/../shared/runtime-tools}
start_time=$(date +%s)

log() { printf '[validation] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (containers, mounts, namespaces)"
# One run per host at a time: the programs use fixed cgroup paths (/cgrouptest, ...).
exec 9>/tmp/brig-validation.lock
flock 9
[ -d "$rt_upstream/validation" ] && [ -d "$rt_upstream/vendor" ] ||
  die "runtime-tools source with validation/ and vendor/ not found at $rt_upstream (set RUNTIME_TOOLS_SRC)"

# ---------------------------------------------------------------- 1. packages (by name, apt only)
if [ "${VALIDATION_NO_BUILD:-0}" != 1 ]; then
  "$repo/hack/install-deps.sh" golang-go tar gzip util-linux
  command -v go >/dev/null || die "go not found after installing golang-go"
fi

# ---------------------------------------------------------------- 2. build the suite (offline)
# VALIDATION_BUILD_ONLY=1 stops after this step; VALIDATION_NO_BUILD=1 uses what it built
# (the cgroup v2 VM, whose read-only 9p view of the host would make a rebuild slow).
src=$base/runtime-tools
bindir=$base/bin
all_programs=()
for d in "$rt_upstream"/validation/*/; do
  n=$(basename "$d")
  [ "$n" = util ] || all_programs+=("$n")
done
if [ "${VALIDATION_NO_BUILD:-0}" = 1 ]; then
  for n in runtimetest "${all_programs[@]}"; do
    [ -x "$bindir/$n" ] || die "VALIDATION_NO_BUILD=1 but $bindir/$n is not built (VALIDATION_BUILD_ONLY=1 builds it)"
  done
else
  mkdir -p "$base"
  if [ ! -d "$src" ] || ! diff -rq "$rt_upstream" "$src" >/dev/null 2>&1; then
    rm -rf "$src"
    cp -a "$rt_upstream" "$src"
    chmod -R u+w "$src"
  fi
  export GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0
  export GOCACHE=$base/gocache GOPATH=$base/gopath
  mkdir -p "$bindir"
  log "building runtime-tools' validation programs and runtimetest from $rt_upstream"
  (cd "$src" && go build -o "$bindir/runtimetest" ./cmd/runtimetest) >&2
  for n in "${all_programs[@]}"; do
    (cd "$src" && go build -o "$bindir/$n" "./validation/$n") >&2
  done
  log "${#all_programs[@]} programs built"
fi
[ "${VALIDATION_BUILD_ONLY:-0}" = 1 ] && exit 0

# ---------------------------------------------------------------- 3. the runtime (own copy)
mkdir -p "$base"
if [ -n "${BRIG_BINARY:-}" ]; then
  brig_src=$BRIG_BINARY
else
  brig_src=$repo/target/release/brig
  log "hack/build.sh (static release build)"
  (cd "$repo" && hack/build.sh --quiet >&2)
fi
[ -x "$brig_src" ] || die "runtime binary not found: $brig_src (set BRIG_BINARY)"

run_parent=${VALIDATION_RUN_DIR:-$base}
mkdir -p "$run_parent"
run=$(mktemp -d "$run_parent/validation-run.XXXXXX")
chmod 755 "$run"
results=$base/last-run

# The suite's fixed cgroup names (runtime-tools cgroups/cgroups.go): /cgrouptest, and
# testdir/cgrouptest/container below the runtime's own cgroup; delete_only_create_resources makes
# pids/cgrouptest itself. A runtime removes only the leaf, so what this run created and left
# empty is removed at the end (rmdir: never a cgroup with processes or children).
suite_cgroups() {
  local mp own
  awk '{for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) ~ /^cgroup2?$/) print $5}' \
    /proc/self/mountinfo | while read -r mp; do
    for own in "" $(cut -d: -f3 /proc/self/cgroup | sort -u); do
      own=${own%/}
      printf '%s\n' "$mp$own/testdir/cgrouptest/container" "$mp$own/testdir/cgrouptest" \
        "$mp$own/testdir" "$mp$own/cgrouptest"
    done
  done | awk '!seen[$0]++'
}
existing_suite_cgroups=$(suite_cgroups | while read -r d; do [ ! -d "$d" ] || echo "$d"; done)

cleanup() {
  local rc=$? mp
  set +e
  # Every program ran in a mount namespace of its own, so nothing it mounted is visible here;
  # containers it left are found by their bundle, which is below this run's directory.
  if [ -x "$run/brig" ]; then
    for root in /run/brig "$run/tmp"; do
      for id in $("$run/brig" --root "$root" list -q 2>/dev/null); do
        if "$run/brig" --root "$root" state "$id" 2>/dev/null | grep -q "\"bundle\": *\"$run/"; then
          log "cleanup: delete --force $id"
          "$run/brig" --root "$root" delete --force "$id" >/dev/null 2>&1
        fi
      done
    done
  fi
  awk -v r="$run" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r mp; do log "cleanup: umount -l $mp"; umount -l "$mp"; done
  rm -rf "$run"
  suite_cgroups | while read -r mp; do
    if [ -d "$mp" ] && ! grep -qxF "$mp" <<<"$existing_suite_cgroups"; then
      rmdir "$mp" 2>/dev/null && log "cleanup: rmdir $mp"
    fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# VALIDATION_RUNTIME_FLAGS (e.g. --systemd-cgroup): global flags for every runtime call, through
# a wrapper in the programs' RUNTIME place.
if [ -n "${VALIDATION_RUNTIME_FLAGS:-}" ]; then
  cp "$brig_src" "$run/brig-bin"
  printf '#!/bin/sh\nexec %q %s "$@"\n' "$run/brig-bin" "$VALIDATION_RUNTIME_FLAGS" >"$run/brig"
  chmod 755 "$run/brig"
  log "runtime flags: $VALIDATION_RUNTIME_FLAGS"
else
  cp "$brig_src" "$run/brig"
fi
runtime_version=$("$run/brig" --version 2>&1 | head -n 1)
log "runtime: $brig_src ($runtime_version)"

# ---------------------------------------------------------------- 4. rootfs tarball + runtimetest
"$repo/hack/make-rootfs.sh" "$run/rootfs-src" >&2
# Upstream's tarball holds the root filesystem at its top level: the programs set root.path "."
# and unpack it straight into the bundle directory.
tar -C "$run/rootfs-src/rootfs" -czf "$run/rootfs-$(go env GOARCH).tar.gz" .
rm -rf "$run/rootfs-src"
cp "$bindir/runtimetest" "$run/runtimetest"

# ---------------------------------------------------------------- 5. run
programs=()
if [ -n "${VALIDATION_TESTS:-}" ]; then
  for p in $VALIDATION_TESTS; do
    [ -x "$bindir/$p" ] || die "no validation program named $p"
    programs+=("$p")
  done
else
  programs=("${all_programs[@]}")
fi

# Skip list: `name  # reason`; a name without a reason is refused.
declare -A skip_reason=()
if [ -f "$skip_file" ]; then
  while IFS= read -r line; do
    name=${line%%#*}; name=${name//[[:space:]]/}
    [ -n "$name" ] || continue
    reason=${line#*#}
    [ "$reason" != "$line" ] && [ -n "${reason// /}" ] || die "$skip_file: $name has no reason"
    skip_reason[$name]=$reason
  done < "$skip_file"
fi

# Programs that print no TAP when the runtime does right: they only check that create or start
# fails (`if err == nil { util.Fatal(...) }`, exit 1) and exit 0 in silence otherwise. Every
# other program must print at least one `ok`.
declare -A silent_on_success=([process_capabilities_fail]=1 [process_rlimits_fail]=1)

rm -rf "$results"
mkdir -p "$results" "$run/tmp"
log "running ${#programs[@]} programs, ${per_test_timeout}s timeout each; TAP in $results"
pass=0 fail=0 skipped=0
summary=()
for p in "${programs[@]}"; do
  t0=$(date +%s)
  set +e
  # A private mount namespace per program: whatever the program or the runtime mounts (or a
  # runtime bug that touches the caller's mounts) stays out of the host's namespace.
  (cd "$run" && env RUNTIME="$run/brig" TMPDIR="$run/tmp" \
      timeout -k 5 "$per_test_timeout" unshare --mount --propagation private "$bindir/$p") \
      >"$results/$p.tap" 2>"$results/$p.stderr" </dev/null
  rc=$?
  set -e
  dt=$(( $(date +%s) - t0 ))
  oks=$(grep -c '^ok ' "$results/$p.tap" || true)
  noks=$(grep -c '^not ok ' "$results/$p.tap" || true)
  # Lifecycle programs (hooks, poststart, prestart_fail, ...) run no test point: they print a
  # plan of 1..0, and a YAML diagnostic with an "error" when the runtime did wrong.
  no_points_clean=0
  if [ "$oks" = 0 ] && grep -q '^1\.\.0$' "$results/$p.tap" && ! grep -q '"error": "[^"]' "$results/$p.tap"; then
    no_points_clean=1
  fi
  if [ "$rc" = 0 ] && [ "$noks" = 0 ] &&
     { [ "$oks" -gt 0 ] || [ "$no_points_clean" = 1 ] || [ -n "${silent_on_success[$p]:-}" ]; }; then
    status=PASS; pass=$((pass + 1))
  elif [ -n "${skip_reason[$p]:-}" ]; then
    status=SKIP; skipped=$((skipped + 1))
  else
    status=FAIL; fail=$((fail + 1))
  fi
  [ "$rc" = 124 ] && status="$status (timeout)"
  summary+=("$(printf '%-36s %-16s %3d ok %3d not ok %4ss' "$p" "$status" "$oks" "$noks" "$dt")")
  printf '%s\n' "${summary[-1]}" >&2
done

# ---------------------------------------------------------------- 6. report
{
  echo
  echo "=== OCI runtime-tools validation (upstream $(cat "$src/VERSION" 2>/dev/null | tr -d '\n')) ==="
  echo "runtime: $brig_src ($runtime_version)"
  printf '%s\n' "${summary[@]}"
  echo
  for p in "${programs[@]}"; do
    if grep -q '^not ok ' "$results/$p.tap" || ! grep -q '^ok ' "$results/$p.tap"; then
      if [ -n "${skip_reason[$p]:-}" ]; then echo "--- $p (skip-listed:${skip_reason[$p]})"; else echo "--- $p"; fi
      awk '/^not ok /{show=1; print; next} /^[ #]/{if (show) print; next} {show=0}' "$results/$p.tap" | head -n 40 | cut -c1-300
      if [ -s "$results/$p.stderr" ]; then echo "  stderr:"; tail -n 5 "$results/$p.stderr" | sed 's/^/    /' | cut -c1-300; fi
    fi
  done
  echo
  echo "TAP files: $results"
  echo "total time: $(( $(date +%s) - start_time ))s"
  echo "validation: $pass passed, $fail failed, $skipped skipped"
} | tee "$results/summary.txt"

if [ "$strict" = 1 ] && [ "$fail" -gt 0 ]; then
  log "VALIDATION_STRICT=1: $fail program(s) not in $(basename "$skip_file") failed"
  exit 1
fi
exit 0
