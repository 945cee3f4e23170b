#!/usr/bin/env bash
# runc's own integration suite (v1.1.5, ../shared/runc-tests) against brig.
#
#   sudo hack/runc-tests.sh [RUNTIME] [FILE_REGEX[:TEST_REGEX]]   (default: target/release/brig)
#
# Runs ../shared/runc-tests/setup.sh (idempotent: Debian packages, the suite's helper programs, a
# busybox and a Debian rootfs), then its run.sh, and fails on any failing test that is not in
# hack/runc-tests-exceptions.txt (`file:test name  # reason`; a line without a reason is refused).
# The last line is `runc-tests: N passed, N failed, N skipped`; failures on the exception list
# count as skipped.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
suite=${RUNC_TESTS_DIR:-$repo/../shared/runc-tests}
exceptions=$repo/hack/runc-tests-exceptions.txt
runtime=$(readlink -f "${1:-$repo/target/release/brig}")
filter=${2:-}

[ "$(id -u)" = 0 ] || { echo "runc-tests: run as root" >&2; exit 2; }
[ -x "$runtime" ] || { echo "runc-tests: $runtime is not executable (hack/build.sh)" >&2; exit 2; }
[ -x "$suite/run.sh" ] || { echo "runc-tests: no suite at $suite" >&2; exit 2; }

"$suite/setup.sh" >&2

# The suite's create_parent() runs `mkdir -p /sys/fs/cgroup/$subsys/...` for every controller
# in /proc/cgroups, so on a hybrid host a controller that has no v1 mount (hugetlb here, bound to
# cgroup2) gets a plain directory on the /sys/fs/cgroup tmpfs, which remove_parent() leaves.
# Engines run later then take it for a v1 hierarchy (podman makes its pod cgroups in it and
# fails to remove them). Such directories this run made are removed at the end: only
# directories, only on the tmpfs, never a mount point.
cgroup_root_before=$(ls -A /sys/fs/cgroup 2>/dev/null || true)
remove_suite_cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/; do
    d=${d%/}
    grep -qxF -- "$(basename "$d")" <<<"$cgroup_root_before" && continue
    mountpoint -q "$d" && continue
    [ "$(stat -f -c %T "$d")" = tmpfs ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$d" ] && echo "runc-tests: could not remove $d (not empty)" >&2
  done
  return 0
}
results=$(mktemp -d /tmp/runc-tests-results.XXXXXX)
trap 'rm -rf "$results"; remove_suite_cgroup_dirs' EXIT
set +e
RUNC_TESTS_RESULTS=$results RUNC_TESTS_QUIET=${RUNC_TESTS_QUIET:-1} \
  "$suite/run.sh" "$runtime" ${filter:+"$filter"}
rc=$?
set -e
[ -f "$results/results.tsv" ] || { echo "runc-tests: run.sh wrote no results (exit $rc)" >&2; exit 2; }

declare -A excepted=()
while IFS= read -r line; do
  key=${line%%#*}
  key=$(printf '%s' "$key" | sed 's/[[:space:]]*$//')
  [ -n "$key" ] || continue
  reason=${line#*#}
  [ "$reason" != "$line" ] && [ -n "${reason// /}" ] || { echo "runc-tests: $exceptions: '$key' has no reason" >&2; exit 2; }
  excepted[$key]=1
done < <(grep -v '^[[:space:]]*#' "$exceptions" 2>/dev/null || true)

pass=0 fail=0 skip=0
unexpected=()
while IFS=$'\t' read -r file test result; do
  case $result in
    pass) pass=$((pass + 1)) ;;
    skip) skip=$((skip + 1)) ;;
    *)
      if [ -n "${excepted["$file:$test"]:-}" ]; then
        skip=$((skip + 1))
      else
        fail=$((fail + 1)); unexpected+=("$file:$test")
      fi ;;
  esac
done < "$results/results.tsv"

if [ ${#unexpected[@]} -gt 0 ]; then
  echo "runc-tests: failing, not on the exception list:"
  printf '  %s\n' "${unexpected[@]}"
  for f in $(printf '%s\n' "${unexpected[@]}" | cut -d: -f1 | sort -u); do
    echo "--- raw log of $f.bats (failures)"
    grep -A 40 '^not ok' "$results/$f.tap" 2>/dev/null | head -n 120 || true
  done
fi
echo "runc-tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
