#!/usr/bin/env bash
# Rootless podman with the systemd cgroup manager (issues 16 and 17), the normal desktop case: a
# user made for this run, with its own systemd manager (user@UID.service) and user bus, runs
# Debian's podman 4.3 with --cgroup-manager=systemd (podman then passes --systemd-cgroup to its
# runtime, which asks the user's manager for a delegated scope) and the runtime under test:
# run, run -d + exec + stop, --memory and --pids-limit applied. It runs only in the systemd VM:
#   hack/vm-test.sh --systemd -- hack/dropin-rootless-systemd.sh [RUNTIME_BINARY]
# (default runtime: target/release/brig; `... -- hack/dropin-rootless-systemd.sh /usr/sbin/runc`
# checks the script against Debian's runc). It refuses to run anywhere else (PID 1 must be
# systemd and the VM's marker /run/vm/systemd-job.sh must exist): it starts a user manager and
# makes units in it. The packages (podman, conmon, uidmap, dbus-user-session, busybox-static)
# must be installed on the host beforehand: the VM sees the host's root and has no network.
#
# What it checks (cgroup v2): the container's cgroup is the scope podman named
# (user.slice:libpod:ID) below user@UID.service, delegated, with the limits in its files (read
# inside the container) and in the unit's properties; an exec'd process is in it; stop and rm
# leave no unit. Every runtime call is logged by a wrapper named runc; the last line is
# `dropin-rootless-systemd: N passed, N failed`, and the status is non-zero on any failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
NAME=dropin-rootless-systemd
if [ "$(id -u)" != 0 ]; then
  echo "$NAME: run as root (it makes the test user and starts its manager)" >&2
  exit 1
fi
# Only in the systemd VM (hack/vm/guest.sh writes the marker into the guest's own /run).
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] || [ ! -e /run/vm/systemd-job.sh ]; then
  echo "$NAME: refusing to run: only in the systemd VM (hack/vm-test.sh --systemd -- $0), never on a host's systemd" >&2
  exit 1
fi
runtime=$(readlink -f "${1:-$repo/target/release/brig}")
if [ ! -x "$runtime" ]; then
  echo "$NAME: runtime $runtime is not an executable (build it: hack/build.sh)" >&2
  exit 1
fi
for cmd in podman conmon newuidmap systemctl setpriv; do
  command -v "$cmd" >/dev/null || {
    echo "$NAME: $cmd not found (install podman conmon uidmap on the host first)" >&2
    exit 1
  }
done
[ -e /usr/lib/systemd/user/dbus.socket ] || {
  echo "$NAME: no user bus (install dbus-user-session on the host first): podman needs one for --cgroup-manager=systemd" >&2
  exit 1
}
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
  echo "$NAME: cgroup v1: systemd delegates nothing to a user there (runc and brig refuse rootless --systemd-cgroup); nothing to check"
  echo "$NAME: 0 passed, 0 failed"
  exit 0
fi

# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"

started=$(date +%s)
T=$(mktemp -d /tmp/brig-dropin-rlsd.XXXXXX)
chmod 755 "$T"
tag=rlsd$$
user=brigsd$$
IMG=localhost/brig-busybox:latest
host_dirs=()
tmp_files() { compgen -G "/tmp/conmon-term.*"; }
dropin_begin
uid=

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ "${1:-}" = interrupted ] && echo "$NAME: interrupted, cleaning up" >&2
  if [ -n "$uid" ]; then
    p rm -af -t 0 >/dev/null 2>&1
    # The manager takes its units (and their cgroups) with it.
    systemctl stop "user@$uid.service" "user-runtime-dir@$uid.service" "user-$uid.slice" >/dev/null 2>&1
  fi
  dropin_remove_user
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

dropin_make_user || exit 1
run=/run/user/$uid
# Started while the image is built; waited for below.
systemctl start --no-block "user@$uid.service" || { echo "$NAME: could not start user@$uid.service"; exit 1; }
manager_cg=/user.slice/user-$uid.slice/user@$uid.service

H=$T/home
mkdir -p "$H/.config/containers" "$T/bin"
cp "$runtime" "$T/bin/runtime"
cat >"$T/bin/runc" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$T/calls.log"
exec "$T/bin/runtime" "\$@"
EOF
chmod 755 "$T/bin/runc"
: >"$T/calls.log"
# cgroup_manager is left to podman's default, systemd (with a user bus it keeps it).
cat >"$H/.config/containers/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
events_logger = "file"
conmon_path = ["/usr/bin/conmon"]
runtime = "runc"
[engine.runtimes]
runc = ["$T/bin/runc"]
EOF
cat >"$H/.config/containers/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$H/storage"
runroot = "$run/containers"
EOF
: >"$H/.config/containers/registries.conf"
# The applets the scenarios use (one ln each is slow under the VM's emulation).
ROOTFS_APPLETS="sh cat echo sed sleep true" build_image_archive "$T/busybox.tar" "$IMG|\"Cmd\":[\"sh\"]" || exit 1
chown -R "$uid:$gid" "$T"
wait_for "the user bus $run/bus" 60 test -S "$run/bus" || exit 1

