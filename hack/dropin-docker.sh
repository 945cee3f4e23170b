#!/usr/bin/env bash
# Prove a runtime is a drop-in runc for Docker and buildah: run both with it and check what the
# containers saw.
#   hack/dropin-docker.sh [RUNTIME_BINARY]    (default: target/release/brig)
#   DROPIN_LOGS=DIR keeps the logs of every runtime call (calls-docker.log, calls-buildah.log).
# `hack/dropin-docker.sh /usr/sbin/runc` runs the same checks against Debian's runc. Engines, all
# from Debian and private to this run: dockerd 20.10 (own data and exec roots, socket, pid file,
# no bridge/iptables/userland proxy) on a private containerd 1.6 (containerd-shim-runc-v2), with
# the runtime registered by --add-runtime; buildah 1.28 with private storage and
# --isolation oci. The busybox image is built here from busybox-static and `docker load`ed;
# nothing needs the network. Run as root.
#
# Every runtime call goes through a wrapper named `runc` that logs its subcommand, arguments and,
# when it fails, its exit status and the error the runtime wrote to --log. The summary lists
# each scenario, PASS/FAIL and the runtime subcommands the engine called during it. A scenario
# fails when what a container saw is wrong, or when a runtime call failed that runc does not
# fail there (engines hide some). The last line is `dropin-docker: N passed, N failed` and the
# exit status is non-zero on any failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"
NAME=dropin-docker
dropin_need_root "containers need it"
dropin_runtime "${1:-}"

# --- packages --------------------------------------------------------------------------------
dropin_install docker.io containerd buildah busybox-static bsdutils
# /usr/local/bin/docker may be a newer CLI: use the one of Debian's dockerd.
DOCKER_CLI=/usr/bin/docker

dropin_tmpdir brig-dd
tag=dd$$                         # unique per run: names, cgroup directory
IMG=localhost/brig-busybox:latest
CTR_SOCK=$T/containerd/containerd.sock
DOCKER_SOCK=$T/docker/docker.sock
containerd_pid=
dockerd_pid=

# Host paths the engines make whatever their configuration says (dockerd's plugin directory and
# trust key, containerd's shim sockets, buildah's blob-info cache, the runtimes' default roots):
# those this run makes go at the end (directories only when empty).
host_dirs=(/run/docker /run/containerd /run/containers /var/lib/containers /run/runc /run/brig /etc/docker)
key_json_existed=
[ -e /etc/docker/key.json ] && key_json_existed=1
tmp_files() { compgen -G "/tmp/runc-process*"; compgen -G "/tmp/pty[0-9]*"; }
dropin_begin

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ "${1:-}" = interrupted ] && echo "dropin-docker: interrupted, cleaning up" >&2
  if [ -n "$dockerd_pid" ]; then
    # shellcheck disable=SC2046
    timeout -k 5 60 "$DOCKER_CLI" rm -f -v $(timeout -k 5 10 "$DOCKER_CLI" ps -aq 2>/dev/null) >/dev/null 2>&1
    stop_pid "$dockerd_pid"
  fi
  if [ -n "${BUILDAH[*]:-}" ]; then
    timeout -k 5 60 "${BUILDAH[@]}" rm -a >/dev/null 2>&1
  fi
  [ -n "$containerd_pid" ] && stop_pid "$containerd_pid"
  [ -z "$key_json_existed" ] && rm -f /etc/docker/key.json
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

# --- the runtime wrappers ---------------------------------------------------------------------
# One per engine: a script named runc that logs its subcommand and arguments, runs the runtime
# under test with the same descriptors, and on failure logs the exit status and the error
# lines the runtime wrote to its --log file during this call.
dropin_wrapper "$T/docker-bin" "$T/calls-docker.log" --log-failures
dropin_wrapper "$T/buildah-bin" "$T/calls-buildah.log" --log-failures

# --- the busybox image: a docker-archive (docker save layout) built here -----------------------
build_image() { build_image_archive "$T/busybox.tar" "$IMG|\"Cmd\":[\"sh\"]"; }

# --- containerd and dockerd -------------------------------------------------------------------
start_containerd() {
  local d=$T/containerd
  mkdir -p "$d"
  dropin_containerd_toml "$d" "$CTR_SOCK" >"$d/config.toml"
  dropin_start_containerd "$d" "$CTR_SOCK"
}

start_dockerd() {
  local d=$T/docker driver=overlay2
  mkdir -p "$d/client"
  echo '{}' >"$d/daemon.json"
  echo '{"auths":{}}' >"$d/client/config.json"
  # overlay2 needs a file system that takes overlay upper dirs; else vfs.
  if ! mkdir -p "$d/ovl"/{l,u,w,m} || ! mount -t overlay overlay \
    -o "lowerdir=$d/ovl/l,upperdir=$d/ovl/u,workdir=$d/ovl/w" "$d/ovl/m" 2>/dev/null; then
    driver=vfs
  else
    umount "$d/ovl/m"
  fi
  rm -rf "$d/ovl"
  # --oom-score-adjust 0: the default (-500) needs CAP_SYS_RESOURCE.
  dockerd --config-file "$d/daemon.json" --data-root "$d/root" --exec-root "$d/exec" \
    --pidfile "$d/dockerd.pid" -H "unix://$DOCKER_SOCK" --containerd "$CTR_SOCK" \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false --userland-proxy=false \
    --storage-driver "$driver" --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent "$CGP/docker" --oom-score-adjust 0 --log-level warn \
    --add-runtime "brig=$T/docker-bin/runc" --default-runtime brig >"$d/log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST=unix://$DOCKER_SOCK DOCKER_CONFIG=$d/client
  for _ in $(seq 150); do
    "$DOCKER_CLI" version >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "dropin-docker: dockerd did not start:" >&2
  cat "$d/log" >&2
  return 1
}

