#!/usr/bin/env bash
# Run brig's tests on a pure cgroup v2 kernel: Debian's stock kernel under qemu, booted with
# cgroup_no_v1=all. Run as root.
#
#   hack/vm-test.sh [-v] [--test NAME]... [--skip NAME]... [--cgroup PATH]
#                                                              the workspace's tests in the VM
#   hack/vm-test.sh [-v] [--cgroup PATH] -- CMD [ARG]...       any command in the VM (same cwd)
#   hack/vm-test.sh [-v] [--cgroup PATH] --validation          hack/validation.sh in the VM
#   hack/vm-test.sh --systemd [--cgroup-v1] ...                 any of those with systemd as PID 1
#
# The kernel package (linux-image-amd64 and the versioned package it depends on) is fetched
# with `apt-get download` and unpacked into target/vm/ (never installed on the host); later
# runs reuse it (rm -rf target/vm to refresh). A busybox initramfs (hack/vm/init) mounts the
# host's / read-only over virtio-9p under a tmpfs overlay and switch_roots into it, so the
# guest has the host's userland and builds while its writes stay in guest memory;
# hack/vm/guest.sh then mounts cgroup2 alone at /sys/fs/cgroup, enables every controller in
# the root's cgroup.subtree_control, mounts a fresh ext4 disk (4G, sparse) at /tmp and runs
# the job as root in the root cgroup (or in PATH below it with --cgroup).
#
# Tests: `hack/build.sh` and `cargo test --no-run` on the host (--test NAME picks
# integration test targets, as for cargo; --skip NAME leaves a test target out, e.g. the load
# test, which measures nothing about cgroup v2 and is slow under TCG), the integration rootfs
# is built on the host, then
# each test executable runs in the guest from its crate's directory with
# BRIG_BINARY=target/release/brig; VM_TEST_ARGS are passed to every test executable (a name
# filter, --nocapture...). The last line is `vm-tests: N passed, N failed`.
#
# --validation: the OCI runtime-tools programs are built on the host (VALIDATION_BUILD_ONLY=1
# hack/validation.sh), then hack/validation.sh runs them in the guest (bundles on its /tmp)
# against BRIG_BINARY (default target/release/brig, built by hack/build.sh), with the skip list
# hack/validation-skip-vm.txt (VALIDATION_SKIP_FILE); VALIDATION_STRICT, VALIDATION_TESTS,
# VALIDATION_TIMEOUT and VALIDATION_RUNTIME_FLAGS (e.g. --systemd-cgroup) are passed on.
#
# The job's output comes back byte-exact on stdout (second serial port, raw); its exit status
# (third serial port) is the script's. Messages of this script and, on failure or with -v,
# the kernel console go to stderr.
#
# --systemd: the guest boots the host's /lib/systemd/systemd as PID 1 (lean: only dbus and the
# job's unit, vm-job.service with Delegate=yes, which reports as above); systemd mounts the
# cgroups (v2, or v1 with --cgroup-v1: systemd.unified_cgroup_hierarchy=0). --cgroup does not
# apply there: the job runs in /system.slice/vm-job.service.
#
# Environment: VM_TIMEOUT (seconds for the whole VM, default 1800), VM_MEMORY (default 3G),
# VM_CPUS (default 2), VM_ACCEL (kvm, tcg or auto: kvm with hardware virtualisation, else
# tcg), VM_BOOT_TIMEOUT (seconds until the guest must have booted, default 180), VM_KEEP=1
# keeps the run's directory (console log, output, initramfs) under target/vm/.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=$repo/target/vm
# What the initramfs must load to reach the 9p share and build the overlay (modprobe adds
# their dependencies); everything else comes from the full module tree once in the overlay.
initramfs_modules=(virtio_pci 9pnet_virtio 9p overlay)

die() {
  echo "vm-test: $*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
  exit "${1:-0}"
}

