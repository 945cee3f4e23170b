#!/usr/bin/env bash
# Engines with the systemd cgroup driver (issue 16): containerd with `SystemdCgroup = true` (the
# runc v2 shim's option, ctr run --runc-systemd-cgroup) and podman with
# --cgroup-manager=systemd, each running brig as its runc with --systemd-cgroup, on a host
# whose PID 1 is systemd. It runs only in the systemd VM:
#   hack/vm-test.sh --systemd [--cgroup-v1] -- hack/dropin-systemd.sh [RUNTIME_BINARY]
# (default runtime: target/release/brig; `... -- hack/dropin-systemd.sh /usr/sbin/runc` checks
# the script against Debian's runc). It refuses to run anywhere else (PID 1 must be systemd and
# the VM's marker /run/vm/systemd-job.sh must exist): the engines talk to systemd, so on a host
# they would make units in the host's systemd. The packages (containerd, podman, conmon,
# busybox-static) must be installed on the host beforehand: the VM sees the host's root
# read-only and has no network.
#
# What it checks, on cgroup v2 and v1: the container's cgroup is the transient scope the
# runtime made (systemctl show -p ControlGroup, the init and an exec'd process in its
# cgroup.procs), a limit given to the engine is in the cgroup file and in the unit's property,
# exec, kill/stop and delete work and leave no unit behind; podman update changes both file
# and property. Every runtime call is logged by a wrapper named runc; the last line is
# `dropin-systemd: N passed, N failed` and the exit status is non-zero on any failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"
NAME=dropin-systemd
dropin_need_root "containers need it"
# Only in the systemd VM (hack/vm/guest.sh writes the marker into the guest's own /run).
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] || [ ! -e /run/vm/systemd-job.sh ]; then
  echo "$NAME: refusing to run: only in the systemd VM (hack/vm-test.sh --systemd -- $0), never on a host's systemd" >&2
  exit 1
fi
dropin_runtime "${1:-}"
for cmd in containerd ctr containerd-shim-runc-v2 podman conmon systemctl busctl; do
  command -v "$cmd" >/dev/null || {
    echo "$NAME: $cmd not found (install containerd podman conmon on the host first)" >&2
    exit 1
  }
done
[ -S /run/dbus/system_bus_socket ] || {
  echo "$NAME: no system bus (/run/dbus/system_bus_socket): podman and conmon need one" >&2
  exit 1
}

dropin_tmpdir brig-dropin-systemd
tag=sd$$
NS=$tag
IMG=localhost/brig-busybox:latest
CTR_SOCK=$T/containerd/containerd.sock
containerd_pid=
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then v2=1; else v2=0; fi
host_dirs=(/run/containerd /run/containers /var/lib/containers)
tmp_files() { compgen -G "/tmp/runc-process*"; compgen -G "/tmp/conmon-term.*"; }
dropin_begin

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ "${1:-}" = interrupted ] && echo "$NAME: interrupted, cleaning up" >&2
  if [ -n "${PODMAN[*]:-}" ]; then
    timeout -k 5 60 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1
  fi
  if [ -n "$containerd_pid" ]; then
    dropin_ctr_remove_tasks "${CTR[@]}"
    stop_pid "$containerd_pid"
  fi
  # Units of this run a failed scenario left (their names carry the run's tag or podman's prefix).
  for u in $(systemctl list-units --all --no-legend --plain "*$tag*" 'libpod-*' | awk '{ print $1 }'); do
    systemctl stop "$u" >/dev/null 2>&1
  done
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

# The wrappers named runc: log the subcommand, then exec the runtime under test.
dropin_wrapper "$T/ctr-bin" "$T/calls-ctr.log"
dropin_wrapper "$T/podman-bin" "$T/calls-podman.log"

