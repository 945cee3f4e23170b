#!/usr/bin/env bash
# Benchmark (not a test) of brig against runc and crun on the same bundle (issue 18). Run as
# root. Prints one table: min / median / max per runtime and operation, and brig's ratio of
# medians to each other runtime.
#
#   hack/bench.sh                  the table (BENCH_RUNS rounds, default 20)
#   hack/bench.sh --quick          3 rounds, small batches: checks the script still works (CI)
#   hack/bench.sh --budget         per `run` of each runtime: processes, syscalls, mounts,
#                                  writes, page faults, CPU time; then where brig's time goes
#   hack/bench.sh --vm [--quick]   the table inside the cgroup v2 VM (hack/vm-test.sh), where
#                                  crun needs no wrapper; ratios only
#
# Operations, every runtime once per round, the order rotated each round so none always goes
# first (the machine is shared: look at ratios, never at absolute times):
#   run            `run` of /bin/true
#   c+s+d          `create`, `start`, `delete --force` as three commands (containerd's way)
#   state, kill    `state` and `kill ID CONT` of a running container (CONT changes nothing)
#   exec           `exec` of /bin/true into that running container
#   100 serial     BENCH_SERIAL (100) runs back to back, timed as a whole
#   20 parallel    BENCH_PARALLEL (20) runs started at once, until the last one exits
# and, brig alone, `run --image` of an image in the store against `run` of a ready bundle.
# The two batches get BENCH_BATCH_ROUNDS rounds (default 5). Then peak RSS of the runtime's
# own process (GNU time's %M: ru_maxrss, which covers the re-exec) during `create` and `exec`, and
# the binary's size.
#
# The state roots are on a tmpfs of the bench's own, as /run is where engines deploy
# (BENCH_STATE=disk: on /tmp's file system instead; BENCH_DISK=1 adds brig with a state root
# on /tmp's file system as the column `brig-disk`, to show what that costs).
#
# Environment: BENCH_RUNS, BENCH_SERIAL, BENCH_PARALLEL, BENCH_BATCH_ROUNDS; BRIG (default
# target/release/brig, built by hack/build.sh unless BENCH_NO_BUILD=1); BEFORE=PATH adds
# another brig as a column (e.g. the base commit's binary, to measure a change);
# BENCH_EXTRA="NAME=PATH ..." more of them.
#
# All runtimes get the same config with a relative cgroupsPath, so their cgroups land under
# this script's own cgroup (never at a hierarchy root). crun 1.8 refuses hybrid cgroup hosts,
# so on one everything runs in a private mount namespace without /sys/fs/cgroup/unified; crun 1.8 also refuses ociVersion 1.2, so the config says 1.0.2.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=table quick=
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --budget) mode=budget ;;
    --vm) mode=vm ;;
    *) echo "usage: hack/bench.sh [--quick] [--budget | --vm]" >&2; exit 2 ;;
  esac
done
if [ -n "$quick" ]; then
  export BENCH_RUNS=${BENCH_RUNS:-3} BENCH_SERIAL=${BENCH_SERIAL:-5}
  export BENCH_PARALLEL=${BENCH_PARALLEL:-4} BENCH_BATCH_ROUNDS=${BENCH_BATCH_ROUNDS:-1}
fi

hack/install-deps.sh runc crun jq strace linux-perf time
[ -n "${BENCH_NO_BUILD:-}" ] || hack/build.sh
brig=${BRIG:-$PWD/target/release/brig}

if [ "$mode" = vm ]; then
  # The guest has the host's userland and this tree read-only: nothing to build there.
  exec hack/vm-test.sh -- env BENCH_NO_BUILD=1 BRIG="$brig" ${BEFORE:+BEFORE="$BEFORE"} \
    ${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS} ${BENCH_SERIAL:+BENCH_SERIAL=$BENCH_SERIAL} \
    ${BENCH_PARALLEL:+BENCH_PARALLEL=$BENCH_PARALLEL} \
    ${BENCH_BATCH_ROUNDS:+BENCH_BATCH_ROUNDS=$BENCH_BATCH_ROUNDS} BENCH_RATIOS_ONLY=1 \
    bash hack/bench.sh
fi

