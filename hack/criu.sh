#!/usr/bin/env bash
# Build CRIU 4.2 (../shared/criu, about half a minute; a no-op once built) for brig's
# checkpoint/restore tests and runc's checkpoint.bats. Debian 12's criu 3.17 cannot start on
# this kernel (vDSO), so brig's tests use this one: /var/cache/criu/bin/criu (CRIU_CACHE changes
# the directory; integration/tests/checkpoint.rs looks there or at $BRIG_CRIU).
#
#   sudo hack/criu.sh        # prints the binary's path
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CRIU_SOURCE_DIR:-$repo/../shared/criu}/build.sh
[ "$(id -u)" = 0 ] || { echo "criu.sh: run as root" >&2; exit 2; }
[ -x "$build" ] || [ -f "$build" ] || { echo "criu.sh: no CRIU source at $build" >&2; exit 2; }
# Another apt-get (a parallel job) holds the dpkg lock for a while: wait for it.
for _ in $(seq 60); do
  if bash "$build"; then exit 0; fi
  fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || exit 1
  sleep 5
done
exit 1