# --- systemd checks ---------------------------------------------------------------------------
show() { systemctl show -p "$2" --value "$1"; }
unit_exists() { systemctl list-units --all --no-legend --plain "$1" | grep -qF "$1"; }
unit_gone() { ! unit_exists "$1"; }
# The unit's cgroup directory in the hierarchy that holds CONTROLLER's files.
unit_dir() { # unit_dir UNIT CONTROLLER
  local cg
  cg=$(show "$1" ControlGroup)
  if [ "$v2" = 1 ]; then echo "/sys/fs/cgroup$cg"; else echo "/sys/fs/cgroup/$2$cg"; fi
}
# want_unit UNIT SLICE PID...: active, in SLICE, the cgroup systemd gives it holds every PID.
want_unit() {
  local unit=$1 slice=$2 cg pid procs
  shift 2
  want "$unit ActiveState" "$(show "$unit" ActiveState)" active
  want "$unit Slice" "$(show "$unit" Slice)" "$slice"
  cg=$(show "$unit" ControlGroup)
  want "$unit ControlGroup" "$cg" "/${slice%.slice}.slice/$unit"
  procs=$(cat "$(unit_dir "$unit" pids)/cgroup.procs")
  for pid in "$@"; do
    grep -qx "$pid" <<<"$procs" || { echo "pid $pid is not in $cg (cgroup.procs: $(echo $procs))"; return 1; }
    # and the process itself says so (v1: the pids hierarchy's line)
    if [ "$v2" = 1 ]; then
      want "cgroup of pid $pid" "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")" "$cg"
    else
      want "cgroup of pid $pid" "$(awk -F: '$2 == "pids" { print $3 }' "/proc/$pid/cgroup")" "$cg"
    fi
  done
  echo "ok: $unit holds $*"
}
# want_memory UNIT BYTES: the limit in the cgroup file and in the unit's property.
want_memory() {
  local dir
  dir=$(unit_dir "$1" memory)
  if [ "$v2" = 1 ]; then
    want "memory.max of $1" "$(cat "$dir/memory.max")" "$2"
    want "MemoryMax of $1" "$(show "$1" MemoryMax)" "$2"
  else
    want "memory.limit_in_bytes of $1" "$(cat "$dir/memory.limit_in_bytes")" "$2"
    want "MemoryLimit of $1" "$(show "$1" MemoryLimit)" "$2"
  fi
}
# want_cpu_quota UNIT QUOTA PERIOD: cpu.max / cpu.cfs_quota_us and CPUQuotaPerSecUSec.
want_cpu_quota() {
  local dir
  dir=$(unit_dir "$1" cpu)
  if [ "$v2" = 1 ]; then
    want "cpu.max of $1" "$(cat "$dir/cpu.max")" "$2 $3"
  else
    want "cpu.cfs_quota_us of $1" "$(cat "$dir/cpu.cfs_quota_us")" "$2"
  fi
  want "CPUQuotaPerSecUSec of $1" "$(show "$1" CPUQuotaPerSecUSec)" "$(($2 * 1000 / $3))ms"
}
wait_gone() { wait_for "unit $1 to go" 20 unit_gone "$1" && echo "ok: no unit $1 left"; }

# --- containerd, SystemdCgroup = true ------------------------------------------------------------
CTR=(ctr --address "$CTR_SOCK" --namespace "$NS")
start_containerd() {
  local d=$T/containerd
  mkdir -p "$d" "$T/fifo" "$T/ctr-runc"
  # (No CRI plugin: ctr gives the runc v2 shim the options a Kubernetes node's
  # runtimes.runc.options give it, BinaryName and SystemdCgroup = true, per container.)
  dropin_containerd_toml "$d" "$CTR_SOCK" >"$d/config.toml"
  dropin_start_containerd "$d" "$CTR_SOCK" 150
}
c() { timeout -k 5 90 "${CTR[@]}" "$@" </dev/null; }
# ctr_run ID [FLAGS...] -- CMD...: the runtime under test with SystemdCgroup, the container's
# unit brig-ctr-$tag-ID.scope in system.slice.
ctr_run() {
  local id=$1 flags=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  c run --runtime io.containerd.runc.v2 --runc-binary "$T/ctr-bin/runc" --runc-systemd-cgroup \
    --runc-root "$T/ctr-runc" --fifo-dir "$T/fifo" --cgroup "system.slice:brig-ctr:$id" \
    "${flags[@]}" "$IMG" "$id" "$@"
}
ctr_task_status() { c tasks ls | awk -v id="$1" '$1 == id { print $3 }'; }
ctr_task_pid() { c tasks ls | awk -v id="$1" '$1 == id { print $2 }'; }
task_is() { [ "$(ctr_task_status "$1")" = "$2" ]; }
ctr_procs() { c tasks ps "$1" | tail -n +2 | awk '{ print $1 }'; }
has_n_procs() { [ "$(ctr_procs "$1" | wc -l)" = "$2" ]; }

