#!/usr/bin/env bash
# Prove a runtime works under Kubernetes' CRI: a private containerd 1.6 with its CRI plugin, the
# runtime under test as a runtime handler, driven over the CRI v1 gRPC API as a kubelet does.
#   hack/dropin-cri.sh [RUNTIME_BINARY]    (default: target/release/brig)
#   DROPIN_LOGS=DIR keeps the log of every runtime call (calls-cri.log) and containerd's log.
#   CRI_VENV=DIR: the Python venv with grpcio-tools (default: target/cri-venv; made when missing,
#   with pip from PyPI).
# `hack/dropin-cri.sh /usr/sbin/runc` runs the same checks against Debian's runc. The CRI client
# (hack/cri/) is Python; its stubs are generated at run time from ../shared/cri-api/api.proto.
# The busybox and pause images are built here from busybox-static; nothing else needs the
# network. Run as root.
#
# containerd calls a wrapper named `runc` (the handler's BinaryName) that logs the subcommand
# and arguments, then execs the runtime under test. The summary lists each scenario,
# PASS/FAIL and the runtime subcommands containerd called during it; the last line is
# `dropin-cri: N passed, N failed` and the exit status is non-zero on any failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/dropin-common.sh
. "$repo/hack/lib/dropin-common.sh"
NAME=dropin-cri
dropin_need_root "containers need it"
dropin_runtime "${1:-}"
proto=${CRI_PROTO:-$repo/../shared/cri-api/api.proto}
if [ ! -f "$proto" ]; then
  echo "dropin-cri: no CRI API at $proto (set CRI_PROTO)" >&2
  exit 1
fi

# --- packages --------------------------------------------------------------------------------
dropin_install containerd busybox-static python3-venv
venv=${CRI_VENV:-$repo/target/cri-venv}
if ! "$venv/bin/python" -c 'import grpc_tools' 2>/dev/null; then
  echo "dropin-cri: pip install grpcio-tools into $venv"
  { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q grpcio-tools; } || {
    echo "dropin-cri: could not make the venv $venv" >&2
    exit 1
  }
fi
PY=$venv/bin/python

dropin_tmpdir brig-dropin-cri
tag=cri$$                        # unique per run: names, cgroup directory
IMG=localhost/brig-busybox:latest
PAUSE=localhost/brig-pause:latest
SOCK=$T/containerd/containerd.sock
HANDLER=dropin                   # the CRI runtime handler of the runtime under test
containerd_pid=

# containerd's shim sockets go to /run/containerd/s whatever the state dir; containerd makes
# /run/containerd itself. Those this run makes go at the end (directories only when empty).
host_dirs=(/run/containerd)
# The shim's exec process files go to /tmp; a shim killed at the wrong moment leaves them.
tmp_files() { compgen -G "/tmp/runc-process*"; }
dropin_begin

cri() { timeout -k 5 "${CRI_TIMEOUT:-120}" "$PY" "$repo/hack/cri/scenarios.py" "$@" </dev/null; }

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ "${1:-}" = interrupted ] && echo "dropin-cri: interrupted, cleaning up" >&2
  if [ -n "$containerd_pid" ]; then
    # Every pod (and its containers) through the CRI, as a kubelet would.
    CRI_TIMEOUT=30 CRI_CALL_TIMEOUT=10 cri cleanup >/dev/null 2>&1
    stop_pid "$containerd_pid"
  fi
  dropin_cleanup_host
}
trap cleanup EXIT
trap 'cleanup interrupted; exit 130' INT TERM

# --- the runtime wrapper ----------------------------------------------------------------------
# A script named runc that logs its subcommand and arguments, then execs the runtime under test
# (same pid, same descriptors).
dropin_wrapper "$T/bin" "$T/calls-cri.log"

# --- the images: busybox, and a pause image on the same layer (docker save layout) -------------
build_images() {
  build_image_archive "$T/images.tar" "$IMG|\"Cmd\":[\"sh\"]" \
    "$PAUSE|\"Entrypoint\":[\"/bin/sh\",\"-c\",\"trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done\"]"
}

# --- containerd with the CRI plugin -----------------------------------------------------------
CTR=(ctr --address "$SOCK" --namespace k8s.io)
start_containerd() {
  local d=$T/containerd
  mkdir -p "$d" "$T/runc-root" "$T/cni/bin" "$T/cni/conf"
  {
    dropin_containerd_toml "$d" "$SOCK" cri
    cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  # no CAP_SYS_RESOURCE here: keep oom_score_adj at or above our own
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "$HANDLER"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$HANDLER]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$HANDLER.options]
        BinaryName = "$T/bin/runc"
        Root = "$T/runc-root"
        SystemdCgroup = false
  # host-network pods only: no CNI plugin, an empty configuration directory of our own
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$T/cni/bin"
    conf_dir = "$T/cni/conf"
