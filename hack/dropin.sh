#!/usr/bin/env bash
# Prove a runtime is a drop-in runc: run real engines with it and check what the containers saw.
#   hack/dropin.sh [RUNTIME_BINARY]    (default: target/release/brig)
#   DROPIN_LOGS=DIR keeps the logs of every runtime call (calls-ctr.log, calls-podman.log).
# `hack/dropin.sh /usr/sbin/runc` runs the same checks against Debian's runc: the script checks
# the real thing. Engines: a private containerd 1.6 driven by ctr (containerd-shim-runc-v2), and
# podman 4.3 through conmon (the path CRI-O uses). Both come from Debian; the busybox image is
# built here from busybox-static; nothing needs the network. Run as root.
#
# Every runtime call is logged by a wrapper named `runc` (podman picks its behaviour from the
# runtime's basename) that then execs the runtime under test. The summary lists each scenario,
# PASS/FAIL and the runtime subcommands the engine called during it; the last line is
# `dropin: N passed, N failed` and the exit status is non-zero on any failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"
NAME=dropin
dropin_need_root "containers need it"
dropin_runtime "${1:-}"

# --- packages --------------------------------------------------------------------------------
dropin_install containerd podman conmon catatonit busybox-static bsdutils

# CRIU 4.2 (hack/criu.sh) for checkpoint/restore, found by the engines and the runtime in PATH;
# Debian's criu 3.17 cannot start on recent kernels.
criu_bin=${CRIU_CACHE:-/var/cache/criu}/bin
[ -x "$criu_bin/criu" ] && PATH=$criu_bin:$PATH
dropin_tmpdir brig-dropin
tag=dropin$$                     # unique per run: ids, namespace, cgroup names
NS=$tag                          # containerd namespace
IMG=localhost/brig-busybox:latest
CTR_SOCK=$T/containerd/containerd.sock
containerd_pid=

# Host directories the engines make whatever their configuration says (containerd's shim
# sockets and default fifo dir, podman's network run dir and blob-info cache, the runtimes'
# default roots): those this run makes go at the end, only when empty.
host_dirs=(/run/containerd /run/containers /var/lib/containers /run/runc /run/brig)
# The shim's process files and console sockets and conmon's console sockets go to /tmp; an
# engine killed at the wrong moment leaves them.
tmp_files() { compgen -G "/tmp/runc-process*"; compgen -G "/tmp/pty[0-9]*"; compgen -G "/tmp/conmon-term.*"; }
dropin_begin