# --- buildah ----------------------------------------------------------------------------------
BUILDAH=()
# buildah gives no cgroupsPath to `buildah run` containers: the runtime puts them below its own
# cgroup. buildah runs from this run's cgroup $CGP/buildah (in every hierarchy; cpuset needs
# its cpus and mems) so that they land there too.
make_buildah_cgroup() {
  local h dir parent part parts
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    dir=${h%/}
    IFS=/ read -ra parts <<<"${CGP#/}/buildah"
    for part in "${parts[@]}"; do
      parent=$dir
      dir=$dir/$part
      [ -d "$dir" ] && continue
      mkdir "$dir" || return 1
      if [ -f "$dir/cpuset.cpus" ]; then
        cat "$parent/cpuset.cpus" >"$dir/cpuset.cpus" && cat "$parent/cpuset.mems" >"$dir/cpuset.mems" || return 1
      fi
    done
  done
  cat >"$T/in-cgroup" <<EOF
#!/bin/sh
for h in /sys/fs/cgroup/*/; do
  [ -f "\$h/cgroup.procs" ] || continue
  echo \$\$ >"\${h%/}$CGP/buildah/cgroup.procs" || exit 1
done
exec "\$@"
EOF
  chmod 755 "$T/in-cgroup"
}
setup_buildah() {
  local d=$T/buildah
  mkdir -p "$d/tmp"
  dropin_vfs_storage "$d" "$d/root" "$d/runroot"
  export CONTAINERS_STORAGE_CONF=$d/storage.conf CONTAINERS_REGISTRIES_CONF=$d/registries.conf
  export TMPDIR=$d/tmp BUILDAH_ISOLATION=oci
  make_buildah_cgroup || return 1
  BUILDAH=("$T/in-cgroup" buildah --root "$d/root" --runroot "$d/runroot" --storage-driver vfs
    --registries-conf "$d/registries.conf")
}

# --- helpers for scenarios ----------------------------------------------------------------------
d() { timeout -k 5 60 "$DOCKER_CLI" "$@" </dev/null; }
b() { timeout -k 5 60 "${BUILDAH[@]}" "$@" </dev/null; }
# (--network none: no network set up, nothing in /run/containers/networks)
brun() { b run --runtime "$T/buildah-bin/runc" --runtime-flag "root=$T/buildah-runtime" --isolation oci --network none "$@"; }
want_bytes() { # want_bytes WHAT FILE EXPECTED: FILE holds exactly EXPECTED (printf %s), byte for byte
  if ! printf '%s' "$3" | cmp -s - "$2"; then
    echo "$1: got $(od -An -c "$2" | tr -s ' \n' ' '| head -c 2000)"
    echo "$1: want $(printf '%s' "$3" | od -An -c | tr -s ' \n' ' ')"
    return 1
  fi
  echo "ok: $1 = $(printf '%q' "$3")"
}
host_capbnd=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
# CAP_SYS_RESOURCE (24) in our bounding set: without it no rlimit goes above our hard limit and
# a privileged container (every capability) cannot be made.
have_sys_resource=
(((0x$host_capbnd >> 24) & 1)) && have_sys_resource=1

# --- docker scenarios -------------------------------------------------------------------------
dstatus() { d inspect -f '{{.State.Status}}' "$1"; }
dpid() { d inspect -f '{{.State.Pid}}' "$1"; }
did() { d inspect -f '{{.Id}}' "$1"; }
dcg() { # dcg CONTROLLER NAME FILE: the host's view of a container's cgroup file
  cat "/sys/fs/cgroup/$1$CGP/docker/$(did "$2")/$3"
}
status_is() { [ "$(dstatus "$1")" = "$2" ]; }

docker_run_exit() {
  local out rc=0
  out=$(d run --rm "$IMG" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3' 2>"$T/err") || rc=$?
  want "exit code" "$rc" 3
  want "stdout" "$out" to-stdout
  want "stderr" "$(cat "$T/err")" to-stderr
  rc=0
  out=$(d run --rm "$IMG" /no/such/program 2>&1) || rc=$?
  # Docker maps the runtime's "no such file" to 127.
  want "exit code of a missing program" "$rc" 127
  want_in "error names the program" "$out" /no/such/program
}

docker_stdin() {
  local out
  out=$(printf 'line1\nline2\n' | timeout -k 5 60 "$DOCKER_CLI" run -i --rm "$IMG" \
    sh -c 'wc -l; read -r x || echo stdin-eof')
  want "stdin through the runtime" "$(echo $out)" "2 stdin-eof"
}

docker_detached() {
  local name=$tag-detached out rc=0
  d run -d --name "$name" "$IMG" sh -c 'trap "echo got-term; exit 7" TERM; echo started; sleep 1000 & wait' >/dev/null
  want "status after run -d" "$(dstatus "$name")" running
  out=$(d exec "$name" sh -c 'echo from-exec; echo exec-err >&2; exit 4' 2>"$T/err") || rc=$?
  want "exec exit code" "$rc" 4
  want "exec stdout" "$out" from-exec
  want "exec stderr" "$(cat "$T/err")" exec-err
  rc=0
  out=$(d exec "$name" /no/such/program 2>&1) || rc=$?
  want "exec of a missing program: exit code" "$rc" 126
  want_in "exec of a missing program: error" "$out" "no such file or directory"
  d exec -d "$name" sleep 999
  out=$(d top "$name" -o pid,args)
  want_in "docker top: exec -d process" "$out" "sleep 999"
  want_in "docker top" "$out" "sleep 1000"
  d stop -t 10 "$name" >/dev/null
  want "exit code after docker stop (SIGTERM)" "$(d inspect -f '{{.State.ExitCode}}' "$name")" 7
  want "logs" "$(d logs "$name")" "started
got-term"
  d rm "$name" >/dev/null
}

docker_stop_kill() {
  local name=$tag-stop t0 t1 out
  # sleep as pid 1 has no handler: SIGTERM does nothing, SIGKILL after the timeout ends it.
  d run -d --name "$name" "$IMG" sleep 1000 >/dev/null
  d exec -d "$name" sleep 999
  t0=$(date +%s)
  d stop -t 2 "$name" >/dev/null
  t1=$(date +%s)
  [ $((t1 - t0)) -ge 2 ] || { echo "stop returned after $((t1 - t0))s, before its timeout"; return 1; }
  want "status after stop" "$(dstatus "$name")" exited
  want "exit code after SIGKILL" "$(d inspect -f '{{.State.ExitCode}}' "$name")" 137
  # docker kill of a stopped container, then start it again and kill it
  out=$(d kill "$name" 2>&1) && { echo "docker kill of a stopped container worked: $out"; return 1; }
  want_in "docker kill of a stopped container" "$out" "is not running"
  d start "$name" >/dev/null
  want "status after start" "$(dstatus "$name")" running
  d kill "$name" >/dev/null
  want "exit code after docker kill" "$(d wait "$name")" 137
  d rm "$name" >/dev/null
}

docker_restart() {
  local name=$tag-restart pid1 pid2 out
  d run -d --name "$name" "$IMG" sleep 1000 >/dev/null
  pid1=$(dpid "$name")
  d restart -t 0 "$name" >/dev/null
  want "status after restart" "$(dstatus "$name")" running
  pid2=$(dpid "$name")
  [ "$pid1" != "$pid2" ] || { echo "restart kept pid $pid1"; return 1; }
  d rm -f "$name" >/dev/null
  # on-failure:2: the first run and two restarts, then it stays exited
  d run -d --name "$name" --restart on-failure:2 "$IMG" sh -c 'echo ran; exit 1' >/dev/null
  restarted_twice() {
    [ "$(d inspect -f '{{.State.Status}} {{.RestartCount}}' "$name")" = "exited 2" ]
  }
  wait_for "two restarts" 30 restarted_twice
  sleep 1
  want "status, restart count" "$(d inspect -f '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}' "$name")" "exited 2 1"
  want "logs of three runs" "$(d logs "$name" | tr '\n' ' ')" "ran ran ran "
  d rm "$name" >/dev/null
}

docker_pause() {
  local name=$tag-pause n1 n2 pid
  d run -d --name "$name" "$IMG" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done' >/dev/null
  sleep 0.3
  d pause "$name" >/dev/null
  want "status after pause" "$(dstatus "$name")" paused
  want "freezer state" "$(dcg freezer "$name" freezer.state)" FROZEN
  pid=$(dpid "$name")
  n1=$(cat "/proc/$pid/root/tmp/n")
  sleep 0.5
  n2=$(cat "/proc/$pid/root/tmp/n")
  want "counter while paused" "$n2" "$n1"
  d unpause "$name" >/dev/null
  want "status after unpause" "$(dstatus "$name")" running
  sleep 0.5
  n2=$(d exec "$name" cat /tmp/n)
  [ "$n2" -gt "$n1" ] || { echo "counter did not move after unpause ($n1 -> $n2)"; return 1; }
  d rm -f "$name" >/dev/null
}

docker_tty() {
  local name=$tag-tty out
  out=$(in_pty "$DOCKER_CLI" run -t --rm "$IMG" sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5'; echo "rc=$?")
  want_in "tty in run -t" "$out" /dev/pts/0
  want_in "run -t stdio" "$out" stdio-is-a-tty
  want_in "run -t exit code" "$out" rc=5
  d run -d --name "$name" "$IMG" sleep 1000 >/dev/null
  out=$(in_pty "$DOCKER_CLI" exec -it "$name" sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo exec-is-a-tty')
  want_in "tty in exec -it" "$out" /dev/pts/
  want_in "exec -it stdio" "$out" exec-is-a-tty
  d rm -f "$name" >/dev/null
}

docker_logs() {
  local name=$tag-logs
  d run -d --name "$name" "$IMG" sh -c 'for i in 1 2 3; do echo line$i; done; echo err-line >&2' >/dev/null
  want "exit code" "$(d wait "$name")" 0
  want "docker logs: stdout" "$(d logs "$name" 2>/dev/null)" "line1
line2
line3"
  want "docker logs: stderr" "$(d logs "$name" 2>&1 >/dev/null)" err-line
  d rm "$name" >/dev/null
}

docker_limits() {
  local name=$tag-limits bps=() mm dev out
  # a read-bps throttle on the block device of / (when it is one)
  mm=$(awk '$5 == "/" { print $3; exit }' /proc/self/mountinfo)
  dev=$(readlink -f "/dev/block/$mm" 2>/dev/null) && [ -b "$dev" ] && bps=(--device-read-bps "$dev:1mb")
  d run -d --name "$name" --memory 64m --memory-reservation 32m --memory-swappiness 10 --cpus 0.5 \
    --cpu-shares 512 --cpuset-cpus 0 --pids-limit 50 "${bps[@]}" "$IMG" sleep 1000 >/dev/null
  want "memory.limit_in_bytes" "$(dcg memory "$name" memory.limit_in_bytes)" 67108864
  want "memory.soft_limit_in_bytes" "$(dcg memory "$name" memory.soft_limit_in_bytes)" 33554432
  want "memory.swappiness" "$(dcg memory "$name" memory.swappiness)" 10
  want "cpu.cfs_quota_us/period" "$(dcg cpu "$name" cpu.cfs_quota_us)/$(dcg cpu "$name" cpu.cfs_period_us)" 50000/100000
  want "cpu.shares" "$(dcg cpu "$name" cpu.shares)" 512
  want "cpuset.cpus" "$(dcg cpuset "$name" cpuset.cpus)" 0
  want "pids.max" "$(dcg pids "$name" pids.max)" 50
  if [ ${#bps[@]} -gt 0 ]; then
    want "blkio.throttle.read_bps_device" "$(dcg blkio "$name" blkio.throttle.read_bps_device)" "$mm 1048576"
  fi
  want "init in the cgroup" "$(dcg pids "$name" cgroup.procs)" "$(dpid "$name")"
  d rm -f "$name" >/dev/null
  out=$(d run --rm --pids-limit 5 "$IMG" sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done' 2>&1) || true
  want_in "fork refused above pids.max" "$out" "can't fork"
}

docker_update() {
  local name=$tag-update
  d run -d --name "$name" --memory 64m --cpus 0.5 --pids-limit 50 "$IMG" sleep 1000 >/dev/null
  d update --memory 128m --memory-swap 256m --cpus 1.5 --cpu-shares 256 --pids-limit 60 "$name" >/dev/null
  want "memory.limit_in_bytes after update" "$(dcg memory "$name" memory.limit_in_bytes)" 134217728
  if [ -f "/sys/fs/cgroup/memory$CGP/docker/$(did "$name")/memory.memsw.limit_in_bytes" ]; then
    want "memory.memsw.limit_in_bytes after update" "$(dcg memory "$name" memory.memsw.limit_in_bytes)" 268435456
  fi
  want "cpu.cfs_quota_us after update" "$(dcg cpu "$name" cpu.cfs_quota_us)" 150000
  want "cpu.shares after update" "$(dcg cpu "$name" cpu.shares)" 256
  want "pids.max after update" "$(dcg pids "$name" pids.max)" 60
  want "docker inspect after update" \
    "$(d inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}' "$name")" \
    "134217728 1500000000 60"
  want "exec after update" "$(d exec "$name" echo alive)" alive
  d rm -f "$name" >/dev/null
}

docker_stats_events() {
  local name=$tag-stats since out
  since=$(date +%s)
  d run -d --name "$name" --memory 64m "$IMG" sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null
  sleep 0.5
  out=$(d stats --no-stream --format '{{.Name}} {{.PIDs}} {{.MemUsage}}' "$name")
  want_in "stats: name and pids" "$out" "$name 3 "
  want_in "stats: memory limit" "$out" "/ 64MiB"
  d pause "$name" >/dev/null
  d unpause "$name" >/dev/null
  d rm -f "$name" >/dev/null
  out=$(d events --since "$since" --until "$(($(date +%s) + 1))" --filter "container=$name" --format '{{.Action}}' | tr '\n' ' ')
  want "events" "$out" "create start pause unpause kill die destroy "
}

docker_readonly() {
  local out rc=0
  out=$(d run --rm --read-only --tmpfs /tmp "$IMG" sh -c 'touch /tmp/ok && echo tmp-writable; touch /newfile' 2>&1) || rc=$?
  [ "$rc" != 0 ] || { echo "touch / succeeded in a read-only rootfs"; return 1; }
  want_in "tmpfs /tmp" "$out" tmp-writable
  want_in "touch / error" "$out" "Read-only file system"
}

docker_user_env() {
  local name=$tag-user out1 out2 out3 out4
  out1=$(d run --rm --user 1234 -w /tmp -e FOO=bar "$IMG" sh -c 'echo "$FOO $(id -u):$(id -g) $(pwd)"; echo "HOME=$HOME"')
  out2=$(d run --rm --user 1:100 "$IMG" sh -c 'echo "$(id -u):$(id -g)"; echo "HOME=$HOME"')
  out3=$(d run --rm --cidfile "$T/user.cid" "$IMG" sh -c 'echo "$(id -u) $(hostname)"; echo "HOME=$HOME"')
  d run -d --name "$name" --hostname box "$IMG" sleep 1000 >/dev/null
  out4=$(d exec -u 1 -w /home -e BAR=baz "$name" sh -c 'echo "$BAR $(id -u) $(pwd) $(hostname)"; echo "HOME=$HOME"')
  d rm -f "$name" >/dev/null
  want "env, user without a passwd entry, workdir" "$(head -1 <<<"$out1")" "bar 1234:0 /tmp"
  want "user with a passwd entry" "$(head -1 <<<"$out2")" "1:100"
  want "root, hostname" "$(head -1 <<<"$out3")" "0 $(cut -c1-12 "$T/user.cid")"
  want "exec env, user, workdir, hostname" "$(head -1 <<<"$out4")" "baz 1 /home box"
  # HOME (Docker sets none): the runtime takes it from the container's /etc/passwd, "/" when
  # the user has no entry
  want "HOME of root" "$(tail -1 <<<"$out3")" HOME=/root
  want "HOME of a user with a passwd entry" "$(tail -1 <<<"$out2")" HOME=/usr/sbin
  want "HOME of exec -u 1" "$(tail -1 <<<"$out4")" HOME=/usr/sbin
  want "HOME of a user without a passwd entry" "$(tail -1 <<<"$out1")" HOME=/
}

docker_caps() {
  local out
  out=$(d run --rm "$IMG" sh -c 'grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status | tr -s "\t " " "')
  want "default capabilities" "$(echo $out)" "CapEff: 00000000a80425fb CapBnd: 00000000a80425fb NoNewPrivs: 0"
  out=$(d run --rm --cap-add SYS_ADMIN --cap-drop CHOWN "$IMG" sh -c 'grep -E "^CapEff:" /proc/self/status | tr -s "\t " " "')
  want "--cap-add SYS_ADMIN --cap-drop CHOWN" "$out" "CapEff: 00000000a82425fa"
  out=$(d run --rm --cap-drop ALL --security-opt no-new-privileges "$IMG" sh -c 'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status | tr -s "\t " " "')
  want "--cap-drop ALL, no-new-privileges" "$(echo $out)" "CapEff: 0000000000000000 NoNewPrivs: 1"
  out=$(d run --rm --user 1 --cap-add NET_BIND_SERVICE "$IMG" sh -c 'grep -E "^CapEff:" /proc/self/status | tr -s "\t " " "')
  want "non-root user: no effective capabilities" "$out" "CapEff: 0000000000000000"
}

docker_seccomp() {
  local out rc=0
  out=$(d run --rm "$IMG" sh -c 'grep -E "^Seccomp:" /proc/self/status | tr -s "\t " " "; unshare -U true && echo unshared' 2>&1) || rc=$?
  want_in "default profile loaded" "$out" "Seccomp: 2"
  want_in "unshare denied" "$out" "Operation not permitted"
  [ "$rc" != 0 ] || { echo "unshare worked under the default profile"; return 1; }
  out=$(d run --rm --security-opt seccomp=unconfined "$IMG" sh -c 'grep -E "^Seccomp:" /proc/self/status | tr -s "\t " " "; unshare -U true && echo unshared' 2>&1)
  want "unconfined: no filter, unshare works" "$(echo $out)" "Seccomp: 0 unshared"
}

docker_devices() {
  local out
  # (/dev/fuse opens for root without any capability: only the device cgroup refuses it)
  out=$(d run --rm --device /dev/fuse:/dev/myfuse "$IMG" sh -c \
    'ls -l /dev/myfuse | cut -c1; (exec 3<>/dev/myfuse) && echo opened; [ -e /dev/fuse ] || echo no-host-fuse')
  want "--device: node, cgroup rule" "$(echo $out)" "c opened no-host-fuse"
  out=$(d run --rm "$IMG" sh -c 'mknod /dev/fuse2 c 10 229 && { (exec 4<>/dev/fuse2) 2>&1 || echo not-allowed; }')
  want "a node made without --device: the cgroup refuses it" "$(echo $out)" "sh: can't create /dev/fuse2: Operation not permitted not-allowed"
}

docker_volumes() {
  local out
  mkdir -p "$T/vol-rw" "$T/vol-ro"
  echo from-host >"$T/vol-ro/file"
  d volume create "$tag-vol" >/dev/null
  out=$(d run --rm -v "$T/vol-rw:/data" -v "$T/vol-ro:/ro:ro" -v "$tag-vol:/named" --tmpfs /scratch:size=1m "$IMG" sh -c \
    'echo from-container > /data/file; cat /ro/file; touch /ro/x 2>/dev/null || echo ro-refused;
     echo kept > /named/file; touch /scratch/x && grep " /scratch " /proc/mounts | cut -d" " -f3')
  want "volumes" "$(echo $out)" "from-host ro-refused tmpfs"
  want "file written through the rw volume" "$(cat "$T/vol-rw/file")" from-container
  want "named volume kept" "$(d run --rm -v "$tag-vol:/named:ro" "$IMG" cat /named/file)" kept
  d volume rm "$tag-vol" >/dev/null
}

docker_init() {
  local out
  out=$(d run --rm --init "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; echo $$')
  want_in "pid 1 (--init)" "$(head -1 <<<"$out")" "/sbin/docker-init -- sh -c"
  [ "$(tail -1 <<<"$out")" -gt 1 ] || { echo "the command is pid 1, not docker-init"; return 1; }
}

docker_rm() {
  local cid mounts_before
  mounts_before=$(grep -c "$T/" /proc/self/mountinfo)
  d run --rm --cidfile "$T/rm.cid" --memory 32m "$IMG" sh -c 'echo bye' >/dev/null
  cid=$(cat "$T/rm.cid")
  [ -n "$cid" ] || { echo "no container id"; return 1; }
  want "docker ps -a" "$(d ps -aq --no-trunc --filter "id=$cid")" ""
  # (dockerd gives the runtime --root EXEC_ROOT/runtime-runc/moby, after the binary's name)
  want "runtime state" "$(ls -d "$T"/docker/exec/runtime-*/moby/"$cid" 2>/dev/null)" ""
  want "cgroups" "$(ls -d /sys/fs/cgroup/*"$CGP/docker/$cid" 2>/dev/null)" ""
  want "bundle" "$(ls -d "$T/containerd/state/io.containerd.runtime.v2.task/moby/$cid" 2>/dev/null)" ""
  want "mounts under the temp dir" "$(grep -c "$T/" /proc/self/mountinfo)" "$mounts_before"
}

