#!/usr/bin/env bash
# Regenerate integration/tests/fixtures/seccomp/{podman,containerd}.json: the `linux.seccomp`
# object each engine really writes into config.json for a default container. Run by hand as
# root when the engines are upgraded; the tests read the checked-in files.
#
# Each engine is pointed at a stand-in runtime that copies the bundle's config.json and refuses
# `create`, so nothing runs. podman gets private storage; containerd a private daemon (own
# root, state and socket under a temp dir) that is stopped on exit. Nothing needs the network.
set -euo pipefail
cd "$(dirname "$0")/.."
out=integration/tests/fixtures/seccomp
mkdir -p "$out"

work=$(mktemp -d /tmp/brig-capture.XXXXXX)
ctd_pid=
cleanup() {
  if [ -n "$ctd_pid" ]; then
    ctr --address "$work/ctd/containerd.sock" containers rm capture >/dev/null 2>&1 || true
    kill "$ctd_pid" 2>/dev/null || true
    wait "$ctd_pid" 2>/dev/null || true
  fi
  podman --root "$work/podman/root" --runroot "$work/podman/runroot" rm -af >/dev/null 2>&1 || true
  # podman's overlay storage may hold mounts: unmount before removing anything.
  { grep -o " $work[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$work"
  # The cgroup directories podman made for the run (conmon's may take a moment to empty).
  for d in "${cg_made[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [ -d "$d" ] || break
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null && break
      sleep 0.2
    done
  done
}
cg_made=()
trap cleanup EXIT

mkdir -p "$work/rootfs/bin"
cat > "$work/dump-runtime" <<EOF
#!/bin/sh
prev=
for a in "\$@"; do
  case "\$prev" in --bundle|-b) cp "\$a/config.json" "$work/captured.json";; esac
  prev=\$a
done
case " \$* " in *" create "*) echo "capture runtime: config.json kept, not creating" >&2; exit 1;; esac
exit 0
EOF
chmod +x "$work/dump-runtime"

keep() {
  [ -s "$work/captured.json" ] || { echo "$1 wrote no config.json" >&2; exit 1; }
  jq '.linux.seccomp' "$work/captured.json" > "$out/$1.json"
  rm "$work/captured.json"
  echo "$out/$1.json: $(jq '[.syscalls[].names | length] | add' "$out/$1.json") syscall names ($2)"
}

# podman's default cgroup parent is /libpod_parent at every hierarchy's root: give it one
# below this script's own cgroup instead, and remove what it made there.
own_cg=$(awk -F: '$3 != "" && length($3) > length(best) { best = $3 } END { print best }' /proc/self/cgroup)
cgp=${own_cg%/}/brig-capture-$$
# Every hierarchy directory on that path that does not exist yet is removed at the end.
for h in /sys/fs/cgroup/*/; do
  [ -f "$h/cgroup.procs" ] || continue
  d=${h%/}
  IFS=/ read -ra parts <<<"${cgp#/}"
  for part in "${parts[@]}"; do
    d=$d/$part
    if [ ! -d "$d" ]; then
      cg_made+=("$d")
      break
    fi
  done
done
podman --root "$work/podman/root" --runroot "$work/podman/runroot" --tmpdir "$work/podman/tmp" \
  --cgroup-manager cgroupfs --events-backend file --runtime "$work/dump-runtime" \
  run --cgroup-parent "$cgp" --network none --rootfs "$work/rootfs" /bin/true >/dev/null 2>&1 || true

keep podman "$(podman --version)"

mkdir -p "$work/ctd"
cat > "$work/ctd/config.toml" <<EOF
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd/containerd.sock"
[ttrpc]
  address = "$work/ctd/containerd.sock.ttrpc"
[debug]
  address = "$work/ctd/debug.sock"
EOF
containerd --config "$work/ctd/config.toml" >"$work/ctd/log" 2>&1 &
ctd_pid=$!
for _ in $(seq 50); do [ -S "$work/ctd/containerd.sock" ] && break; sleep 0.2; done
ctr --address "$work/ctd/containerd.sock" run --rootfs --seccomp \
  --runc-binary "$work/dump-runtime" "$work/rootfs" capture /bin/true >/dev/null 2>&1 || true
keep containerd "$(containerd --version)"