ctr_lifecycle() {
  local id=$tag-life unit out rc=0 pid
  unit=brig-ctr-$id.scope
  ctr_run "$id" -d --memory-limit 67108864 --cpu-quota 50000 --cpu-period 100000 -- \
    sh -c 'trap "exit 7" TERM; sleep 1000 & wait'
  want "status after run -d" "$(ctr_task_status "$id")" RUNNING
  pid=$(ctr_task_pid "$id")
  want_unit "$unit" system.slice "$pid"
  want_memory "$unit" 67108864
  want_cpu_quota "$unit" 50000 100000
  want_in "systemctl status" "$(systemctl status --no-pager "$unit" 2>&1)" "CGroup: /system.slice/$unit"
  # exec: a short one with its output and status, then one that stays to be found in the unit
  out=$(c tasks exec --fifo-dir "$T/fifo" --exec-id e1 "$id" sh -c 'echo from-exec; sleep 0.2; exit 4') || rc=$?
  want "exec exit code" "$rc" 4
  want "exec stdout" "$out" from-exec
  c tasks exec --fifo-dir "$T/fifo" --exec-id e2 "$id" sleep 1000 &
  wait_for "the exec'd sleep" 30 has_n_procs "$id" 3
  # shellcheck disable=SC2046
  want_unit "$unit" system.slice $(ctr_procs "$id")
  c tasks kill --exec-id e2 -s KILL "$id"
  wait
  c tasks kill "$id"
  wait_for "the task to stop" 30 task_is "$id" STOPPED
  want_in "exit code after SIGTERM" "$(c tasks delete "$id" 2>&1)" "exit code 7"
  c containers delete "$id"
  wait_gone "$unit"
}


ctr_run_exit() {
  local id=$tag-exit out rc=0
  out=$(ctr_run "$id" --rm -- sh -c 'echo to-stdout; exit 3') || rc=$?
  want "exit code" "$rc" 3
  want "stdout" "$out" to-stdout
  wait_gone "brig-ctr-$id.scope"
}

ctr_pause_resume() {
  local id=$tag-pause unit
  unit=brig-ctr-$id.scope
  ctr_run "$id" -d -- sleep 1000
  c tasks pause "$id"
  want "status after pause" "$(ctr_task_status "$id")" PAUSED
  if [ "$v2" = 1 ]; then
    want "cgroup.freeze" "$(cat "$(unit_dir "$unit" pids)/cgroup.freeze")" 1
  else
    want "freezer.state" "$(cat "$(unit_dir "$unit" freezer)/freezer.state")" FROZEN
  fi
  c tasks resume "$id"
  want "status after resume" "$(ctr_task_status "$id")" RUNNING
  want "exec after resume" "$(c tasks exec --fifo-dir "$T/fifo" --exec-id e1 "$id" sh -c 'echo alive; sleep 0.2')" alive
  c tasks kill -s KILL "$id"
  wait_for "the task to stop" 30 task_is "$id" STOPPED
  want_in "exit code after SIGKILL" "$(c tasks delete "$id" 2>&1)" "exit code 137"
  c containers delete "$id"
  wait_gone "$unit"
}

# --- podman, --cgroup-manager=systemd -----------------------------------------------------------
PODMAN=()
# (events and logs to files: the VM runs no journald)
setup_podman() { dropin_setup_podman systemd; }
p() { timeout -k 5 90 "${PODMAN[@]}" "$@" </dev/null; }
pstatus() { p inspect -f '{{.State.Status}}' "$1"; }