docker_sysctl_ulimit_shm() {
  local out
  out=$(d run --rm --sysctl net.ipv4.ip_forward=1 --sysctl kernel.msgmax=4096 --ulimit nofile=100:200 \
    --shm-size 16m "$IMG" sh -c \
    'echo $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax) $(ulimit -Sn) $(ulimit -Hn);
     grep " /dev/shm " /proc/mounts | grep -o "size=[0-9]*k"')
  want "sysctl, ulimit, shm size" "$(echo $out)" "1 4096 100 200 size=16384k"
}

docker_ulimit_above_hard() {
  local out rc=0 hard want_out
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && { echo "ok: no hard nofile limit to exceed"; return 0; }
  out=$(d run --rm --ulimit "nofile=$((hard + 1)):$((hard + 1))" "$IMG" sh -c 'ulimit -Hn' 2>&1) || rc=$?
  if [ -n "$have_sys_resource" ]; then
    want "nofile above our hard limit (CAP_SYS_RESOURCE)" "$out" "$((hard + 1))"
  else
    # Without CAP_SYS_RESOURCE setrlimit fails: runc fails the container (docker: 126/127).
    [ "$rc" != 0 ] || { echo "a nofile limit above the hard limit worked without CAP_SYS_RESOURCE: $out"; return 1; }
    want_in "error of setrlimit above the hard limit" "$out" "operation not permitted"
  fi
}

docker_privileged() {
  local out rc=0
  out=$(d run --rm --privileged "$IMG" sh -c \
    'grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\t " " "; [ -c /dev/net/tun ] && echo has-tun;
     mkdir /m && mount -t tmpfs none /m && echo mounted' 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then
    # Docker asks for every capability it knows: all, or what our bounding set has.
    want "privileged: all capabilities, no seccomp, host devices, mount" "$(echo $out)" \
      "CapEff: $host_capbnd Seccomp: 0 has-tun mounted"
  else
    [ -z "$have_sys_resource" ] || { echo "privileged failed: $out"; return 1; }
    # runc fails when a capability is not in our bounding set ("operation not permitted");
    # brig fails too, and names the capability it cannot grant.
    case $out in
      *"CAP_SYS_RESOURCE not in brig's own permitted set"*) echo "ok: privileged: brig names the capability it cannot grant" ;;
      *) want_in "privileged without CAP_SYS_RESOURCE: the error" "$out" "operation not permitted" ;;
    esac
  fi
}