work=$(mktemp -d /tmp/brig-bench.XXXXXX)
names=(brig runc)
bins=("$brig" "$(command -v runc)")
if [ -n "${BEFORE:-}" ]; then names+=(before); bins+=("$BEFORE"); fi
# BENCH_EXTRA="NAME=PATH ...": more brig builds as columns (variants of a change).
for extra in ${BENCH_EXTRA:-}; do names+=("${extra%%=*}"); bins+=("${extra#*=}"); done
# BENCH_DISK=1: brig once more as `brig-disk`, its state root on /tmp's file system rather
# than tmpfs, to show what the state files cost there.
if [ -n "${BENCH_DISK:-}" ]; then names+=(brig-disk); bins+=("$brig"); fi
if command -v crun >/dev/null; then names+=(crun); bins+=("$(command -v crun)"); fi
cleanup_containers() {
  for i in "${!names[@]}"; do
    state=$work/state/${names[$i]}
    [ "${names[$i]}" != brig-disk ] || state=$work/disk/brig-disk
    [ -d "$state" ] || continue
    for id in $(ls "$state" 2>/dev/null); do
      "${bins[$i]}" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
}
cleanup() {
  cleanup_containers
  rm -rf "$work"
}
trap cleanup EXIT

hack/make-rootfs.sh "$work/rootfs-bundle" >/dev/null
mkdir -p "$work/b"
"$brig" spec --bundle "$work/b"
jq --arg root "$work/rootfs-bundle/rootfs" --arg cg "brig-bench-$$" \
  '.root.path = $root | .process.terminal = false | .process.args = ["/bin/true"]
   | .ociVersion = "1.0.2" | .linux.cgroupsPath = $cg' \
  "$work/b/config.json" > "$work/b/c" && mv "$work/b/c" "$work/b/config.json"
# The long-running container of each runtime (state, kill, exec), in a cgroup of its own.
for n in "${names[@]}"; do
  mkdir -p "$work/svc-$n"
  jq --arg cg "brig-bench-$$-svc-$n" '.process.args = ["/bin/sleep", "100000"] | .linux.cgroupsPath = $cg' \
    "$work/b/config.json" > "$work/svc-$n/config.json"
done

cat > "$work/driver.py" <<'PY'
import os, re, statistics, subprocess, sys, time
from collections import Counter

work, mode = os.environ["work"], os.environ["mode"]
names = os.environ["BENCH_NAMES"].split()
bins = dict(zip(names, os.environ["BENCH_BINS"].split()))
env = lambda k, d: int(os.environ.get(k) or d)
RUNS, SERIAL, PARALLEL = env("BENCH_RUNS", 20), env("BENCH_SERIAL", 100), env("BENCH_PARALLEL", 20)
BATCH = env("BENCH_BATCH_ROUNDS", 5)
RATIOS_ONLY = bool(os.environ.get("BENCH_RATIOS_ONLY"))
bundle = f"{work}/b"
null = os.open("/dev/null", os.O_RDWR)
err_file = f"{work}/stderr"
seq = 0

def cmd(n, *args):
    root = f"{work}/disk/{n}" if n == "brig-disk" else f"{work}/state/{n}"
    return [bins[n], "--root", root, *args]

def spawn(argv):
    err = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
            (os.POSIX_SPAWN_DUP2, err, 2)])
    finally:
        os.close(err)

cpu_used = 0.0  # ms of CPU of every command reaped so far (with the children each reaped)

