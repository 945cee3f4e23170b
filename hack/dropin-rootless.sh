#!/usr/bin/env bash
# Rootless podman with a runtime under test (issue 17): a user made for this run (useradd, its
# subordinate ranges) runs Debian's podman 4.3 with the runtime as its OCI runtime, vfs storage,
# --network none, and checks run, exec, stop, logs and a volume.
#   hack/dropin-rootless.sh [RUNTIME_BINARY]    (default: target/release/brig)
# `hack/dropin-rootless.sh /usr/sbin/runc` runs the same checks against runc. Run as root (to
# make the user); everything else runs as the user. The image is built offline, as dropin.sh
# does. Everything the run made (user, ranges, processes of the user, files) is removed at the
# end, whatever happened. Last line: `dropin-rootless: N passed, N failed`.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"
NAME=dropin-rootless
dropin_need_root "it makes the test user"
dropin_runtime "${1:-}"
dropin_install podman conmon uidmap busybox-static bsdutils

dropin_tmpdir brig-dropin-rootless
tag=rl$$
user=brigrl$$
IMG=localhost/brig-busybox:latest
host_dirs=()
# conmon's console sockets go to /tmp; an engine killed at the wrong moment leaves them.
tmp_files() { compgen -G "/tmp/conmon-term.*"; }
dropin_begin
uid=

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ "${1:-}" = interrupted ] && echo "$NAME: interrupted, cleaning up" >&2
  [ -n "$uid" ] && p rm -af -t 0 >/dev/null 2>&1
  dropin_remove_user
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

dropin_make_user || exit 1

H=$T/home
mkdir -p "$H/.config/containers" "$T/xdg" "$T/bin" "$T/vol"
chmod 700 "$T/xdg"
# The runtime is copied where the user can run it; a wrapper logs each call.
cp "$runtime" "$T/bin/runtime"
cat >"$T/bin/runc" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$T/calls.log"
exec "$T/bin/runtime" "\$@"
EOF
chmod 755 "$T/bin/runc"
: >"$T/calls.log"
cat >"$H/.config/containers/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["/usr/bin/conmon"]
runtime = "runc"
[engine.runtimes]
runc = ["$T/bin/runc"]
EOF
dropin_vfs_storage "$H/.config/containers" "$H/storage" "$T/xdg/containers"
build_image_archive "$T/busybox.tar" "$IMG|\"Cmd\":[\"sh\"]" || exit 1
chown -R "$uid:$gid" "$T"

as_user() {
  (cd "$H" && setpriv --reuid "$uid" --regid "$gid" --init-groups env -i \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$H" USER="$user" LOGNAME="$user" \
    XDG_RUNTIME_DIR="$T/xdg" XDG_CONFIG_HOME="$H/.config" "$@")
}
p() { as_user timeout -k 5 60 podman "$@" </dev/null; }

# --- scenarios ----------------------------------------------------------------------------------
rootless_run() {
  local out
  out=$(p run --rm "$IMG" sh -c 'grep ^Uid /proc/self/status | tr -s "\t " " "; cat /proc/self/uid_map | tr -s " " " "; exit 7')
  want "run: exit status" "$?" 7 || return 1
  want_in "run: root in the container" "$out" "Uid: 0 0 0 0" || return 1
  want_in "run: podman's user namespace (own id, subordinate range)" "$out" " 0 $uid 1" || return 1
  # The runtime ran as root of podman's user namespace, its state under $XDG_RUNTIME_DIR.
  want "state root under XDG_RUNTIME_DIR" "$([ -d "$T/xdg/brig" ] || [ -d "$T/xdg/runc" ] && echo yes)" yes
}

rootless_detached_exec_logs_stop() {
  local out name=$tag-d
  p run -d --name "$name" "$IMG" sh -c 'echo out-line; echo err-line >&2; trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done' >/dev/null || return 1
  for _ in $(seq 50); do p logs "$name" 2>/dev/null | grep -q out-line && break; sleep 0.2; done
  out=$(p exec "$name" sh -c 'echo exec-ran; id -u')
  want "exec" "$(echo $out)" "exec-ran 0" || return 1
  out=$(p exec "$name" sh -c 'exit 3')
  want "exec exit status" "$?" 3 || return 1
  p stop -t 10 "$name" >/dev/null || return 1
  want "stopped by TERM" "$(p inspect -f '{{.State.ExitCode}}' "$name")" 0 || return 1
  out=$(p logs "$name" 2>&1 | sort)
  want "logs" "$(echo $out)" "err-line got-term out-line" || return 1
  p rm "$name" >/dev/null
}

rootless_volume() {
  local out
  echo from-host >"$T/vol/in"
  chown "$uid:$gid" "$T/vol/in"
  out=$(p run --rm -v "$T/vol:/data" "$IMG" sh -c 'cat /data/in; echo from-container > /data/out')
  want "volume read" "$out" from-host || return 1
  want "volume write" "$(cat "$T/vol/out")" from-container || return 1
  want "owner on the host (root of the container is the user)" "$(stat -c %u "$T/vol/out")" "$uid"
}

rootless_error() {
  local out
  out=$(p run --rm "$IMG" /no/such/program 2>&1)
  want "missing program: exit status" "$?" 127 || return 1
  want_in "missing program: message" "$out" "/no/such/program"
}

pass=0 fail=0 summary=()
p load -i "$T/busybox.tar" >/dev/null 2>&1 || { echo "$NAME: podman load failed"; exit 1; }
for scenario in rootless_run rootless_detached_exec_logs_stop rootless_volume rootless_error; do
  : >"$T/calls.log"
  if out=$($scenario 2>&1); then
    pass=$((pass + 1)) result=PASS
  else
    fail=$((fail + 1)) result=FAIL
  fi
  calls=$(awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^--(root|log|log-format)$/) { i++; continue }
    if ($i !~ /^-/) { print $i; break } } }' "$T/calls.log" | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $2, $1; sep=" " }')
  summary+=("$result $scenario [$calls]")
  [ "$result" = FAIL ] && echo "$out" | sed "s/^/  $scenario: /"
done
printf '%s\n' "${summary[@]}"
echo "$NAME: took $(($(date +%s) - started)) s"
echo "$NAME: $pass passed, $fail failed"
[ "$fail" = 0 ]
