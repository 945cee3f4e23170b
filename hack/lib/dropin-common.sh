# Shared by hack/dropin.sh, hack/dropin-docker.sh and hack/dropin-cri.sh (sourced, not run):
# package installation, the run's cgroup directory below the script's own, finding and stopping
# only this run's processes, the cleanup of what engines leave on the host, and the checks the
# scenarios print. A script sets NAME (its log prefix) and, before cleanup, T (its temp dir),
# CGP (its cgroup path), host_dirs (paths engines make whatever their configuration says).

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
