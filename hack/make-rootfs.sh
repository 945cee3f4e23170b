#!/usr/bin/env bash
# Build a busybox-static root filesystem (and optionally a bundle around it).
#   hack/make-rootfs.sh DIR          -> DIR/rootfs, DIR/config.json (from `brig spec` if BRIG is set)
# Needs: busybox-static (apt-get install -y busybox-static).
# ROOTFS_APPLETS="sh cat ...": links for these applets only (default: all of them; one ln each
# costs minutes under the VM's emulation).
set -euo pipefail

dir=${1:?usage: make-rootfs.sh BUNDLE_DIR}
busybox=${BUSYBOX:-/bin/busybox}
if ! "$busybox" --list >/dev/null 2>&1; then
  echo "make-rootfs: $busybox is not busybox; apt-get install -y busybox-static" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "make-rootfs: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

rootfs=$dir/rootfs
mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,home,var,run,usr/bin,usr/sbin}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in ${ROOTFS_APPLETS:-$("$busybox" --list)}; do
  [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
cat > "$rootfs/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$rootfs/etc/group" <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
nogroup:x:65534:
G
echo "brig" > "$rootfs/etc/hostname"

if [ -n "${BRIG:-}" ] && [ ! -e "$dir/config.json" ]; then
  "$BRIG" spec --bundle "$dir"
fi