docker_namespaces() {
  local name=$tag-ns out pid
  local ns='for n in net pid ipc uts; do readlink /proc/self/ns/$n; done' host_ns
  host_ns=$(sh -c "$ns")
  out=$(d run --rm "$IMG" sh -c "$ns; ls /sys/class/net; echo \$\$")
  want "own net, pid, ipc, uts namespaces; lo only; pid 1" \
    "$(grep -c -F -x -f <(echo "$host_ns") <<<"$out") $(tail -2 <<<"$out" | tr '\n' ' ')" "0 lo 1 "
  out=$(d run --rm --network host --pid host --ipc host --uts host "$IMG" sh -c "$ns; hostname")
  want "host namespaces" "$(echo $out)" "$(echo $host_ns $(hostname))"
  d run -d --name "$name" --ipc shareable --hostname first "$IMG" sh -c 'echo one > /dev/shm/shared; sleep 1000' >/dev/null
  pid=$(dpid "$name")
  out=$(d run --rm --pid "container:$name" --network "container:$name" --ipc "container:$name" "$IMG" sh -c \
    'readlink /proc/self/ns/net; ps -o args | grep -c "^sleep 1000"; cat /dev/shm/shared')
  want "joined net, pid, ipc of another container" "$(echo $out)" "$(readlink "/proc/$pid/ns/net") 1 one"
  d rm -f "$name" >/dev/null
  out=$(d run --rm --cgroupns private "$IMG" sh -c 'cut -d: -f3 /proc/self/cgroup | sort -u')
  want "--cgroupns private: the container's cgroup is its root" "$out" /
}

