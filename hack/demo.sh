#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running container from an image: build brig, build a
# busybox OCI image offline (hack/make-image.sh: an OCI layout, as `skopeo copy` or `docker
# save` would give), and `brig run --image` it, which pulls it into the verified store,
# unpacks it into a bundle and runs it. Run as root.
#   hack/demo.sh [IMAGE]     IMAGE: any reference brig pull takes, e.g. docker.io/library/busybox
#                            on a machine that reaches a registry (default: the local layout)
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
hack/build.sh
brig=$PWD/target/release/brig
work=$(mktemp -d /tmp/brig-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
image=${1:-}
if [ -z "$image" ]; then
  hack/make-image.sh "$work/layout" latest >/dev/null
  image=oci:$work/layout:latest
fi
"$brig" --root "$work/state" run --image "$image" --store "$work/store" --rm "demo-$$" -- \
  sh -c 'echo hello from $(hostname), pid $$; id; ls /sys/class/net'
