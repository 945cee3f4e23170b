#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running container: build brig, make a busybox bundle
# with `brig spec`, and run a shell command in it. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
hack/build.sh
brig=$PWD/target/release/brig
bundle=${1:-/tmp/brig-demo}
rm -rf "$bundle"
hack/make-rootfs.sh "$bundle"
cd "$bundle"
"$brig" spec
# Replace the default `sh` with a command that shows the container's view; no terminal, so
# the demo also runs from a script (`brig spec`, like `runc spec`, asks for one).
sed -i -e 's|^\([[:space:]]*\)"sh"$|\1"sh", "-c", "echo hello from $(hostname), pid $$; id; ls /sys/class/net"|' \
  -e 's|"terminal": true|"terminal": false|' config.json
"$brig" run "demo-$$"