docker_process_attrs() {
  local name=$tag-attrs out
  out=$(d run --rm --oom-score-adj 500 --group-add 100 "$IMG" sh -c 'echo $(cat /proc/self/oom_score_adj) $(id -G)')
  want "oom_score_adj, extra group" "$out" "500 0 100"
  # a health check runs an exec every second
  d run -d --name "$name" --health-cmd 'test -e /tmp/healthy' --health-interval 1s --health-retries 1 \
    --stop-signal USR1 "$IMG" sh -c 'trap "echo got-usr1; exit 9" USR1; touch /tmp/healthy; sleep 1000 & wait' >/dev/null
  healthy() { [ "$(d inspect -f '{{.State.Health.Status}}' "$name")" = healthy ]; }
  wait_for "a healthy container" 20 healthy
  d exec "$name" rm /tmp/healthy
  unhealthy() { [ "$(d inspect -f '{{.State.Health.Status}}' "$name")" = unhealthy ]; }
  wait_for "an unhealthy container" 20 unhealthy
  d stop -t 10 "$name" >/dev/null
  want "exit code after the stop signal (USR1)" "$(d inspect -f '{{.State.ExitCode}}' "$name")" 9
  want "logs" "$(d logs "$name")" got-usr1
  d rm "$name" >/dev/null
}

