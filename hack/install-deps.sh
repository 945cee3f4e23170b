#!/usr/bin/env bash
# Install what building and testing brig needs on a fresh Debian 12 machine (as root).
# Pass extra package names to install them too (bench.sh adds runc, crun, strace, perf).
set -euo pipefail

# docker-registry and skopeo: the image tests' local registry (integration/src/registry.rs);
# skopeo and umoci also validate hack/make-image.sh's OCI layout (tests/image_convert.rs).
# dbus-user-session: the user bus of a user's systemd manager, which rootless podman needs for
# --cgroup-manager=systemd (hack/dropin-rootless-systemd.sh, in the systemd VM, which sees the
# host's packages).
# time: GNU time, the peak RSS check of tests/footprint.rs.
packages=(busybox-static docker-registry skopeo umoci dbus-user-session time "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Another apt may hold the lock for a while (other jobs on the same machine).
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; brig needs a Rust toolchain (rustup, Rust 1.85 or newer)" >&2
  exit 1
fi