podman_lifecycle() {
  local name=$tag-life id unit pid out rc=0
  p run -d --name "$name" --memory 64m --cpu-quota 50000 --cpu-period 100000 "$IMG" \
    sh -c 'trap "exit 7" TERM; sleep 1000 & wait' >/dev/null
  want "status after run -d" "$(pstatus "$name")" running
  id=$(p inspect -f '{{.Id}}' "$name")
  unit=libpod-$id.scope
  pid=$(p inspect -f '{{.State.Pid}}' "$name")
  want_unit "$unit" machine.slice "$pid"
  want_memory "$unit" 67108864
  want_cpu_quota "$unit" 50000 100000
  out=$(p exec "$name" sh -c 'echo from-exec; exit 4') || rc=$?
  want "exec exit code" "$rc" 4
  want "exec stdout" "$out" from-exec
  p exec -d "$name" sleep 1000 >/dev/null
  # shellcheck disable=SC2046
  want_unit "$unit" machine.slice $(p top "$name" hpid | tail -n +2)
  want "processes in the unit (sh, sleep, exec'd sleep)" "$(p top "$name" hpid | tail -n +2 | wc -l)" 3
  p update --memory 128m "$name" >/dev/null
  want_memory "$unit" 134217728
  p stop -t 10 "$name" >/dev/null
  want "status after stop" "$(pstatus "$name")" exited
  want "exit code after SIGTERM" "$(p inspect -f '{{.State.ExitCode}}' "$name")" 7
  wait_gone "$unit"
  p rm "$name" >/dev/null
  wait_gone "libpod-conmon-$id.scope"
}

podman_run_rm() {
  local name=$tag-rm out rc=0 id
  # (the hostname is the short id: the scope's name begins with it)
  out=$(p run --rm --name "$name" --pids-limit 50 "$IMG" sh -c \
    'hostname; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; exit 3') || rc=$?
  want "exit code" "$rc" 3
  want "pids.max seen inside" "$(tail -n 1 <<<"$out")" 50
  if p container exists "$name"; then echo "container $name left after run --rm"; return 1; fi
  id=$(head -n 1 <<<"$out")
  [ ${#id} = 12 ] || { echo "no short id from hostname: $out"; return 1; }
  wait_gone "libpod-$id*.scope"
  wait_gone "libpod-conmon-$id*.scope"
}


# --- driver -----------------------------------------------------------------------------------
results=()
passed=0
failed=0
scenario() { # scenario ENGINE NAME FUNCTION
  local engine=$1 name=$2 fn=$3 rc t0=$SECONDS
  printf '## %s\n' "$name" >>"$T/calls-$engine.log"
  (set -e; "$fn") >"$T/scenario.out" 2>&1
  rc=$?
  dropin_record "$rc" "$engine $name" "$engine: $name" "$((SECONDS - t0))s"
}

echo "$NAME: runtime $runtime ($("$runtime" --version 2>&1 | head -1))"
echo "$NAME: $(systemctl --version | head -1), cgroup v$([ "$v2" = 1 ] && echo 2 || echo 1)," \
  "$(containerd --version | cut -d' ' -f1,3), podman $(podman --version | cut -d' ' -f3)," \
  "conmon $(conmon --version | head -1 | cut -d' ' -f3)"
# (the applets the scenarios use: a link per applet is a process each, slow under emulation)
ROOTFS_APPLETS="sh cat echo hostname id ls sleep true" build_image_archive "$T/busybox.tar" "$IMG|\"Cmd\":[\"sh\"]" || {
  echo "$NAME: could not build the busybox image" >&2
  exit 1
}
echo "$NAME: image built after $(($(date +%s) - started))s"

if start_containerd && c images import "$T/busybox.tar" >/dev/null; then
  scenario ctr "run -d with limits: scope, files, properties; exec; SIGTERM; delete" ctr_lifecycle
  scenario ctr "run --rm: exit code, no unit left" ctr_run_exit
  scenario ctr "pause/resume, SIGKILL, delete: no unit left" ctr_pause_resume
else
  dropin_setup_failed ctr "containerd, image import"
fi

setup_podman
if p load -i "$T/busybox.tar" >"$T/load.log" 2>&1 || { cat "$T/load.log"; false; }; then
  scenario podman "run -d with limits: scope, files, properties; exec; update; stop; rm" podman_lifecycle
  scenario podman "run --rm with a pids limit: exit code, no scope left" podman_run_rm
else
  dropin_setup_failed podman "load"
fi

echo
echo "$NAME: summary for $runtime"
for engine in ctr podman; do
  printf '%s: runtime subcommands: %s\n' "$engine" \
    "$(dropin_subcommand_counts "$T/calls-$engine.log")"
  if ! grep -q -- --systemd-cgroup "$T/calls-$engine.log"; then
    failed=$((failed + 1))
    results+=("FAIL $engine never passed --systemd-cgroup to the runtime")
  fi
done
dropin_finish "$T"/calls-*.log