# As the user, with the environment of its session (its runtime directory and bus).
as_user() {
  (cd "$H" && setpriv --reuid "$uid" --regid "$gid" --init-groups env -i \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$H" USER="$user" LOGNAME="$user" \
    XDG_RUNTIME_DIR="$run" DBUS_SESSION_BUS_ADDRESS="unix:path=$run/bus" \
    XDG_CONFIG_HOME="$H/.config" "$@")
}
p() { as_user timeout -k 5 90 podman "$@" </dev/null; }
usystemctl() { as_user systemctl --user "$@"; }
ushow() { usystemctl show -p "$2" --value "$1"; }
unit_gone() { ! usystemctl list-units --all --no-legend --plain "$1" | grep -qF "$1"; }

# --- scenarios ----------------------------------------------------------------------------------
# The container's limits, read inside: its own cgroup (podman's private cgroup namespace).
LIMITS='echo cgroup=$(sed -n "s/^0:://p" /proc/self/cgroup) memory=$(cat /sys/fs/cgroup/memory.max) pids=$(cat /sys/fs/cgroup/pids.max)'

rootless_systemd_run() {
  local out
  out=$(p run --rm --memory 64m --pids-limit 50 "$IMG" sh -c "$LIMITS; exit 7")
  want "run: exit status" "$?" 7 || return 1
  want "run: the container's cgroup and limits, inside" "$out" "cgroup=/ memory=67108864 pids=50" || return 1
  grep -q -- '--systemd-cgroup' "$T/calls.log" || { echo "the runtime was not given --systemd-cgroup: $(cat "$T/calls.log")"; return 1; }
  echo "ok: the runtime was called with --systemd-cgroup"
}

rootless_systemd_detached_exec_stop() {
  local name=$tag-d id pid unit cg out
  p run -d --name "$name" --memory 64m --pids-limit 50 "$IMG" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null || return 1
  id=$(p inspect -f '{{.Id}}' "$name")
  pid=$(p inspect -f '{{.State.Pid}}' "$name")
  unit=libpod-$id.scope
  cg=$manager_cg/user.slice/$unit
  want "init's cgroup on the host" "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")" "$cg" || return 1
  want "$unit ControlGroup" "$(ushow "$unit" ControlGroup)" "$cg" || return 1
  want "$unit Delegate" "$(ushow "$unit" Delegate)" yes || return 1
  want "$unit MemoryMax" "$(ushow "$unit" MemoryMax)" 67108864 || return 1
  want "$unit TasksMax" "$(ushow "$unit" TasksMax)" 50 || return 1
  want "memory.max on the host" "$(cat "/sys/fs/cgroup$cg/memory.max")" 67108864 || return 1
  want "pids.max on the host" "$(cat "/sys/fs/cgroup$cg/pids.max")" 50 || return 1
  want "cgroup owner (delegated to the user)" "$(stat -c %u "/sys/fs/cgroup$cg")" "$uid" || return 1
  out=$(p exec "$name" sh -c "$LIMITS")
  want "exec: in the container's cgroup, with its limits" "$out" "cgroup=/ memory=67108864 pids=50" || return 1
  p stop -t 10 "$name" >/dev/null || return 1
  want "stopped by TERM" "$(p inspect -f '{{.State.ExitCode}}' "$name")" 0 || return 1
  p rm "$name" >/dev/null || return 1
  wait_for "$unit to go" 10 unit_gone "$unit" || return 1
  echo "ok: $unit gone after stop and rm"
  [ ! -d "/sys/fs/cgroup$cg" ] || { echo "/sys/fs/cgroup$cg left behind"; return 1; }
}

pass=0 fail=0 summary=()
p load -i "$T/busybox.tar" >/dev/null 2>&1 || { echo "$NAME: podman load failed"; p load -i "$T/busybox.tar"; exit 1; }
echo "$NAME: set up in $(($(date +%s) - started)) s"
for scenario in rootless_systemd_run rootless_systemd_detached_exec_stop; do
  : >"$T/calls.log"
  t0=$(date +%s)
  if out=$($scenario 2>&1); then
    pass=$((pass + 1)) result=PASS
  else
    fail=$((fail + 1)) result=FAIL
  fi
  calls=$(awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^--(root|log|log-format)$/) { i++; continue }
    if ($i !~ /^-/) { print $i; break } } }' "$T/calls.log" | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $2, $1; sep=" " }')
  summary+=("$result $scenario [$calls] $(($(date +%s) - t0)) s")
  if [ "$result" = FAIL ]; then
    echo "$out" | sed "s/^/  $scenario: /"
    sed "s/^/  $scenario: runtime call: /" "$T/calls.log"
  fi
done
printf '%s\n' "${summary[@]}"
echo "$NAME: runtime $runtime"
echo "$NAME: took $(($(date +%s) - started)) s"
echo "$NAME: $pass passed, $fail failed"
[ "$fail" = 0 ]