# One more container, then, every scenario having removed its containers: no container, runtime
# state, cgroup, mount or process of a container is left.
docker_nothing_left() {
  want "a last container" "$(d run --rm "$IMG" echo last)" last
  want "docker ps -a" "$(d ps -aq)" ""
  want "runtime state" "$(ls "$T"/docker/exec/runtime-*/moby 2>/dev/null)" ""
  want "container cgroups" "$(ls -d /sys/fs/cgroup/*"$CGP"/docker/*/ 2>/dev/null)" ""
  want "container rootfs mounts" "$(grep -c " $T/docker/root/overlay2/.*/merged " /proc/self/mountinfo)" 0
  want "shims" "$(ls "$T/containerd/state/io.containerd.runtime.v2.task/moby" 2>/dev/null)" ""
}

# --- buildah scenarios ------------------------------------------------------------------------
buildah_run() {
  local c out rc=0
  c=$(b from --pull-never --name "$tag-run" "$IMG")
  brun "$c" -- sh -c 'exit 3' 2>/dev/null || rc=$?
  want "exit code" "$rc" 3
  out=$(brun "$c" -- sh -c 'printf to-stdout; printf "err1\nerr2" >&2' 2>"$T/err")
  want "stdout" "$out" to-stdout
  # byte for byte: nothing but what the container wrote
  want_bytes "stderr" "$T/err" $'err1\nerr2'
  mkdir -p "$T/bvol"
  echo from-host >"$T/bvol/in"
  out=$(brun -v "$T/bvol:/data" "$c" -- sh -c 'cat /data/in; echo from-container > /data/out' 2>&1)
  want "volume: read" "$out" from-host
  want "volume: written" "$(cat "$T/bvol/out")" from-container
  out=$(in_pty "${BUILDAH[@]}" run --runtime "$T/buildah-bin/runc" --runtime-flag "root=$T/buildah-runtime" --isolation oci --network none -t "$c" -- \
    sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5'; echo "rc=$?")
  want_in "tty in run -t" "$out" /dev/pts/
  want_in "run -t stdio" "$out" stdio-is-a-tty
  want_in "run -t exit code" "$out" rc=5
  # buildah's default capabilities, also listed as ambient without an inheritable set: the
  # runtime skips those (quietly: stderr above)
  out=$(brun "$c" -- sh -c 'grep -E "^(CapInh|CapEff|CapAmb|Seccomp):" /proc/self/status | tr -s "\t " " "' 2>&1)
  want "capabilities, seccomp" "$(echo $out)" "CapInh: 0000000000000000 CapEff: 00000000800405fb CapAmb: 0000000000000000 Seccomp: 2"
  # env, user, cwd; HOME (buildah sets none) from the container's /etc/passwd, "/" without an
  # entry
  out=$(brun --env FOO=bar --user 1:100 "$c" -- sh -c 'echo "$FOO $(id -u):$(id -g) $(pwd) $HOME"' 2>&1)
  want "env, user, cwd, HOME" "$out" "bar 1:100 / /usr/sbin"
  b config --env BAZ=qux --workingdir /tmp --user 1234 "$c"
  out=$(brun "$c" -- sh -c 'echo "$BAZ $(id -u) $(pwd) $HOME"' 2>&1)
  want "config env, user without a passwd entry, workdir, HOME" "$out" "qux 1234 /tmp /"
  b rm "$c" >/dev/null
}

buildah_bud() {
  local dir=$T/bud out rc=0 c
  mkdir -p "$dir"
  cat >"$dir/Containerfile" <<EOF
FROM $IMG
ENV GREETING=hello
RUN echo "\$GREETING" > /built && printf 'step-err\n' >&2
RUN printf 'no-newline-at-end' >&2
USER 1:100
RUN id -u > /tmp/uid && echo "\$HOME" > /tmp/home
EOF
  b bud --pull-never --quiet --runtime "$T/buildah-bin/runc" --runtime-flag "root=$T/buildah-runtime" --isolation oci --network none \
    -t "localhost/$tag-built" -f "$dir/Containerfile" "$dir" >"$T/bud.out" 2>"$T/bud.err" || rc=$?
  want "bud exit code" "$rc" 0
  want_bytes "stderr" "$T/bud.err" $'step-err\nno-newline-at-end'
  c=$(b from --pull-never "localhost/$tag-built")
  out=$(brun "$c" -- cat /built /tmp/uid /tmp/home 2>&1)
  want "what the RUN steps wrote" "$(echo $out)" "hello 1 /usr/sbin"
  b rm "$c" >/dev/null
  printf 'FROM %s\nRUN echo failing; exit 5\n' "$IMG" >"$dir/Containerfile.fail"
  rc=0
  out=$(b bud --pull-never --quiet --runtime "$T/buildah-bin/runc" --runtime-flag "root=$T/buildah-runtime" --isolation oci --network none \
    -f "$dir/Containerfile.fail" "$dir" 2>&1) || rc=$?
  [ "$rc" != 0 ] || { echo "a failing RUN step did not fail the build"; return 1; }
  want_in "failing RUN step: exit status" "$out" "exit status 5"
  b rmi "localhost/$tag-built" >/dev/null
}

buildah_nothing_left() {
  local c
  c=$(b from --pull-never "$IMG")
  want "a last container" "$(brun "$c" -- echo last)" last
  b rm "$c" >/dev/null
  want "buildah containers" "$(b containers -q)" ""
  want "runtime state" "$(ls "$T/buildah-runtime" 2>/dev/null)" ""
  want "container cgroups" "$(ls -d /sys/fs/cgroup/*"$CGP"/buildah/*/ 2>/dev/null)" ""
  want "processes in buildah's cgroup" "$(cat /sys/fs/cgroup/*"$CGP"/buildah/cgroup.procs)" ""
}

# --- driver -----------------------------------------------------------------------------------
results=()
passed=0
failed=0
# scenario ENGINE NAME FUNCTION [SUBCOMMAND...]: run FUNCTION; it fails when a check fails or
# when a runtime call failed that is not one of the SUBCOMMANDs the scenario makes fail on
# purpose (an engine may hide a failed call: containerd's shim goes on after a failed
# `kill --all` of a stopped container, which runc does without error).
scenario() {
  local engine=$1 name=$2 fn=$3 rc ids failed_calls unexpected
  shift 3
  printf '## %s\n' "$name" >>"$T/calls-$engine.log"
  (set -e; "$fn") >"$T/scenario.out" 2>&1
  rc=$?
  # the runtime calls that failed during this scenario
  failed_calls=$(awk -v n="## $name" '$0 == n { on = 1; next } /^## / { on = 0 } on && /^!/' "$T/calls-$engine.log" | cut -f1,2)
  unexpected=$(awk -F'\t' -v ok=" $* " '{ sub(/^!/, "", $1) } index(ok, " " $1 " ") == 0 { print $1 }' <<<"$failed_calls" | sort -u | tr '\n' ' ')
  if [ "$rc" = 0 ] && [ -n "$unexpected" ]; then
    echo "runtime calls failed that runc does not fail here: $unexpected" >>"$T/scenario.out"
    rc=1
  fi
  dropin_record "$rc" "$engine $name" "$engine: $name"
  if [ "$rc" != 0 ]; then
    [ -z "$failed_calls" ] || sed 's/^!/    runtime failed: /' <<<"$failed_calls"
    # what a failed scenario left must not fail the next ones (a passing one removes its own,
    # which the last scenario checks)
    case $engine in
      docker) ids=$(d ps -aq); [ -z "$ids" ] || d rm -f -v $ids >/dev/null 2>&1 ;;
      buildah) b rm -a >/dev/null 2>&1 ;;
    esac
  fi
}

