# Shared by the drop-in scripts hack/dropin*.sh (sourced, not run): the checks of root and of
# the runtime argument, package installation, the run's cgroup directory below the script's own,
# finding and stopping only this run's processes, the cleanup of what engines leave on the host,
# the runtime wrapper, a private containerd and podman, the checks the scenarios print, and the
# counting and summary of scenario results. A script sets repo (its tree) and NAME (its log
# prefix) first and, before cleanup, T (its temp dir), CGP (its cgroup path), host_dirs (paths
# engines make whatever their configuration says).

# dropin_install PKG...: apt-get the missing ones.
dropin_install() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "$NAME: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # (Debian's docker.io would start the host's dockerd: policy-rc.d forbids it here.)
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null || {
    echo "$NAME: could not install ${missing[*]}" >&2
    exit 1
  }
}

# dropin_begin: what the cleanup compares with, taken before any engine runs. Containers'
# cgroups go below this script's own cgroup (the deepest of its v1 paths), in a directory of
# this run (CGP); every directory made for them is removed at the end (cg_made).
dropin_begin() {
  local own_cg h d part parts
  own_cg=$(awk -F: '$3 != "" && length($3) > length(best) { best = $3 } END { print best }' /proc/self/cgroup)
  CGP=${own_cg%/}/brig-$tag
  cg_made=()
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    d=${h%/}
    IFS=/ read -ra parts <<<"${CGP#/}"
    for part in "${parts[@]}"; do
      d=$d/$part
      [ -d "$d" ] || cg_made+=("$d")
    done
  done
  host_dirs_new=()
  for d in "${host_dirs[@]}"; do [ -e "$d" ] || host_dirs_new+=("$d"); done
  shim_sockets_before=$(ls /run/containerd/s 2>/dev/null | sort)
  tmp_files_before=$(tmp_files | sort)
}

# pids of processes whose command line names our temp dir (daemons, shims, conmon): only ours.
our_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [ "$pid" = $$ ] && continue
    tr '\0' ' ' 2>/dev/null <"$f" | grep -qF "$T/" && echo "$pid"
  done
}