verbose=0
validation=0
systemd=0
cgroup_v1=0
tests=()
skips=()
cgroup=
cmd=()
while [ $# -gt 0 ]; do
  case $1 in
    -v | --verbose) verbose=1 ;;
    --test)
      [ $# -ge 2 ] || die "--test needs a test target name"
      tests+=("$2")
      shift
      ;;
    --skip)
      [ $# -ge 2 ] || die "--skip needs a test target name"
      skips+=("$2")
      shift
      ;;
    --cgroup)
      [ $# -ge 2 ] || die "--cgroup needs a path below the root cgroup"
      cgroup=/${2#/}
      shift
      ;;
    --)
      shift
      [ $# -gt 0 ] || die "-- needs a command"
      cmd=("$@")
      break
      ;;
    --validation) validation=1 ;;
    --systemd) systemd=1 ;;
    --cgroup-v1) cgroup_v1=1 ;;
    -h | --help) usage 0 ;;
    *) usage 2 >&2 ;;
  esac
  shift
done
if [ ${#cmd[@]} -gt 0 ] && [ $((${#tests[@]} + ${#skips[@]})) -gt 0 ]; then
  die "--test and --skip select tests; they do not go with -- CMD"
fi
if [ "$validation" = 1 ] && { [ ${#cmd[@]} -gt 0 ] || [ ${#tests[@]} -gt 0 ]; }; then
  die "--validation goes with neither --test nor -- CMD"
fi
if [ "$cgroup_v1" = 1 ] && [ "$systemd" = 0 ]; then
  die "--cgroup-v1 needs --systemd (without it the guest mounts cgroup2 alone)"
fi
if [ "$systemd" = 1 ] && [ -n "$cgroup" ]; then
  die "--cgroup does not go with --systemd (the job is a systemd unit)"
fi
if [ "$systemd" = 1 ] && [ ! -x /lib/systemd/systemd ]; then
  die "--systemd needs systemd installed on the host (/lib/systemd/systemd)"
fi
case $cgroup in *[!A-Za-z0-9_./-]* | */../* | */.. | */./* | */.) die "--cgroup: bad path $cgroup" ;; esac

timeout=${VM_TIMEOUT:-1800}
memory=${VM_MEMORY:-3G}
cpus=${VM_CPUS:-2}
accel=${VM_ACCEL:-auto}
case $timeout in '' | *[!0-9]*) die "VM_TIMEOUT must be a number of seconds, not '$timeout'" ;; esac
case ${VM_BOOT_TIMEOUT:-180} in *[!0-9]*) die "VM_BOOT_TIMEOUT must be a number of seconds" ;; esac
case $cpus in '' | *[!0-9]*) die "VM_CPUS must be a number, not '$cpus'" ;; esac
case $accel in auto | kvm | tcg) ;; *) die "VM_ACCEL must be auto, kvm or tcg, not '$accel'" ;; esac
case $repo$cache in *[[:space:]]*) die "the repository path must have no whitespace (it goes on the kernel command line)" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (qemu reads the whole host's / for the guest)"

started=$SECONDS
"$repo/hack/install-deps.sh" qemu-system-x86 jq e2fsprogs
if ldd /bin/busybox >/dev/null 2>&1; then
  die "/bin/busybox is dynamically linked; install busybox-static"
fi

mkdir -p "$cache"

# The kernel: unpacked once into $cache/linux-image-*/ (marked complete), reused afterwards.
fetch_kernel() {
  local dl=$cache/download meta dep pkg tmp kver
  rm -rf "$dl"
  mkdir -p "$dl"
  if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    apt-get update -qq
  fi
  # -o APT::Sandbox::User=root: the download directory is root's, not _apt's.
  (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root linux-image-amd64) \
    || die "apt-get download linux-image-amd64 failed"
  meta=$(echo "$dl"/linux-image-amd64_*.deb)
  dep=$(dpkg-deb -f "$meta" Depends)
  pkg=$(echo "$dep" | grep -o 'linux-image-[0-9][^ ,(|]*' | head -n1)
  [ -n "$pkg" ] || die "linux-image-amd64 depends on no versioned kernel package ($dep)"
  echo "vm-test: fetching $pkg (once; cached in $cache)" >&2
  (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") \
    || die "apt-get download $pkg failed"
  tmp=$cache/$pkg.tmp
  rm -rf "$tmp"
  dpkg-deb -x "$(echo "$dl/${pkg}"_*.deb)" "$tmp"
  kver=$(ls "$tmp/lib/modules")
  [ -f "$tmp/boot/vmlinuz-$kver" ] || die "$pkg has no /boot/vmlinuz-$kver"
  # The package has no modules.dep (the host's depmod makes it on install).
  busybox depmod -b "$tmp" "$kver"
  echo "$kver" >"$tmp/kernel-version"
  rm -rf "${cache:?}/$pkg" "$dl"
  mv "$tmp" "$cache/$pkg"
}
exec 8>"$cache/.lock"
flock 8
kdir=$(find "$cache" -maxdepth 2 -path "$cache/linux-image-*/kernel-version" -printf '%h\n' | sort -V | tail -n1)
if [ -z "$kdir" ]; then
  fetch_kernel
  kdir=$(find "$cache" -maxdepth 2 -path "$cache/linux-image-*/kernel-version" -printf '%h\n' | sort -V | tail -n1)
fi
flock -u 8
exec 8>&-
kver=$(cat "$kdir/kernel-version")
vmlinuz=$kdir/boot/vmlinuz-$kver
moddir=$kdir/lib/modules/$kver

run=$(mktemp -d "$cache/run.XXXXXX")
tpid=
vpid=
qpid=
cleanup() {
  local rc=$?
  # Stop the qemu we started (through its timeout wrapper, which passes the signal on).
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  for pid in $tpid $vpid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${VM_KEEP:-0}" = 1 ]; then
    echo "vm-test: kept $run" >&2
  else
    rm -rf "$run"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The job the guest runs (bash from the host's userland, stdout/stderr to the output port).
job=$run/job
{
  echo '#!/bin/bash'
  printf 'export PATH=%q\n' "$PATH"
  for var in LANG LC_ALL RUST_BACKTRACE RUST_LOG CARGO_TARGET_DIR BRIG_BINARY; do
    [ -z "${!var:-}" ] || printf 'export %s=%q\n' "$var" "${!var}"
  done
} >"$job"

if [ "$validation" = 1 ]; then
  cd "$repo"
  brig=${BRIG_BINARY:-}
  if [ -z "$brig" ]; then
    "$repo/hack/build.sh"
    brig=${CARGO_TARGET_DIR:-$repo/target}/release/brig
  fi
  VALIDATION_BUILD_ONLY=1 "$repo/hack/validation.sh"
  {
    printf 'cd %q || exit 125\n' "$repo"
    printf 'exec env VALIDATION_NO_BUILD=1 VALIDATION_RUN_DIR=/tmp BRIG_BINARY=%q' "$brig"
    printf ' VALIDATION_SKIP_FILE=%q' "${VALIDATION_SKIP_FILE:-$repo/hack/validation-skip-vm.txt}"
    for var in VALIDATION_STRICT VALIDATION_TESTS VALIDATION_TIMEOUT VALIDATION_RUNTIME_FLAGS; do
      [ -z "${!var:-}" ] || printf ' %s=%q' "$var" "${!var}"
    done
    printf ' hack/validation.sh\n'
  } >>"$job"
elif [ ${#cmd[@]} -gt 0 ]; then
  {
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "${cmd[@]}"
    printf '\n'
  } >>"$job"
else
  cd "$repo"
  "$repo/hack/build.sh"
  target_args=(--workspace)
  for t in "${tests[@]}"; do target_args+=(--test "$t"); done
  cargo test --locked --no-run --message-format=json "${target_args[@]}" >"$run/artifacts.json"
  skip_json=$(printf '%s\n' "${skips[@]}" | jq -R . | jq -s 'map(select(. != ""))')
  jq -r --argjson skip "$skip_json" \
    'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
         | select(.target.name as $n | $skip | index($n) | not)
         | [(.manifest_path | rtrimstr("/Cargo.toml")), .executable] | @tsv' \
    "$run/artifacts.json" >"$run/executables"
  [ -s "$run/executables" ] || die "cargo test --no-run listed no test executable"
  # The harness's base rootfs (integration/src/lib.rs), built here under its lock: the guest
  # sees it read-only (its writes would stay in the guest).
  base=${CARGO_TARGET_DIR:-$repo/target}/brig-it
  mkdir -p "$base"
  (
    flock 9
    if [ ! -e "$base/rootfs/bin/busybox" ]; then
      rm -rf "$base/building-$$"
      "$repo/hack/make-rootfs.sh" "$base/building-$$"
      mv "$base/building-$$/rootfs" "$base/rootfs"
      rm -rf "$base/building-$$"
    fi
  ) 9>"$base/.lock"
  brig=${BRIG_BINARY:-${CARGO_TARGET_DIR:-$repo/target}/release/brig}
  {
    printf 'export BRIG_BINARY=%q\n' "$brig"
    printf 'failed=0\n'
    while IFS=$'\t' read -r dir exe; do
      printf 'echo "     Running %s"\n' "${exe#"$repo"/}"
      printf '(cd %q && exec %q %s) || failed=$((failed + 1))\n' "$dir" "$exe" "${VM_TEST_ARGS:-}"
    done <"$run/executables"
    printf '[ "$failed" = 0 ] || echo "vm: $failed test executable(s) failed"\n'
    printf '[ "$failed" = 0 ]\n'
  } >>"$job"
fi
chmod 0755 "$job"

# The initramfs: static busybox, hack/vm/init and the modules the mounts need.
stage=$run/initramfs
mkdir -p "$stage/bin" "$stage/lib/modules/$kver"
cp /bin/busybox "$stage/bin/busybox"
cp "$repo/hack/vm/init" "$stage/init"
chmod 0755 "$stage/init"
printf '%s\n' "${initramfs_modules[@]}" >"$stage/modules"
declare -A wanted=()
for m in "${initramfs_modules[@]}"; do
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep") || die "kernel $kver has no module $m"
  for f in ${line/:/}; do wanted[$f]=1; done
done
for f in "${!wanted[@]}"; do
  mkdir -p "$stage/lib/modules/$kver/$(dirname "$f")"
  cp "$moddir/$f" "$stage/lib/modules/$kver/$f"
done
busybox depmod -b "$stage" "$kver"
(cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$run/initramfs.gz"

if [ "$accel" = auto ]; then
  # KVM only with hardware virtualisation (kvm_intel, kvm_amd): a /dev/kvm served by another
  # backend, e.g. kvm_pvm on the CI machines here, boots only kernels built for it and hangs
  # Debian's stock kernel before its first message.
  accel=tcg
  if [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; then
    if [ -c /dev/kvm ] && { exec 7<>/dev/kvm; } 2>/dev/null; then
      exec 7>&-
      accel=kvm
    fi
  fi
fi
if [ "$accel" = kvm ]; then
  cpu_args=(-accel kvm -cpu host)
else
  cpu_args=(-accel tcg -cpu max)
fi
# Warnings and worse on the console (it is shown on failure); everything with -v.
loglevel=4
[ "$verbose" = 0 ] || loglevel=7
append="console=ttyS0 panic=-1 loglevel=$loglevel"
if [ "$systemd" = 1 ]; then
  append+=" vm.systemd=1 fstab=no systemd.show_status=0 systemd.firstboot=0"
  if [ "$cgroup_v1" = 1 ]; then
    append+=" systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"
  else
    append+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
  fi
else
  append+=" cgroup_no_v1=all"
fi
append+=" vm.stage2=$repo/hack/vm/guest.sh vm.job=$job vm.modules=$moddir"
[ -z "$cgroup" ] || append+=" vm.cgroup=$cgroup"
# The guest's /tmp: ext4 on a virtio disk, like a host's disk (tmpfs in Linux 6.1 has no
# idmapped mounts, and the blkio tests need a block device). Sparse, gone with the run.
truncate -s 4G "$run/scratch.img"
mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=1 -L vm-scratch "$run/scratch.img"
: >"$run/console"
: >"$run/out"
: >"$run/status"

echo "vm-test: booting linux $kver ($accel, $cpus vCPUs, $memory, timeout ${timeout}s)" >&2
vm_started=$SECONDS
# timeout(1) puts qemu in a process group of its own and kills it after $timeout seconds.
timeout --kill-after=10 "$timeout" qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -monitor none -no-reboot \
  "${cpu_args[@]}" -smp "$cpus" -m "$memory" \
  -kernel "$vmlinuz" -initrd "$run/initramfs.gz" -append "$append" \
  -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -drive "file=$run/scratch.img,if=virtio,format=raw,cache=unsafe" \
  -serial "file:$run/console" -serial "file:$run/out" -serial "file:$run/status" \
  </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
tail -c +1 --pid="$qpid" -f "$run/out" &
tpid=$!
if [ "$verbose" = 1 ]; then
  tail -c +1 --pid="$qpid" -f "$run/console" >&2 &
  vpid=$!
fi
# A guest that has not booted within VM_BOOT_TIMEOUT will not: stop it then, not at the end.
boot_timeout=${VM_BOOT_TIMEOUT:-180}
while kill -0 "$qpid" 2>/dev/null && ! grep -q '^booted ' "$run/status"; do
  if [ $((SECONDS - vm_started)) -ge "$boot_timeout" ]; then
    echo "vm-test: the guest did not boot within ${boot_timeout}s (VM_BOOT_TIMEOUT; accel $accel: try VM_ACCEL=tcg)" >&2
    kill -TERM "$qpid"
    break
  fi
  sleep 0.2
done
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$tpid" || true
tpid=
if [ -n "$vpid" ]; then
  wait "$vpid" || true
  vpid=
fi
vm_time=$((SECONDS - vm_started))

booted=$(sed -n 's/^booted //p' "$run/status")
code=$(sed -n 's/^exit \([0-9]*\)$/\1/p' "$run/status")
error=$(sed -n 's/^error //p' "$run/status")
show_console() {
  if [ "$verbose" = 0 ]; then
    echo "vm-test: kernel console (last 60 lines):" >&2
    tail -n 60 "$run/console" >&2
  fi
  [ ! -s "$run/qemu.log" ] || {
    echo "vm-test: qemu said:" >&2
    cat "$run/qemu.log" >&2
  }
}
if [ -z "$code" ]; then
  show_console
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "vm-test: the VM did not finish within ${timeout}s (VM_TIMEOUT); qemu was killed" >&2
    exit 124
  fi
  die "the guest gave no exit status${error:+: $error} (qemu exited with $qrc)"
fi
echo "vm-test: guest booted in ${booted:-?} s (kernel uptime); VM ran ${vm_time} s; total $((SECONDS - started)) s" >&2

if [ ${#cmd[@]} -eq 0 ] && [ "$validation" = 0 ]; then
  [ "$code" = 0 ] || show_console
  awk '/^test result:/ { p += $4; f += $6 } END { printf "vm-tests: %d passed, %d failed\n", p, f }' "$run/out"
  if [ "$code" = 0 ] && grep -q '^test result: FAILED' "$run/out"; then
    code=1
  fi
fi
exit "$code"