cleanup() {
  set +e
  trap - EXIT INT TERM
  # (Quiet on a normal exit: the summary's last line stays the last line.)
  [ "${1:-}" = interrupted ] && echo "dropin: interrupted, cleaning up" >&2
  if [ -n "${PODMAN[*]:-}" ]; then
    timeout -k 5 60 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1
  fi
  if [ -n "$containerd_pid" ]; then
    dropin_ctr_remove_tasks "${CTR[@]}"
    for id in $(timeout -k 5 10 "${CTR[@]}" containers ls -q 2>/dev/null); do
      timeout -k 5 10 "${CTR[@]}" containers delete "$id" >/dev/null 2>&1
    done
    stop_pid "$containerd_pid"
  fi
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

# --- the runtime wrappers ---------------------------------------------------------------------
# One per engine: a script named runc that logs its subcommand and arguments, then execs the
# runtime under test (same pid, same descriptors).
dropin_wrapper "$T/ctr-bin" "$T/calls-ctr.log"
dropin_wrapper "$T/podman-bin" "$T/calls-podman.log"

# --- the busybox image: a docker-archive (docker save layout) built here -----------------------
build_image() { build_image_archive "$T/busybox.tar" "$IMG|\"Cmd\":[\"sh\"]"; }

# --- containerd -------------------------------------------------------------------------------
CTR=(ctr --address "$CTR_SOCK" --namespace "$NS")
start_containerd() {
  local d=$T/containerd
  mkdir -p "$d" "$T/fifo" "$T/ctr-runc"
  dropin_containerd_toml "$d" "$CTR_SOCK" >"$d/config.toml"
  dropin_start_containerd "$d" "$CTR_SOCK"
}

# --- podman -----------------------------------------------------------------------------------
PODMAN=()
# (It sets nproc, global: a run giving its own --ulimit repeats it.)
setup_podman() { dropin_setup_podman cgroupfs; }

# --- helpers for scenarios ----------------------------------------------------------------------
c() { timeout -k 5 60 "${CTR[@]}" "$@" </dev/null; }
p() { timeout -k 5 60 "${PODMAN[@]}" "$@" </dev/null; }
# podman has no global --cgroup-parent: every container's cgroup (and conmon's) below ours.
prun() { p run --cgroup-parent "$CGP/podman" "$@"; }
pcreate() { p create --cgroup-parent "$CGP/podman" "$@"; }
# ctr_run ID [FLAGS...] -- CMD...: ctr run with the runtime under test, the container's
# cgroup below ours, the IO fifos in our temp dir.
ctr_run() {
  local id=$1 flags=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  c run --runtime io.containerd.runc.v2 --runc-binary "$T/ctr-bin/runc" \
    --runc-root "$T/ctr-runc" --fifo-dir "$T/fifo" --cgroup "$CGP/ctr/$id" \
    "${flags[@]}" "$IMG" "$id" "$@"
}
host_netns=$(readlink /proc/self/ns/net)
# privileged containers get every capability we have
host_capbnd=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
cg_file() { # cg_file CONTROLLER RELATIVE_TO_CGP FILE: the host's view of a container's cgroup
  cat "/sys/fs/cgroup/$1$CGP/$2/$3"
}

# --- ctr scenarios ----------------------------------------------------------------------------
ctr_task_status() { c tasks ls | awk -v id="$1" '$1 == id { print $3 }'; }
task_is() { [ "$(ctr_task_status "$1")" = "$2" ]; }
# (An exec that prints and exits at once can lose its output in ctr 1.6 itself, seen once in
# many runs: the checked ones linger a moment after printing.)
cexec() { c tasks exec --fifo-dir "$T/fifo" "$@"; }
# SIGKILL a running task, wait for it, delete task and container.
ctr_kill_rm() {
  c tasks kill -s KILL "$1"
  wait_for "task $1 to stop" 20 task_is "$1" STOPPED
  want_in "exit status of $1" "$(c tasks delete "$1" 2>&1)" "exit code 137"
  c containers delete "$1"
}

ctr_run_exit() {
  local id=$tag-exit out rc=0
  out=$(ctr_run "$id" --rm -- sh -c 'echo to-stdout; echo to-stderr >&2; exit 3' 2>"$T/err") || rc=$?
  want "exit code" "$rc" 3
  want "stdout" "$out" to-stdout
  want "stderr" "$(cat "$T/err")" to-stderr
}

ctr_detached() {
  local id=$tag-detached out rc=0 pids
  ctr_run "$id" -d --log-uri "file://$T/$id.log" -- \
    sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait'
  want "status after run -d" "$(ctr_task_status "$id")" RUNNING
  out=$(cexec --exec-id e1 "$id" sh -c 'echo from-exec; sleep 0.2; exit 4') || rc=$?
  want "exec exit code" "$rc" 4
  want "exec stdout" "$out" from-exec
  pids=$(c tasks ps "$id" | tail -n +2 | wc -l)
  want "processes in ctr task ps (sh, sleep)" "$pids" 2
  c tasks kill "$id"
  wait_for "the task to stop" 20 task_is "$id" STOPPED
  want_in "exit code after SIGTERM" "$(c tasks delete "$id" 2>&1)" "exit code 7"
  c containers delete "$id"
  want "log" "$(cat "$T/$id.log")" "started
got-term"
}

ctr_pause_resume() {
  local id=$tag-pause n1 n2
  ctr_run "$id" -d -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done'
  sleep 0.3
  c tasks pause "$id"
  want "status after pause" "$(ctr_task_status "$id")" PAUSED
  want "freezer state" "$(cg_file freezer "ctr/$id" freezer.state)" FROZEN
  n1=$(cat "/proc/$(c tasks ls | awk -v id="$id" '$1 == id { print $2 }')/root/tmp/n")
  sleep 0.5
  n2=$(cat "/proc/$(c tasks ls | awk -v id="$id" '$1 == id { print $2 }')/root/tmp/n")
  want "counter while paused" "$n2" "$n1"
  c tasks resume "$id"
  want "status after resume" "$(ctr_task_status "$id")" RUNNING
  sleep 0.5
  n2=$(cexec --exec-id e1 "$id" sh -c 'cat /tmp/n; sleep 0.2')
  [ "$n2" -gt "$n1" ] || { echo "counter did not move after resume ($n1 -> $n2)"; return 1; }
  ctr_kill_rm "$id"
}

ctr_tty() {
  local id=$tag-tty out
  out=$(in_pty "${CTR[@]}" run --runtime io.containerd.runc.v2 --runc-binary "$T/ctr-bin/runc" \
    --runc-root "$T/ctr-runc" --fifo-dir "$T/fifo" --cgroup "$CGP/ctr/$id" -t --rm "$IMG" "$id" \
    sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; stty size; exit 5'; echo "rc=$?")
  want_in "tty in run -t" "$out" /dev/pts/0
  want_in "run -t stdio" "$out" stdio-is-a-tty
  want_in "run -t exit code" "$out" rc=5
  ctr_run "$id" -d -- sleep 1000
  out=$(in_pty "${CTR[@]}" tasks exec --fifo-dir "$T/fifo" -t --exec-id e1 "$id" sh -c 'tty; [ -t 0 ] && echo exec-is-a-tty')
  want_in "tty in exec -t" "$out" /dev/pts/
  want_in "exec -t stdio" "$out" exec-is-a-tty
  ctr_kill_rm "$id"
}

ctr_limits() {
  local id=$tag-limits
  # ctr's default spec has no cgroup mount: the host's view of the container's cgroup.
  ctr_run "$id" -d --memory-limit 67108864 --cpu-quota 50000 --cpu-period 100000 -- sleep 1000
  want "memory.limit_in_bytes" "$(cg_file memory "ctr/$id" memory.limit_in_bytes)" 67108864
  want "cpu.cfs_quota_us" "$(cg_file cpu "ctr/$id" cpu.cfs_quota_us)" 50000
  want "init in the cgroup" "$(cg_file pids "ctr/$id" cgroup.procs)" \
    "$(c tasks ls | awk -v id="$id" '$1 == id { print $2 }')"
  ctr_kill_rm "$id"
}

ctr_env_cwd() {
  local id=$tag-env out
  out=$(ctr_run "$id" --rm --env FOO=bar --cwd /tmp -- sh -c 'echo "$FOO $(pwd) $(id -u)"')
  want "env, cwd, uid" "$out" "bar /tmp 0"
  # ctr 1.6 has no run --user: the exec process JSON carries one.
  ctr_run "$id" -d -- sleep 1000
  out=$(cexec --exec-id e1 --user 1 --cwd /home "$id" sh -c 'echo "$(id -u) $(pwd)"; sleep 0.2')
  want "exec user, cwd" "$out" "1 /home"
  ctr_kill_rm "$id"
}

ctr_readonly() {
  local id=$tag-ro out rc=0
  out=$(ctr_run "$id" --rm --read-only -- sh -c 'touch /newfile' 2>&1) || rc=$?
  [ "$rc" != 0 ] || { echo "touch / succeeded in a read-only rootfs"; return 1; }
  want_in "touch / error" "$out" "Read-only file system"
}

ctr_stdin() {
  local id=$tag-stdin out
  # (ctr run never closes the task's stdin at EOF: read what was sent, no more.)
  out=$(printf 'line1\nline2\n' | timeout -k 5 60 "${CTR[@]}" run --runtime io.containerd.runc.v2 \
    --runc-binary "$T/ctr-bin/runc" --runc-root "$T/ctr-runc" --fifo-dir "$T/fifo" \
    --cgroup "$CGP/ctr/$id" --rm "$IMG" "$id" sh -c 'read -r a; read -r b; echo "$b $a"')
  want "stdin through the runtime" "$out" "line2 line1"
}

ctr_error() {
  local id=$tag-error out rc=0
  out=$(ctr_run "$id" --rm -- /no/such/program 2>&1) || rc=$?
  [ "$rc" != 0 ] || { echo "a missing program did not fail"; return 1; }
  # containerd shows the runtime's reason, read from the --log JSON.
  want_in "error names the program" "$out" /no/such/program
  want_in "error gives the reason" "$out" "no such file or directory"
  if c containers ls -q | grep -qx "$id"; then c containers delete "$id"; fi
  [ ! -e "$T/ctr-runc/$NS/$id" ] || { echo "runtime state left: $T/ctr-runc/$NS/$id"; return 1; }
}

ctr_security() {
  local id=$tag-sec out
  # ctr's default capabilities (docker's set), no_new_privs; --seccomp: its default profile.
  out=$(ctr_run "$id" --rm --seccomp -- sh -c \
    'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\t " " "')
  want "capabilities, no_new_privs, seccomp" "$(echo $out)" \
    "CapEff: 00000000a80425fb CapBnd: 00000000a80425fb NoNewPrivs: 1 Seccomp: 2"
  out=$(ctr_run "$id" --rm --seccomp -- sh -c 'mkdir /m && mount -t tmpfs none /m && echo mounted' 2>&1) && {
    echo "mount worked without CAP_SYS_ADMIN: $out"
    return 1
  }
  echo "ok: mount refused: $out"
}

ctr_join_ns() {
  local id=$tag-pod pid out
  ctr_run "$id" -d -- sh -c 'hostname; sleep 1000'
  pid=$(c tasks ls | awk -v id="$id" '$1 == id { print $2 }')
  out=$(ctr_run "$id-2" --rm --with-ns "network:/proc/$pid/ns/net" --with-ns "pid:/proc/$pid/ns/pid" -- \
    sh -c 'readlink /proc/self/ns/net; ps -o args | grep -c "^sleep 1000"')
  want "netns joined" "$(head -1 <<<"$out")" "$(readlink "/proc/$pid/ns/net")"
  want "sleep of the first container seen in the joined pid namespace" "$(tail -1 <<<"$out")" 1
  ctr_kill_rm "$id"
}

ctr_privileged_mounts() {
  local id=$tag-priv out
  mkdir -p "$T/ctr-vol"
  echo from-host >"$T/ctr-vol/file"
  out=$(ctr_run "$id" --rm --privileged -- sh -c \
    'grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\t " " "; [ -c /dev/net/tun ] && echo has-tun;
     mkdir /m && mount -t tmpfs none /m && echo mounted')
  want "privileged: all capabilities, no seccomp, host devices, mount" "$(echo $out)" \
    "CapEff: $host_capbnd Seccomp: 0 has-tun mounted"
  out=$(ctr_run "$id" --rm --mount "type=bind,src=$T/ctr-vol,dst=/data,options=rbind:ro" -- sh -c \
    'cat /data/file; touch /data/x 2>/dev/null || echo ro-refused')
  want "read-only bind mount" "$(echo $out)" "from-host ro-refused"
}

ctr_network() {
  local id=$tag-net out
  out=$(ctr_run "$id" --rm -- sh -c 'readlink /proc/self/ns/net; ls /sys/class/net')
  [ "$(head -1 <<<"$out")" != "$host_netns" ] || { echo "own netns is the host's"; return 1; }
  want "interfaces in own netns" "$(tail -n +2 <<<"$out")" lo
  out=$(ctr_run "$id" --rm --net-host -- readlink /proc/self/ns/net)
  want "netns with --net-host" "$out" "$host_netns"
}

ctr_stop_kill() {
  local id=$tag-stop
  # sleep as pid 1 has no handler: SIGTERM does nothing, SIGKILL ends it.
  ctr_run "$id" -d -- sleep 1000
  c tasks kill "$id"
  sleep 2
  want "status after SIGTERM" "$(ctr_task_status "$id")" RUNNING
  cexec --exec-id e1 -d "$id" sleep 1000
  c tasks kill -a -s KILL "$id"
  wait_for "the task to stop" 20 task_is "$id" STOPPED
  want_in "exit code after SIGKILL" "$(c tasks delete "$id" 2>&1)" "exit code 137"
  c containers delete "$id"
}

# A counter in a tmpfs, checkpointed and restored: it goes on from where it was.
COUNT_SCRIPT='i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'
has_criu() { [ -x "$criu_bin/criu" ] || { echo "skipped: no CRIU 4.2 (hack/criu.sh)"; return 1; }; }
count_goes_on() { # count_goes_on WHAT BEFORE AFTER
  [ "$3" -ge "$2" ] && [ "$3" -lt $(($2 + 100)) ] || { echo "FAIL $1: counted $2 before, $3 after"; return 1; }
  echo "ok   $1: counted $2 before, $3 after"
}

ctr_checkpoint() {
  has_criu || return 0
  local id=$tag-cr ref=localhost/brig-cr:$tag before after
  ctr_run "$id" -d --mount type=tmpfs,src=tmpfs,dst=/tmp,options=rw -- sh -c "$COUNT_SCRIPT"
  wait_for "the counter to pass 20" 30 cexec --exec-id w1 "$id" sh -c 'test "$(cat /tmp/count)" -ge 20'
  before=$(cexec --exec-id c1 "$id" cat /tmp/count)
  c containers checkpoint --task "$id" "$ref"
  c tasks kill -s KILL "$id"
  wait_for "task $id to stop" 20 task_is "$id" STOPPED
  c tasks delete "$id" >/dev/null
  c containers delete "$id"
  c containers restore --live "$id" "$ref"
  task_is "$id" RUNNING || c tasks start -d --fifo-dir "$T/fifo" "$id" >/dev/null
  wait_for "restored task running" 20 task_is "$id" RUNNING
  after=$(cexec --exec-id c2 "$id" cat /tmp/count)
  count_goes_on "restore --live" "$before" "$after"
  ctr_kill_rm "$id"
  c images rm "$ref" >/dev/null 2>&1 || true
}

podman_checkpoint() {
  has_criu || return 0
  local name=$tag-cr before after
  prun -d --name "$name" "$IMG" sh -c "$COUNT_SCRIPT" >/dev/null
  wait_for "the counter to pass 20" 30 p exec "$name" sh -c 'test "$(cat /tmp/count)" -ge 20'
  before=$(p exec "$name" cat /tmp/count)
  p container checkpoint "$name" >/dev/null
  want "status after checkpoint" "$(pstatus "$name")" exited
  sleep 1
  p container restore "$name" >/dev/null
  want "status after restore" "$(pstatus "$name")" running
  after=$(p exec "$name" cat /tmp/count)
  count_goes_on "restore" "$before" "$after"
  # --export / --import: the checkpoint as a file, restored as a new container.
  before=$(p exec "$name" cat /tmp/count)
  p container checkpoint --export "$T/$name.tar.gz" "$name" >/dev/null
  p rm "$name" >/dev/null
  p container restore --import "$T/$name.tar.gz" --name "$name-2" >/dev/null
  want "status after import" "$(pstatus "$name-2")" running
  after=$(p exec "$name-2" cat /tmp/count)
  count_goes_on "restore --import" "$before" "$after"
  p rm -f "$name-2" >/dev/null
}

# --- podman scenarios -------------------------------------------------------------------------
pstatus() { p inspect -f '{{.State.Status}}' "$1"; }

podman_run_exit() {
  local out rc=0
  out=$(prun --rm "$IMG" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3' 2>"$T/err") || rc=$?
  want "exit code" "$rc" 3
  want "stdout" "$out" to-stdout
  want "stderr" "$(cat "$T/err")" to-stderr
}

podman_detached() {
  local name=$tag-detached out rc=0
  prun -d --name "$name" "$IMG" sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait' >/dev/null
  want "status after run -d" "$(pstatus "$name")" running
  out=$(p exec "$name" sh -c 'echo from-exec; echo exec-err >&2; exit 4' 2>"$T/err") || rc=$?
  want "exec exit code" "$rc" 4
  want "exec stdout" "$out" from-exec
  want "exec stderr" "$(cat "$T/err")" exec-err
  p exec -d "$name" sleep 999
  out=$(p top "$name" args)
  want_in "podman top: exec -d process" "$out" "sleep 999"
  want_in "podman top" "$out" "sleep 1000"
  p kill --signal TERM "$name" >/dev/null
  want "exit code after SIGTERM" "$(p wait "$name")" 7
  want "logs" "$(p logs "$name")" "started
got-term"
  p rm "$name" >/dev/null
}

podman_pause() {
  local name=$tag-pause
  prun -d --name "$name" "$IMG" sleep 1000 >/dev/null
  p pause "$name" >/dev/null
  want "status after pause" "$(pstatus "$name")" paused
  want "freezer state" "$(cat /sys/fs/cgroup/freezer"$CGP"/podman/libpod-*/freezer.state)" FROZEN
  p unpause "$name" >/dev/null
  want "status after unpause" "$(pstatus "$name")" running
  want "exec after unpause" "$(p exec "$name" echo alive)" alive
  p rm -f -t 0 "$name" >/dev/null
}

podman_tty() {
  local name=$tag-tty out
  out=$(in_pty "${PODMAN[@]}" run --cgroup-parent "$CGP/podman" -t --rm "$IMG" sh -c 'tty; [ -t 1 ] && echo stdio-is-a-tty; exit 5'; echo "rc=$?")
  want_in "tty in run -t" "$out" /dev/pts/0
  want_in "run -t stdio" "$out" stdio-is-a-tty
  want_in "run -t exit code" "$out" rc=5
  prun -d --name "$name" "$IMG" sleep 1000 >/dev/null
  out=$(in_pty "${PODMAN[@]}" exec -t "$name" sh -c 'tty; [ -t 1 ] && echo exec-is-a-tty')
  want_in "tty in exec -t" "$out" /dev/pts/
  want_in "exec -t stdio" "$out" exec-is-a-tty
  p rm -f -t 0 "$name" >/dev/null
}

podman_logs() {
  local name=$tag-logs
  prun -d --name "$name" "$IMG" sh -c 'for i in 1 2 3; do echo line$i; done; echo err-line >&2' >/dev/null
  want "exit code" "$(p wait "$name")" 0
  want "podman logs" "$(p logs "$name" 2>&1 | sort)" "err-line
line1
line2
line3"
  p rm "$name" >/dev/null
}

podman_limits() {
  local out
  out=$(prun --rm --memory 64m --pids-limit 50 "$IMG" \
    cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max)
  want "memory.limit_in_bytes, pids.max seen inside" "$(echo $out)" "67108864 50"
  out=$(prun --rm --pids-limit 5 "$IMG" sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done' 2>&1) || true
  want_in "fork refused above pids.max" "$out" "can't fork"
}

podman_update() {
  local name=$tag-update
  prun -d --name "$name" --memory 64m "$IMG" sleep 1000 >/dev/null
  p update --memory 128m --cpu-quota 30000 --cpu-period 100000 "$name" >/dev/null
  want "memory.limit_in_bytes after update" \
    "$(p exec "$name" cat /sys/fs/cgroup/memory/memory.limit_in_bytes)" 134217728
  want "cpu.cfs_quota_us after update (host)" \
    "$(cat /sys/fs/cgroup/cpu"$CGP"/podman/libpod-*/cpu.cfs_quota_us)" 30000
  p rm -f -t 0 "$name" >/dev/null
}

podman_env_user() {
  local out
  out=$(prun --rm -e FOO=bar -u 1:100 -w /tmp --hostname box --sysctl net.ipv4.ip_forward=1 "$IMG" \
    sh -c 'echo "$FOO $(id -u):$(id -g) $(pwd) $(hostname) $(cat /proc/sys/net/ipv4/ip_forward)"')
  want "env, user, workdir, hostname, sysctl" "$out" "bar 1:100 /tmp box 1"
  prun -d --name "$tag-envexec" "$IMG" sleep 1000 >/dev/null
  out=$(p exec -u 1:100 -w /home -e BAR=baz "$tag-envexec" sh -c 'echo "$BAR $(id -u):$(id -g) $(pwd)"')
  want "exec env, user, workdir" "$out" "baz 1:100 /home"
  p rm -f -t 0 "$tag-envexec" >/dev/null
}

podman_readonly() {
  local out rc=0
  out=$(prun --rm --read-only "$IMG" sh -c 'touch /tmp/ok && echo tmp-writable; touch /newfile' 2>&1) || rc=$?
  [ "$rc" != 0 ] || { echo "touch / succeeded in a read-only rootfs"; return 1; }
  want_in "tmpfs /tmp" "$out" tmp-writable
  want_in "touch / error" "$out" "Read-only file system"
}

podman_stdin() {
  local out
  out=$(printf 'line1\nline2\n' | timeout -k 5 60 "${PODMAN[@]}" run --cgroup-parent "$CGP/podman" -i --rm \
    "$IMG" sh -c 'wc -l; read -r x || echo stdin-eof')
  want "stdin through the runtime" "$(echo $out)" "2 stdin-eof"
}

podman_error() {
  local out rc=0
  out=$(prun --rm --name "$tag-error" "$IMG" /no/such/program 2>&1) || rc=$?
  # podman maps the runtime's reason (from the --log JSON) to 127: command not found.
  want "exit code of a missing program" "$rc" 127
  want_in "error names the program" "$out" /no/such/program
  if p container exists "$tag-error"; then p rm -f "$tag-error" >/dev/null; fi
}

podman_security() {
  local out
  # podman's default capabilities, its seccomp profile; --security-opt no-new-privileges.
  out=$(prun --rm --security-opt no-new-privileges "$IMG" sh -c \
    'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\t " " "')
  want "capabilities, no_new_privs, seccomp" "$(echo $out)" \
    "CapEff: 00000000a80425fb CapBnd: 00000000a80425fb NoNewPrivs: 1 Seccomp: 2"
  out=$(prun --rm --cap-add SYS_ADMIN --cap-drop CHOWN "$IMG" sh -c \
    'grep -E "^CapEff:" /proc/self/status | tr -s "\t " " "')
  want "--cap-add SYS_ADMIN --cap-drop CHOWN" "$out" "CapEff: 00000000a82425fa"
}

podman_volumes() {
  local out
  mkdir -p "$T/vol-rw" "$T/vol-ro"
  echo from-host >"$T/vol-ro/file"
  out=$(prun --rm -v "$T/vol-rw:/data" -v "$T/vol-ro:/ro:ro" --tmpfs /scratch:size=1m "$IMG" sh -c \
    'echo from-container > /data/file; cat /ro/file; touch /ro/x 2>/dev/null || echo ro-refused;
     touch /scratch/x && grep " /scratch " /proc/mounts | cut -d" " -f3')
  want "volumes" "$(echo $out)" "from-host ro-refused tmpfs"
  want "file written through the rw volume" "$(cat "$T/vol-rw/file")" from-container
}

podman_join_ns() {
  local name=$tag-pod out
  prun -d --name "$name" --hostname pod-host "$IMG" sleep 1000 >/dev/null
  out=$(prun --rm --pid "container:$name" --network "container:$name" --ipc "container:$name" \
    --uts "container:$name" "$IMG" sh -c 'hostname; ps -o args | grep -c "^sleep 1000"')
  want "hostname, sleep seen in the joined namespaces" "$(echo $out)" "pod-host 1"
  p rm -f -t 0 "$name" >/dev/null
}

podman_pod() {
  local pod=$tag-pod out ns_a
  # A pod's infra container (catatonit, built into a local image by podman) holds the shared
  # ipc, net and uts namespaces; the members join them by path.
  p pod create --name "$pod" --cgroup-parent "$CGP/podman" --network none --hostname pod-host >/dev/null
  prun -d --pod "$pod" --name "$pod-a" "$IMG" sleep 1000 >/dev/null
  ns_a=$(p exec "$pod-a" readlink /proc/self/ns/net)
  out=$(prun --rm --pod "$pod" "$IMG" sh -c 'hostname; readlink /proc/self/ns/net')
  want "hostname, netns of a pod member" "$(echo $out)" "pod-host $ns_a"
  [ "$ns_a" != "$host_netns" ] || { echo "the pod has the host's netns"; return 1; }
  want "pod status" "$(p pod inspect -f '{{.State}}' "$pod")" Running
  p pod rm -f -t 0 "$pod" >/dev/null
}

podman_init() {
  local out
  out=$(prun --rm --init "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; echo $$')
  want_in "pid 1 (--init)" "$(head -1 <<<"$out")" "/run/podman-init -- sh -c"
  [ "$(tail -1 <<<"$out")" -gt 1 ] || { echo "the command is pid 1, not catatonit"; return 1; }
}

podman_userns() {
  local out
  out=$(prun --rm --uidmap 0:200000:65536 --gidmap 0:200000:65536 "$IMG" sh -c \
    'cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && stat -c %u /tmp/x')
  want "user namespace maps, root inside" "$(echo $out)" "0 200000 65536 0 200000 65536 0 0"
}

podman_restart() {
  local name=$tag-restart pid1 pid2
  prun -d --name "$name" "$IMG" sleep 1000 >/dev/null
  pid1=$(p inspect -f '{{.State.Pid}}' "$name")
  p restart -t 0 "$name" >/dev/null
  want "status after restart" "$(pstatus "$name")" running
  pid2=$(p inspect -f '{{.State.Pid}}' "$name")
  [ "$pid1" != "$pid2" ] || { echo "restart kept pid $pid1"; return 1; }
  p rm -f -t 0 "$name" >/dev/null
}

podman_process_attrs() {
  local out
  out=$(prun --rm --ulimit nofile=100:200 --ulimit "nproc=$nproc:$nproc" --oom-score-adj 500 --umask 0077 --group-add 100 \
    --cgroupns private "$IMG" sh -c \
    'echo $(ulimit -Sn) $(ulimit -Hn) $(cat /proc/self/oom_score_adj) $(umask) $(id -G) $(cut -d: -f3 /proc/self/cgroup | sort -u)')
  # (no --personality: runc 1.1 ignores linux.personality)
  want "ulimit, oom_score_adj, umask, groups, cgroupns" "$out" "100 200 500 0077 0 100 /"
}

podman_devices_privileged() {
  local out
  out=$(prun --rm --device /dev/net/tun:/dev/mytun "$IMG" sh -c \
    'ls -l /dev/mytun | cut -c1; exec 3<>/dev/mytun && echo opened; [ -e /dev/net/tun ] || echo no-host-tun')
  want "--device: node, cgroup rule" "$(echo $out)" "c opened no-host-tun"
  out=$(prun --rm --privileged "$IMG" sh -c \
    'grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\t " " "; [ -c /dev/net/tun ] && echo has-tun;
     mkdir /m && mount -t tmpfs none /m && echo mounted')
  want "privileged: all capabilities, no seccomp, host devices, mount" "$(echo $out)" \
    "CapEff: $host_capbnd Seccomp: 0 has-tun mounted"
}

podman_network() {
  local out
  out=$(prun --rm --network none "$IMG" sh -c 'readlink /proc/self/ns/net; ls /sys/class/net')
  [ "$(head -1 <<<"$out")" != "$host_netns" ] || { echo "own netns is the host's"; return 1; }
  want "interfaces with --network none" "$(tail -n +2 <<<"$out")" lo
  out=$(prun --rm --network host "$IMG" readlink /proc/self/ns/net)
  want "netns with --network host" "$out" "$host_netns"
}

podman_stop() {
  local name=$tag-stop t0 t1
  prun -d --name "$name" "$IMG" sleep 1000 >/dev/null
  t0=$(date +%s)
  p stop -t 2 "$name" >/dev/null
  t1=$(date +%s)
  [ $((t1 - t0)) -ge 2 ] || { echo "stop returned after $((t1 - t0))s, before its timeout"; return 1; }
  want "status after stop" "$(pstatus "$name")" exited
  want "exit code after SIGKILL" "$(p inspect -f '{{.State.ExitCode}}' "$name")" 137
  p rm "$name" >/dev/null
}

podman_create_init_start() {
  local name=$tag-cis pid
  pcreate --name "$name" "$IMG" sh -c 'echo started; exit 6' >/dev/null
  want "status after create" "$(pstatus "$name")" created
  p init "$name" >/dev/null
  want "status after init" "$(pstatus "$name")" initialized
  pid=$(p inspect -f '{{.State.Pid}}' "$name")
  [ "$pid" -gt 0 ] && [ -d "/proc/$pid" ] || { echo "no init process after podman init"; return 1; }
  want "output of start -a" "$(p start -a "$name")" started
  want "exit code" "$(p inspect -f '{{.State.ExitCode}}' "$name")" 6
  p rm "$name" >/dev/null
}

# --- driver -----------------------------------------------------------------------------------
results=()
passed=0
failed=0
scenario() { # scenario ENGINE NAME FUNCTION
  local engine=$1 name=$2 fn=$3 rc
  printf '## %s\n' "$name" >>"$T/calls-$engine.log"
  (set -e; "$fn") >"$T/scenario.out" 2>&1
  rc=$?
  dropin_record "$rc" "$engine $name" "$engine: $name"
}

echo "dropin: runtime $runtime ($("$runtime" --version 2>&1 | head -1))"
echo "dropin: $(containerd --version | cut -d' ' -f1,3), podman $(podman --version | cut -d' ' -f3), conmon $(conmon --version | head -1 | cut -d' ' -f3)"
build_image || { echo "dropin: could not build the busybox image" >&2; exit 1; }

if start_containerd && c images import "$T/busybox.tar" >/dev/null; then
  scenario ctr "run to completion: exit code, stdout, stderr" ctr_run_exit
  scenario ctr "detached + exec + ps + SIGTERM + delete, log file" ctr_detached
  scenario ctr "pause/resume" ctr_pause_resume
  scenario ctr "tty: run -t and exec -t" ctr_tty
  scenario ctr "resource limits: memory, cpu quota" ctr_limits
  scenario ctr "env/cwd, exec --user/--cwd" ctr_env_cwd
  scenario ctr "read-only rootfs" ctr_readonly
  scenario ctr "own and host network namespace" ctr_network
  scenario ctr "privileged; read-only bind mount" ctr_privileged_mounts
  scenario ctr "stdin passed through" ctr_stdin
  scenario ctr "error of a missing program reaches ctr" ctr_error
  scenario ctr "capabilities, no_new_privs, seccomp" ctr_security
  scenario ctr "join another container's net and pid namespaces" ctr_join_ns
  scenario ctr "TERM-ignoring pid 1: SIGTERM, then kill --all SIGKILL" ctr_stop_kill
  scenario ctr "checkpoint --task, restore --live (CRIU)" ctr_checkpoint
else
  dropin_setup_failed ctr "containerd, image import"
fi

setup_podman
if p load -i "$T/busybox.tar" >/dev/null; then
  scenario podman "run to completion: exit code, stdout, stderr" podman_run_exit
  scenario podman "detached + exec (-d) + top + SIGTERM + rm" podman_detached
  scenario podman "pause/unpause" podman_pause
  scenario podman "tty: run -t and exec -t" podman_tty
  scenario podman "logs" podman_logs
  scenario podman "resource limits: memory, pids (enforced)" podman_limits
  scenario podman "podman update: memory, cpu quota" podman_update
  scenario podman "env/user/workdir/hostname/sysctl, exec -u -w -e" podman_env_user
  scenario podman "read-only rootfs" podman_readonly
  scenario podman "own and host network namespace" podman_network
  scenario podman "ulimit, oom_score_adj, umask, group-add, cgroupns" podman_process_attrs
  scenario podman "--device; privileged" podman_devices_privileged
  scenario podman "stdin passed through (-i)" podman_stdin
  scenario podman "error of a missing program: 127 and the reason" podman_error
  scenario podman "capabilities, seccomp, no-new-privileges, --cap-add" podman_security
  scenario podman "volumes: bind rw, bind ro, tmpfs" podman_volumes
  scenario podman "pod-like: join pid/net/ipc/uts of another container" podman_join_ns
  scenario podman "user namespace (--uidmap/--gidmap)" podman_userns
  scenario podman "pod: infra container, members share its namespaces" podman_pod
  scenario podman "--init (catatonit as pid 1)" podman_init
  scenario podman "restart" podman_restart
  scenario podman "stop with a TERM-ignoring pid 1 (SIGKILL after timeout)" podman_stop
  scenario podman "create -> init -> start" podman_create_init_start
  scenario podman "container checkpoint/restore, --export/--import (CRIU)" podman_checkpoint
else
  dropin_setup_failed podman "load"
fi

# --- summary ----------------------------------------------------------------------------------
echo
echo "dropin: summary for $runtime"
for engine in ctr podman; do
  echo "$engine: runtime calls per scenario"
  dropin_calls_per_scenario "$T/calls-$engine.log" 58
done
dropin_finish "$T"/calls-*.log