EOF
  } >"$d/config.toml"
  dropin_start_containerd "$d" "$SOCK"
}

# --- driver -----------------------------------------------------------------------------------
export CRI_SOCK=$SOCK CRI_GEN=$T/gen CRI_T=$T CRI_CGP=$CGP CRI_TAG=$tag CRI_IMG=$IMG
export CRI_HANDLER=$HANDLER CRI_RUNTIME_ROOT=$T/runc-root CRI_STATE=$T/containerd/state
results=()
passed=0
failed=0
scenario() { # scenario NAME FUNCTION
  local name=$1 fn=$2 rc t0=$SECONDS
  printf '## %s\n' "$name" >>"$T/calls-cri.log"
  cri "$fn" >"$T/scenario.out" 2>&1
  rc=$?
  dropin_record "$rc" "$name" "cri: $name" "$((SECONDS - t0))s"
}

echo "dropin-cri: runtime $runtime ($("$runtime" --version 2>&1 | head -1))"
echo "dropin-cri: $(containerd --version | cut -d' ' -f1,3) (CRI plugin), $("$PY" -c 'import grpc; print("grpcio", grpc.__version__)')"
mkdir -p "$T/gen"
sed -e '/gogoproto/d' "$proto" >"$T/gen/api.proto"
(cd "$T/gen" && "$PY" -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. api.proto) || {
  echo "dropin-cri: could not generate the CRI stubs from $proto" >&2
  exit 1
}
build_images || { echo "dropin-cri: could not build the images" >&2; exit 1; }

if start_containerd && "${CTR[@]}" images import "$T/images.tar" >/dev/null && cri setup >"$T/setup.out" 2>&1; then
  scenario "pod: RunPodSandbox (host network), status, Stop, Remove" pod_lifecycle
  scenario "container exits with a code: ContainerStatus, CRI log file" exit_code_log
  scenario "ExecSync: output, exit code, timeout" exec_sync
  scenario "resources, UpdateContainerResources (host cgroup files)" resources
  scenario "run_as_user, run_as_group, HOME" run_as_user
  scenario "readonly rootfs" readonly_rootfs
  scenario "capabilities add/drop, RuntimeDefault seccomp" capabilities
  scenario "privileged pod and container" privileged
  scenario "host-path mounts: rw, readonly, file" host_mounts
  scenario "StopContainer of a TERM-ignoring process (SIGKILL after the timeout)" stop_timeout
  scenario "ContainerStats, ListContainerStats" stats
  scenario "ReopenContainerLog" reopen_log
  scenario "shared pid and ipc namespaces in a pod" shared_namespaces
  scenario "20 pods in a loop, nothing left behind" pod_loop
else
  failed=$((failed + 1))
  results+=("FAIL setup (containerd, image import, CRI ready)")
  echo "FAIL cri: setup"
  sed 's/^/    /' "$T/setup.out" 2>/dev/null
  tail -20 "$T/containerd/log" | sed 's/^/    /'
fi

# --- summary ----------------------------------------------------------------------------------
echo
echo "dropin-cri: summary for $runtime"
echo "cri: runtime calls per scenario"
dropin_calls_per_scenario "$T/calls-cri.log" 72
# Every distinct command line, ids and paths of this run replaced by names.
echo "cri: runtime command lines (B = the task's bundle, ID = a container or exec id)"
awk -F'\t' '!/^## / { print $2 }' "$T/calls-cri.log" |
  sed -E "s#$T/containerd/state/io.containerd.runtime.v2.task/k8s.io/[0-9a-f]{64}#B#g; s#$T#T#g;
    s#[0-9a-f]{64}#ID#g; s#/tmp/runc-process[0-9]+#/tmp/runc-processN#g" |
  sort | uniq -c | sort -rn | sed 's/^/  /'
# What the runtime answered when it failed, as containerd logged it.
if grep -q 'did not terminate successfully' "$T/containerd/log" 2>/dev/null; then
  echo "cri: runtime failures in containerd's log"
  perl -ne 'next unless /did not terminate successfully/;
    my ($what) = /\bmsg="([a-zA-Z ]+)/;
    my ($why) = /did not terminate successfully((?:\\.|[^"\\])*)/;
    $why =~ s/[0-9a-f]{64}/ID/g; $why =~ s/\\+"/"/g; $why =~ s/\\*"\s*runtime=.*//; $why =~ s/(\\+n|: unknown|\s)+$//;
    print "$what: ...$why\n"' "$T/containerd/log" | sort | uniq -c | sort -rn | head -20 | sed 's/^/  /'
fi
dropin_finish "$T/calls-cri.log" "$T/containerd/log"