stop_pid() { # stop_pid PID: TERM, up to 10 s, then KILL
  kill "$1" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# dropin_cleanup_host: after the engines stopped. Shims and conmons of this run outlive their
# daemon when something went wrong, and so do container processes: everything in this run's
# cgroups is ours (thawed first: a frozen task does not die). Then mounts under the temp dir
# (rm -rf only once none is left), the run's cgroups, the shim sockets and /tmp files and host
# directories the run made.
dropin_cleanup_host() {
  local pid m sock f d i
  for pid in $(our_pids); do kill -9 "$pid" 2>/dev/null; done
  if [ -d "/sys/fs/cgroup/freezer$CGP" ]; then
    find "/sys/fs/cgroup/freezer$CGP" -name freezer.state -exec sh -c 'echo THAWED > "$1"' _ {} \; 2>/dev/null
  fi
  for pid in $(find /sys/fs/cgroup/*"$CGP" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
    kill -9 "$pid" 2>/dev/null
  done
  for _ in 1 2 3; do
    awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null; done
  done
  if awk -v t="$T/" 'index($5, t) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "$NAME: mounts left under $T, not removing it" >&2
  else
    rm -rf --one-file-system "$T"
  fi
  # The containers' cgroups, then the directories of this run on their path (conmon may take a
  # moment to leave its cgroup).
  for _ in $(seq 20); do
    for h in /sys/fs/cgroup/*/; do
      [ -d "${h%/}$CGP" ] && find "${h%/}$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    compgen -G "/sys/fs/cgroup/*$CGP" >/dev/null || break
    sleep 0.5
  done
  for ((i = ${#cg_made[@]} - 1; i >= 0; i--)); do rmdir "${cg_made[i]}" 2>/dev/null; done
  # containerd's shim sockets live in /run/containerd/s whatever the state dir.
  for sock in $(ls /run/containerd/s 2>/dev/null); do
    grep -qxF "$sock" <<<"$shim_sockets_before" || rm -f "/run/containerd/s/$sock"
  done
  for f in $(tmp_files); do
    grep -qxF "$f" <<<"$tmp_files_before" || rm -rf --one-file-system "$f"
  done
  for d in "${host_dirs_new[@]}"; do
    [ "$d" = /var/lib/containers ] && rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    [ "$d" = /run/containers ] && rm -f /run/containers/networks/ipam.db
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# In a pty: script(1) gives the engine a terminal of its own; prints what the terminal showed.
in_pty() {
  local cmd
  cmd=$(printf '%q ' "$@")
  timeout -k 5 60 script -qec "$cmd" /dev/null </dev/null | tr -d '\r'
}
want() { # want WHAT GOT EXPECTED
  if [ "$2" != "$3" ]; then
    echo "$1: got '$2', want '$3'"
    return 1
  fi
  echo "ok: $1 = '$3'"
}
want_in() { # want_in WHAT TEXT NEEDLE
  if ! grep -qF -- "$3" <<<"$2"; then
    echo "$1: '$3' not in: $2"
    return 1
  fi
  echo "ok: $1 has '$3'"
}
# wait_for WHAT SECONDS CMD...: until CMD succeeds
wait_for() {
  local what=$1 n=$(($2 * 10))
  shift 2
  for _ in $(seq "$n"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "timed out waiting for $what"
  return 1
}

# build_image_archive OUT "TAG|CONFIG_MEMBERS"...: a docker-archive (docker save layout) at OUT
# with one busybox-static layer (hack/make-rootfs.sh) and one image per TAG, whose config has
# the given extra members (e.g. "Cmd":["sh"]). Built offline and reproducibly.
build_image_archive() {
  local out=$1 img=$T/image arch layer config entry manifest=
  shift
  mkdir -p "$img/archive"
  BRIG= bash "$repo/hack/make-rootfs.sh" "$img" >/dev/null || return 1
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$img/rootfs" \
    -cf "$img/layer.tar" . || return 1
  layer=$(sha256sum "$img/layer.tar" | cut -d' ' -f1)
  arch=$(dpkg --print-architecture)
  mkdir -p "$img/archive/$layer"
  mv "$img/layer.tar" "$img/archive/$layer/layer.tar"
  for entry in "$@"; do
    printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"hack/%s.sh: busybox-static"}]}' \
      "$arch" "${entry#*|}" "$layer" "$NAME" >"$img/config.json"
    config=$(sha256sum "$img/config.json" | cut -d' ' -f1)
    mv "$img/config.json" "$img/archive/$config.json"
    manifest+="${manifest:+,}{\"Config\":\"$config.json\",\"RepoTags\":[\"${entry%%|*}\"],\"Layers\":[\"$layer/layer.tar\"]}"
  done
  echo "[$manifest]" >"$img/archive/manifest.json"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$img/archive" \
    -cf "$out" . || return 1
  rm -rf "$img"
}

# --- what every drop-in script does the same way (hack/dropin*.sh) -----------------------------

# dropin_need_root WHY: exit unless root.
dropin_need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$NAME: run as root ($1)" >&2
    exit 1
  fi
}

# dropin_runtime [BINARY]: sets runtime to BINARY's real path (default: this tree's
# target/release/brig); exits when it is not an executable.
dropin_runtime() {
  runtime=$(readlink -f "${1:-$repo/target/release/brig}")
  if [ ! -x "$runtime" ]; then
    echo "$NAME: runtime $runtime is not an executable (build it: hack/build.sh)" >&2
    exit 1
  fi
}

# dropin_tmpdir PREFIX: sets started (the run's start, in seconds) and T, this run's temp dir
# /tmp/PREFIX.XXXXXX (0755: the engines' users and the containers' root go through it).
dropin_tmpdir() {
  started=$(date +%s)
  T=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$T"
}

# dropin_vfs_storage DIR GRAPHROOT RUNROOT: DIR/storage.conf (containers-storage with the vfs
# driver, which works on any file system and as a user) and an empty DIR/registries.conf.
dropin_vfs_storage() {
  cat >"$1/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$2"
runroot = "$3"
EOF
  : >"$1/registries.conf"
}

# dropin_wrapper DIR LOG [--log-failures]: DIR/runc, a script named runc (podman picks its
# behaviour from the runtime's basename) that appends its subcommand and arguments to LOG
# (tab-separated), then execs the runtime under test (same pid, same descriptors). With
# --log-failures it runs the runtime instead and, when it fails, appends `!SUBCOMMAND`, the
# exit status and the error lines the runtime wrote to its --log file during this call.
dropin_wrapper() {
  local dir=$1 log=$2
  mkdir -p "$dir"
  # The subcommand is the first argument that is neither a global flag nor a global flag's
  # value (the engines put every global flag, --log among them, before it).
  cat >"$dir/runc" <<EOF
#!/bin/sh
sub=
skip=
log=
for a in "\$@"; do
  if [ -n "\$skip" ]; then
    [ "\$skip" = log ] && log=\$a
    skip=
    continue
  fi
  case \$a in
    --log) skip=log ;;
    --log=*) log=\${a#--log=} ;;
    --root|--log-format|--criu) skip=1 ;;
    --version|-v) sub=version; break ;;
    -*) ;;
    *) sub=\$a; break ;;
  esac
done
printf '%s\t%s\n' "\${sub:-?}" "\$*" >>"$log"
EOF
  if [ "${3:-}" = --log-failures ]; then
    cat >>"$dir/runc" <<EOF
size=0
[ -n "\$log" ] && [ -f "\$log" ] && size=\$(stat -c %s "\$log")
"$runtime" "\$@"
rc=\$?
if [ \$rc != 0 ]; then
  msg=
  [ -n "\$log" ] && [ -f "\$log" ] && msg=\$(tail -c +\$((size + 1)) "\$log" | grep -E '"level":"(error|fatal)"|level=(error|fatal)' | tr '\n' ' ')
  printf '!%s\texit %s: %s\t%s\n' "\${sub:-?}" "\$rc" "\$msg" "\$*" >>"$log"
fi
exit \$rc
EOF
  else
    cat >>"$dir/runc" <<EOF
exec "$runtime" "\$@"
EOF
  fi
  chmod 755 "$dir/runc"
  : >"$log"
}

# dropin_containerd_toml DIR SOCK [cri]: the head of a private containerd's config.toml (root,
# state, sockets and opt under DIR, API socket SOCK, no metrics), on stdout; the CRI plugin
# stays disabled unless `cri` is given. A script appends its plugins' sections.
dropin_containerd_toml() {
  local d=$1 sock=$2 cri='"io.containerd.grpc.v1.cri",'
  [ "${3:-}" = cri ] && cri=
  cat <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = [$cri
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
}

# dropin_start_containerd DIR SOCK [TRIES]: containerd with DIR/config.toml, its log in DIR/log;
# sets containerd_pid and waits (TRIES x 0.2 s, default 100) until it answers on SOCK.
dropin_start_containerd() {
  local d=$1 sock=$2 tries=${3:-100}
  containerd --config "$d/config.toml" --log-level warn >"$d/log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq "$tries"); do
    ctr --address "$sock" version >/dev/null 2>&1 && return 0
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "$NAME: containerd did not start:" >&2
  cat "$d/log" >&2
  return 1
}

# dropin_ctr_remove_tasks CTR...: SIGKILL and delete every task (cleanup; CTR is the ctr
# command line with its --address and --namespace).
dropin_ctr_remove_tasks() {
  local id
  for id in $(timeout -k 5 10 "$@" tasks ls -q 2>/dev/null); do
    timeout -k 5 10 "$@" tasks kill -s KILL "$id" >/dev/null 2>&1
    timeout -k 5 10 "$@" tasks delete -f "$id" >/dev/null 2>&1
  done
}

# dropin_setup_podman CGROUP_MANAGER: a private podman configuration under $T/podman (vfs
# storage, no network, events and logs to files, no registries) with $T/podman-bin/runc as its
# runtime; sets PODMAN (the podman command line) and, globally, nofile and nproc (the ulimits
# it gives containers).
dropin_setup_podman() {
  local d=$T/podman
  mkdir -p "$d/tmp" "$d/imgtmp" "$d/net"
  # podman asks for nofile/nproc 1048576 unless told, more than a runtime without
  # CAP_SYS_RESOURCE may set. Stay below our hard limits, and below podman's own nproc (it
  # lowers its hard limit: 32768 here).
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  { [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; } && nofile=65536
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; } && nproc=4096
  cat >"$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
log_driver = "k8s-file"
[network]
network_config_dir = "$d/net"
[engine]
cgroup_manager = "$1"
events_logger = "file"
tmp_dir = "$d/tmp"
image_copy_tmp_dir = "$d/imgtmp"
conmon_path = ["/usr/bin/conmon"]
runtime = "runc"
[engine.runtimes]
runc = ["$T/podman-bin/runc"]
EOF
  dropin_vfs_storage "$d" "$d/root" "$d/runroot"
  export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$d/registries.conf TMPDIR=$d/imgtmp
  PODMAN=(podman --root "$d/root" --runroot "$d/runroot" --storage-driver vfs
    --cgroup-manager "$1" --events-backend file --tmpdir "$d/tmp"
    --runtime "$T/podman-bin/runc" --network-config-dir "$d/net")
}

# Scenario results: a script sets results=() passed=0 failed=0 and counts each scenario with
# dropin_record, an engine it could not set up with dropin_setup_failed, and ends with
# dropin_finish.

# dropin_record RC RESULT TITLE [DETAIL]: count one scenario that ended with status RC;
# "PASS|FAIL RESULT" goes to the summary; printed now: "PASS TITLE (DETAIL)", or
# "FAIL TITLE (status RC, DETAIL)" and the scenario's output ($T/scenario.out) indented.
dropin_record() {
  local rc=$1 result=$2 title=$3 detail=${4:-}
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    results+=("PASS $result")
    echo "PASS $title${detail:+ ($detail)}"
  else
    failed=$((failed + 1))
    results+=("FAIL $result")
    echo "FAIL $title (status $rc${detail:+, $detail})"
    sed 's/^/    /' "$T/scenario.out"
  fi
}

# dropin_setup_failed ENGINE WHAT: an engine that could not be set up counts as one failure
# (its scenarios did not run).
dropin_setup_failed() {
  failed=$((failed + 1))
  results+=("FAIL $1 setup ($2)")
  echo "FAIL $1: setup ($2)"
}

# dropin_calls_per_scenario LOG WIDTH: for each `## scenario` of a wrapper's LOG, the runtime
# subcommands called during it (`createx2 start ...`), then every subcommand with its count.
# Failure lines (`!...`, dropin_wrapper --log-failures) are not calls of their own.
dropin_calls_per_scenario() {
  awk -F'\t' -v fmt="  %-$2s %s\n" '
    function flush() { if (name != "") { printf fmt, name, line } }
    /^## / { flush(); name = substr($0, 4); line = ""; delete n; delete order; k = 0; next }
    /^!/ { next }
    { if (!($1 in n)) order[++k] = $1; n[$1]++
      line = ""; for (i = 1; i <= k; i++) line = line order[i] (n[order[i]] > 1 ? "x" n[order[i]] : "") " " }
    END { flush() }' "$1"
  printf '  all subcommands: %s\n' "$(dropin_subcommand_counts "$1")"
}

# dropin_subcommand_counts LOG: `create(3) start(3) ...`, the runtime subcommands in a wrapper's
# LOG with their counts.
dropin_subcommand_counts() {
  awk -F'\t' '!/^(## |!)/ { print $1 }' "$1" | sort | uniq -c | awk '{ printf "%s(%s) ", $2, $1 }'
}

# dropin_finish LOG...: the summary's result lines, LOGs copied to $DROPIN_LOGS when set, the
# time taken (since $started) and the last line `NAME: N passed, N failed`; fails when any
# scenario failed (a script's last command).
dropin_finish() {
  local r
  for r in "${results[@]}"; do echo "  $r"; done
  if [ -n "${DROPIN_LOGS:-}" ]; then
    mkdir -p "$DROPIN_LOGS" && cp "$@" "$DROPIN_LOGS"/ && echo "$NAME: runtime calls in $DROPIN_LOGS"
  fi
  echo "$NAME: took $(($(date +%s) - started))s"
  echo "$NAME: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# The unprivileged user a rootless script makes ($user, set by the script; $uid and $gid set
# here), with subordinate ranges (useradd gives them when /etc/subuid exists; otherwise some).
dropin_user_pids() {
  [ -n "${uid:-}" ] || return 0
  awk -v u="$uid" '$1 == "Uid:" && $2 == u { split(FILENAME, p, "/"); print p[3] }' \
    /proc/[0-9]*/status 2>/dev/null
}

dropin_make_user() {
  local f
  useradd --no-create-home --shell /bin/sh "$user" || return 1
  uid=$(id -u "$user")
  gid=$(id -g "$user")
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$user:" "$f" 2>/dev/null || echo "$user:$((1000000 + (uid % 1000) * 65536)):65536" >>"$f"
  done
}

# dropin_remove_user: every process of $user killed (all ours: its manager, pause process,
# conmon, containers), then the user and its ranges removed.
dropin_remove_user() {
  local pid f
  for _ in 1 2 3; do
    for pid in $(dropin_user_pids); do kill -9 "$pid" 2>/dev/null; done
    [ -z "$(dropin_user_pids)" ] && break
    sleep 0.5
  done
  if id "$user" >/dev/null 2>&1; then
    userdel "$user" >/dev/null 2>&1
  fi
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$user:" "$f" 2>/dev/null && sed -i "/^$user:/d" "$f"
  done
}