def reap(pid, argv):
    global cpu_used
    _, status, usage = os.wait4(pid, 0)
    cpu_used += (usage.ru_utime + usage.ru_stime) * 1000
    if status != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({status:#x}): {open(err_file).read().strip()}")
    return usage

def call(argv):
    return reap(spawn(argv), argv)

def uid(n):
    global seq
    seq += 1
    return f"{n}-{os.getpid()}-{seq}"

def op_run(n):
    call(cmd(n, "run", "-b", bundle, uid(n)))

def op_csd(n):
    i = uid(n)
    call(cmd(n, "create", "-b", bundle, i))
    call(cmd(n, "start", i))
    call(cmd(n, "delete", "--force", i))

def op_serial(n):
    for _ in range(SERIAL):
        op_run(n)

def parallel_bundles():
    """A bundle per parallel run: containers alive at once need cgroups of their own."""
    import json
    config = json.load(open(f"{bundle}/config.json"))
    for i in range(PARALLEL):
        os.makedirs(f"{work}/p{i}", exist_ok=True)
        config["linux"]["cgroupsPath"] = f"brig-bench-{os.getpid()}-p{i}"
        json.dump(config, open(f"{work}/p{i}/config.json", "w"))

def op_parallel(n):
    argvs = [cmd(n, "run", "-b", f"{work}/p{i}", uid(n)) for i in range(PARALLEL)]
    pids = [(spawn(a), a) for a in argvs]
    for pid, a in pids:
        reap(pid, a)

OPS = [
    ("run", RUNS, op_run),
    ("c+s+d", RUNS, op_csd),
    ("state", RUNS, lambda n: call(cmd(n, "state", "svc"))),
    ("kill", RUNS, lambda n: call(cmd(n, "kill", "svc", "CONT"))),
    ("exec", RUNS, lambda n: call(cmd(n, "exec", "svc", "/bin/true"))),
    (f"{SERIAL} serial", BATCH, op_serial),
    (f"{PARALLEL} parallel", BATCH, op_parallel),
]

def stats(xs):
    xs = sorted(xs)
    return xs[0], statistics.median(xs), xs[-1]

def table():
    parallel_bundles()
    for n in names:
        call(cmd(n, "run", "-d", "-b", f"{work}/svc-{n}", "svc"))
    for n in names:  # warm the page cache and the kernel's caches
        op_run(n)
    times, cpu = {}, {}
    for op, rounds, fn in OPS:
        for r in range(rounds):
            for k in range(len(names)):
                n = names[(k + r) % len(names)]
                t, c = time.perf_counter_ns(), cpu_used
                fn(n)
                times.setdefault((op, n), []).append((time.perf_counter_ns() - t) / 1e6)
                cpu.setdefault((op, n), []).append(cpu_used - c)
    # Peak RSS through GNU time: a process that python spawns starts with python's pages
    # counted (vfork), time's fork starts near 1 MB (`/usr/bin/time -f %M /bin/true`).
    rss = {}
    def maxrss(argv):
        call(["/usr/bin/time", "-f", "%M", "-o", f"{work}/rss"] + argv)
        return int(open(f"{work}/rss").read().split()[-1])
    for r in range(max(3, min(RUNS, 5))):
        for n in names:
            i = uid(n)
            rss.setdefault(("create", n), []).append(maxrss(cmd(n, "create", "-b", bundle, i)))
            call(cmd(n, "delete", "--force", i))
            rss.setdefault(("exec", n), []).append(maxrss(cmd(n, "exec", "svc", "/bin/true")))
    for n in names:
        call(cmd(n, "delete", "--force", "svc"))

    others = [n for n in names if n != "brig"]
    print(f"{RUNS} rounds ({BATCH} for the batches), runtimes alternated; min / median / max. "
          "brig/X: brig's time over X's in the same round. CPU: user+sys of the commands and the "
          "children they reaped (wait4), steadier than wall time on a busy machine.")
    if not RATIOS_ONLY:
        for title, data in (("wall ms", times), ("CPU ms", cpu)):
            print(f"\n{title:>19} " + "".join(f"{n:>26}" for n in names))
            for op, _, _ in OPS:
                print(f"{op:>19} " + "".join(
                    "{:>26}".format("%.1f / %.1f / %.1f" % stats(data[(op, n)])) for n in names))
    for title, data in (("wall time", times), ("CPU time", cpu)):
        print(f"\n{title + ' ratio':>19} " + "".join(f"{'brig/' + n:>24}" for n in others))
        for op, _, _ in OPS:
            row = []
            for n in others:
                pairs = [b / o for b, o in zip(data[(op, "brig")], data[(op, n)]) if o > 0]
                row.append("{:>24}".format("%.2f / %.2f / %.2f" % stats(pairs) if pairs else "-"))
            print(f"{op:>19} " + "".join(row))
    print(f"\n{'peak RSS':>19} " + "".join(f"{n:>12}" for n in names) + "   (median, MB)")
    for what in ("create", "exec"):
        print(f"{what:>19} " + "".join(
            "%12.1f" % (statistics.median(rss[(what, n)]) / 1024) for n in names))
    print(f"{'binary':>19} " + "".join("%12.1f" % (os.path.getsize(bins[n]) / 1e6) for n in names)
          + "   (MB)")
    image_rows()

def image_rows():
    """The image stage: `brig run --image` of an image already in the store (it unpacks a
    bundle, runs, removes the bundle) against `brig run` of a ready bundle, alternated."""
    layout = os.environ.get("BENCH_IMAGE_LAYOUT")
    if not layout:
        return
    store = f"{work}/store"
    call([bins["brig"], "pull", "--quiet", "--store", store, f"oci:{layout}:latest"])
    times = {"run (bundle)": [], "run --image": []}
    for r in range(RUNS):
        for k in range(2):
            what = list(times)[(k + r) % 2]
            t = time.perf_counter_ns()
            if what == "run --image":
                call(cmd("brig", "run", "--image", f"oci:{layout}:latest", "--store", store,
                         "--rm", uid("brig"), "--", "true"))
            else:
                op_run("brig")
            times[what].append((time.perf_counter_ns() - t) / 1e6)
    pairs = [i / b for i, b in zip(times["run --image"], times["run (bundle)"])]
    print(f"\n{'image stage':>19}   wall ms, min / median / max (busybox image, 1 MB layer)")
    for what, xs in times.items():
        print(f"{what:>19}   %.1f / %.1f / %.1f" % stats(xs))
    print(f"{'image/bundle':>19}   %.2f / %.2f / %.2f   (ratio in the same round)" % stats(pairs))

MOUNTS = {"mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "move_mount",
          "open_tree", "mount_setattr"}
WRITES = {"write", "pwrite64", "writev", "sendmsg", "sendto"}
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)")

def budget():
    print("one `run` of /bin/true per runtime. strace -f: tasks (processes and threads), syscalls, "
          "mount-API calls, writes (write/sendmsg), opens for writing. perf stat (medians of 5, "
          "alternated): page faults and CPU time of every task, context switches.")
    rows, top, perf = {}, {}, {}
    for n in names:
        out = f"{work}/strace-{n}"
        call(["/usr/bin/strace", "-f", "-qq", "-ttt", "-o", out] + cmd(n, "run", "-b", bundle, uid(n)))
        calls, tasks, opens_w = Counter(), set(), 0
        for line in open(out):
            m = LINE.match(line)
            if not m or m.group(3) == "resumed":
                continue
            tasks.add(m.group(1))
            calls[m.group(3)] += 1
            if m.group(3) in ("openat", "open", "openat2") and re.search(r"O_WRONLY|O_RDWR|O_CREAT", m.group(4)):
                opens_w += 1
        rows[n] = (len(tasks), sum(calls.values()), sum(calls[c] for c in MOUNTS),
                   sum(calls[c] for c in WRITES), opens_w, calls["execve"] + calls["execveat"])
        top[n] = calls.most_common(6)
    # The floor: the same namespaces made by unshare(1), then exec of /bin/true.
    floor = ["/usr/bin/unshare", "--mount", "--uts", "--ipc", "--pid", "--net", "--fork", "/bin/true"]
    runners = names + ["floor"]
    for r in range(5):
        for k in range(len(runners)):
            n = runners[(k + r) % len(runners)]
            argv = floor if n == "floor" else cmd(n, "run", "-b", bundle, uid(n))
            res = subprocess.run(["/usr/bin/perf", "stat", "-x,", "-e", "page-faults,task-clock,context-switches"]
                                 + argv, stdin=null, stdout=null,
                                 stderr=subprocess.PIPE, text=True, check=True)
            vals = {}
            for line in res.stderr.splitlines():
                f = line.split(",")
                if len(f) > 3 and f[0].replace(".", "").isdigit():
                    vals[f[2]] = float(f[0])
            perf.setdefault(n, []).append(vals)
    head = ["tasks", "syscalls", "mount API", "writes", "open for write", "execs",
            "page faults", "CPU ms", "ctx switches"]
    print(f"\n{'':>16}" + "".join(f"{n:>10}" for n in runners) + "   (floor: unshare of the same"
          " namespaces + /bin/true)")
    for i, h in enumerate(head[:6]):
        print(f"{h:>16}" + "".join(f"{rows[n][i]:>10}" for n in names))
    for h, key, fmt in (("page faults", "page-faults", "%10.0f"), ("CPU ms", "task-clock", "%10.2f"),
                        ("ctx switches", "context-switches", "%10.0f")):
        print(f"{h:>16}" + "".join(fmt % statistics.median(v.get(key, 0) for v in perf[n])
                                   for n in runners))
    for n in names:
        print(f"{n} most frequent: " + ", ".join(f"{c} {k}" for c, k in ((k, c) for c, k in top[n])))
    timeline("brig")

def phases(out):
    """Phase boundaries of one `run` in an strace -f -ttt log: the time each step began."""
    marks, parent = {}, None
    for line in open(out):
        m = LINE.match(line)
        if not m:
            continue
        pid, t, call, args = m.group(1), float(m.group(2)) * 1000, m.group(3), m.group(4)
        parent = parent or pid
        first = lambda key: marks.setdefault(key, t)
        first("start")
        if pid == parent:
            if call == "execveat":
                first("re-exec")
            elif call in ("clone3", "clone"):
                first("clone init")
            elif call == "sendto" and "clone init" in marks:
                first("parent: maps, cgroup, state written")
            elif call == "exit_group":
                marks["exit"] = t
        elif call == "pivot_root":
            first("init: namespaces, mounts, pivot_root")
        elif call == "sendto" and "init: namespaces, mounts, pivot_root" in marks:
            first("init: ready")
        elif call == "execve":
            first("execve /bin/true")
        elif call == "exit_group":
            first("/bin/true exited")
    return marks

def timeline(n):
    """Where the wall time of brig's `run` goes: strace with a seccomp filter, so only the few
    marking syscalls stop the tracee; medians of 5 runs."""
    order = ["start", "re-exec", "clone init", "parent: maps, cgroup, state written",
             "init: namespaces, mounts, pivot_root", "init: ready", "execve /bin/true",
             "/bin/true exited", "exit"]
    steps = {}
    for i in range(5):
        out = f"{work}/marks-{n}-{i}"
        call(["/usr/bin/strace", "-f", "-qq", "-ttt", "--seccomp-bpf", "-o", out,
              "-e", "trace=execve,execveat,clone,clone3,sendto,pivot_root,exit_group"]
             + cmd(n, "run", "-b", bundle, uid(n)))
        marks = phases(out)
        for a, b in zip(order, order[1:]):
            if a in marks and b in marks:
                steps.setdefault(f"{a} -> {b}", []).append(marks[b] - marks[a])
    print("\nbrig `run` phases (ms, median of 5; strace stops only at the marking syscalls):")
    for a, b in zip(order, order[1:]):
        if f"{a} -> {b}" in steps:
            print(f"  {statistics.median(steps[f'{a} -> {b}']):8.2f}  {a} -> {b}")

table() if mode == "table" else budget()
PY
# The image stage's row: a busybox OCI layout, when this brig has `run --image`.
if "$brig" run --help 2>/dev/null | grep -q -- --image; then
  hack/make-image.sh "$work/layout" >/dev/null
  export BENCH_IMAGE_LAYOUT=$work/layout
fi
export work mode BENCH_NAMES="${names[*]}" BENCH_BINS="${bins[*]}"
export cleanup_inner="$(declare -p names bins work); $(declare -f cleanup_containers); cleanup_containers"
export BENCH_STATE=${BENCH_STATE:-tmpfs}
# Deployed engines keep the runtime's state on tmpfs (containerd /run/containerd/runc, Docker
# /run/docker/runtime-runc, podman /run/runc): so does the bench, on a tmpfs of its own in its
# private mount namespace (BENCH_STATE=disk keeps it in $work, on whatever /tmp is).
unshare --mount --propagation private bash -c '
  set -euo pipefail
  # Take the v2 half of a hybrid host away from crun 1.8 (see the header).
  if mountpoint -q /sys/fs/cgroup/unified; then umount -l /sys/fs/cgroup/unified; fi
  if [ "$BENCH_STATE" = tmpfs ]; then
    mkdir -p "$work/state" && mount -t tmpfs -o mode=0700 bench-state "$work/state"
  fi
  # The state is private to this namespace: containers are deleted here, on the way out.
  trap "$cleanup_inner" EXIT
  python3 "$work/driver.py"
'