echo "dropin-docker: runtime $runtime ($("$runtime" --version 2>&1 | head -1))"
echo "dropin-docker: $(dockerd --version | cut -d, -f1), $(containerd --version | cut -d' ' -f1,3), buildah $(buildah --version | cut -d' ' -f3)"
build_image || { echo "dropin-docker: could not build the busybox image" >&2; exit 1; }

if start_containerd && start_dockerd && d load -i "$T/busybox.tar" >/dev/null; then
  scenario docker "run to completion: exit code, stdout, stderr; missing program" docker_run_exit create
  scenario docker "stdin passed through (-i)" docker_stdin
  scenario docker "detached + exec + top + stop (SIGTERM) + logs" docker_detached exec
  scenario docker "stop of a TERM-ignoring pid 1, kill, start again" docker_stop_kill
  scenario docker "restart; --restart on-failure:2" docker_restart
  scenario docker "pause/unpause" docker_pause
  scenario docker "tty: run -t and exec -it" docker_tty
  scenario docker "logs: stdout and stderr" docker_logs
  scenario docker "--memory*/--cpu*/--pids-limit/--device-read-bps in the host cgroup" docker_limits
  scenario docker "docker update" docker_update
  scenario docker "stats --no-stream, events" docker_stats_events
  scenario docker "--read-only" docker_readonly
  scenario docker "--user/--workdir/-e, exec -u -w -e, HOME" docker_user_env
  scenario docker "--cap-add/--cap-drop, no-new-privileges" docker_caps
  scenario docker "default seccomp profile (unshare denied)" docker_seccomp
  scenario docker "--device" docker_devices
  scenario docker "volumes: bind rw/ro, named, tmpfs" docker_volumes
  scenario docker "--init (docker-init as pid 1)" docker_init
  scenario docker "--rm leaves nothing" docker_rm
  scenario docker "--sysctl, --ulimit, --shm-size" docker_sysctl_ulimit_shm
  scenario docker "namespaces: own, host, joined (--pid/--network/--ipc container:), cgroupns" docker_namespaces
  scenario docker "--oom-score-adj, --group-add, health check (exec), --stop-signal" docker_process_attrs
  scenario docker "--ulimit above the hard limit" docker_ulimit_above_hard create
  scenario docker "--privileged" docker_privileged create
  scenario docker "nothing left: containers, state, cgroups, mounts, shims" docker_nothing_left
else
  dropin_setup_failed docker "containerd, dockerd, docker load"
fi

if setup_buildah && b pull -q "docker-archive:$T/busybox.tar" >/dev/null; then
  scenario buildah "run: exit code, stdio byte for byte, volume, tty, caps, env/user/HOME" buildah_run
  scenario buildah "bud: RUN steps, stderr byte for byte, failing step" buildah_bud
  scenario buildah "nothing left: containers, state, cgroups" buildah_nothing_left
else
  dropin_setup_failed buildah "pull docker-archive"
fi

# --- summary ----------------------------------------------------------------------------------
echo
echo "dropin-docker: summary for $runtime"
for engine in docker buildah; do
  echo "$engine: runtime calls per scenario"
  dropin_calls_per_scenario "$T/calls-$engine.log" 58
done
dropin_finish "$T"/calls-*.log
