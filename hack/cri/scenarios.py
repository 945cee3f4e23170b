"""The CRI scenarios of hack/dropin-cri.sh: `python scenarios.py NAME` runs one, prints `ok:`
lines, and exits non-zero with the reason on the first check that fails. Each scenario removes
the pods it made, whatever happens. Environment: see hack/dropin-cri.sh (CRI_*)."""

import glob
import json
import os
import sys
import time

import grpc

from client import (CONTAINER, EXITED, NODE, POD, RUNNING, Cri, Failed, api, cri_log, env, want,
                    want_in, wait_for)

cri = Cri()
SH = ["sh", "-c"]


def new_pod(name, **kw):
    """cri.pod, and nothing of it left on the host after it is removed."""
    return cri.pod(name, after=want_nothing_left, **kw)


# --- host views -------------------------------------------------------------------------------
def cgroup_of(pid, controller):
    """The cgroup path of pid in a v1 hierarchy."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    raise Failed("pid %d: no %s cgroup" % (pid, controller))


def cg_read(pid, controller, name):
    path = "/sys/fs/cgroup/%s%s/%s" % (controller, cgroup_of(pid, controller), name)
    with open(path) as f:
        return f.read().strip()


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise Failed("no %s in /proc/%d/status" % (field, pid))


def leftovers(ids):
    """Everything of these pods/containers still on the host: cgroups, mounts, state
    directories, processes."""
    found = []
    cgp = env("CRI_CGP")
    for d in glob.glob("/sys/fs/cgroup/*%s/k8s/*" % cgp):
        if any(i in d for i in ids):
            found.append("cgroup " + d)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4]
            if any(i in mnt for i in ids):
                found.append("mount " + mnt)
    state, root = env("CRI_STATE"), env("CRI_RUNTIME_ROOT")
    for i in ids:
        for d in (
            "%s/k8s.io/%s" % (root, i),
            "%s/io.containerd.runtime.v2.task/k8s.io/%s" % (state, i),
            "%s/io.containerd.grpc.v1.cri/sandboxes/%s" % (state, i),
            "%s/io.containerd.grpc.v1.cri/containers/%s" % (state, i),
        ):
            if os.path.exists(d):
                found.append("state " + d)
    for f in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(f, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(i in cmd for i in ids):
            found.append("process %s: %s" % (f.split("/")[2], cmd))
    return found


def want_nothing_left(ids):
    # The shim leaves a moment after RemovePodSandbox returns.
    deadline = time.time() + 10
    while True:
        found = leftovers(ids)
        if not found or time.time() > deadline:
            break
        time.sleep(0.2)
    if found:
        raise Failed("left behind:\n  " + "\n  ".join(found))
    print("ok: nothing left of %d pods/containers (cgroups, mounts, state, processes)" % len(ids))


def sleeper(pod, name="sleeper", **kw):
    cid = cri.create(pod, name, SH + ["sleep 1000"], **kw)
    cri.wait_state(cid, RUNNING)
    return cid


# --- setup ------------------------------------------------------------------------------------
def setup():
    """The CRI plugin is up, the runtime is ready, both images are known to it."""
    v = cri.call("Version", api.VersionRequest())
    print("ok: %s %s, CRI %s" % (v.runtime_name, v.runtime_version, v.runtime_api_version))
    for image in (cri.image, "localhost/brig-pause:latest"):
        wait_for("image %s in the CRI image store" % image, 20, lambda: cri.img.ImageStatus(
            api.ImageStatusRequest(image=api.ImageSpec(image=image)), timeout=10).image.id)
    st = cri.call("Status", api.StatusRequest())
    ready = {c.type: c.status for c in st.status.conditions}
    want("RuntimeReady", ready.get("RuntimeReady"), True)


def cleanup():
    for p in cri.pods():
        try:
            cri.stop_pod(p.id)
            cri.remove_pod(p.id)
        except grpc.RpcError as e:
            print("pod %s: %s" % (p.id, e.details()))


# --- scenarios --------------------------------------------------------------------------------
def pod_lifecycle():
    pod_id, config = cri.run_pod("lifecycle")
    st = cri.pod_status(pod_id, verbose=True)
    want("state after RunPodSandbox", api.PodSandboxState.Name(st.status.state), "SANDBOX_READY")
    want("network namespace mode", st.status.linux.namespaces.options.network, NODE)
    pid = json.loads(st.info["info"])["pid"]
    want("sandbox in the host netns", os.readlink("/proc/%d/ns/net" % pid),
         os.readlink("/proc/self/ns/net"))
    want("sandbox cgroup (pids)", cgroup_of(pid, "pids"), "%s/%s" % (cri.cgroup_parent, pod_id))
    want("pod listed", [p.id for p in cri.pods() if p.id == pod_id], [pod_id])
    cri.stop_pod(pod_id)
    want("state after StopPodSandbox",
         api.PodSandboxState.Name(cri.pod_status(pod_id).status.state), "SANDBOX_NOTREADY")
    wait_for("the sandbox process to go", 10, lambda: not os.path.exists("/proc/%d" % pid))
    cri.remove_pod(pod_id)
    want("pod listed after RemovePodSandbox", [p.id for p in cri.pods() if p.id == pod_id], [])
    want_nothing_left([pod_id])


def exit_code_log():
    with new_pod("exit") as pod:
        cid = cri.create(pod, "exit3", SH + ["echo to-stdout; echo to-stderr >&2; exit 3"])
        st = cri.wait_state(cid, EXITED)
        want("exit code", st.exit_code, 3)
        want("reason", st.reason, "Error")
        entries = sorted(cri_log(cri.log_path(pod, "exit3")))
        want("CRI log", entries, [("stderr", "F", "to-stderr"), ("stdout", "F", "to-stdout")])
        cid0 = cri.create(pod, "exit0", SH + ["echo done"])
        st = cri.wait_state(cid0, EXITED)
        want("exit code 0, reason", (st.exit_code, st.reason), (0, "Completed"))
        cri.remove(cid)
        cri.remove(cid0)
        want("containers after RemoveContainer",
             [c.id for c in cri.containers() if c.id in (cid, cid0)], [])


def exec_sync():
    with new_pod("exec") as pod:
        cid = sleeper(pod)
        out, err, code = cri.exec_sync(cid, SH + ["echo out; echo err >&2; exit 5"])
        want("ExecSync stdout, stderr, exit code", (out, err, code), ("out\n", "err\n", 5))
        out, err, code = cri.exec_sync(cid, ["cat", "/proc/1/cmdline"])
        want("pid 1 of the container", out, "sleep\x001000\x00")
        t0 = time.time()
        try:
            r = cri.exec_sync(cid, SH + ["echo started; sleep 30"], timeout=1)
            raise Failed("ExecSync with timeout 1 returned %r after %.1fs" % (r, time.time() - t0))
        except grpc.RpcError as e:
            took = time.time() - t0
            want_in("ExecSync timeout error", e.details(), "timeout 1s exceeded")
            if took > 10:
                raise Failed("ExecSync timeout took %.1fs" % took)
            print("ok: ExecSync timed out after %.1fs" % took)
        # the timed-out process was killed
        time.sleep(0.5)
        out = cri.sh(cid, "ps -o args | grep -c '^sleep 30' || true")
        want("processes left by the timed-out exec", out.strip(), "0")
        # containerd turns the runtime's failure (its --log JSON) into the CRI error
        try:
            r = cri.exec_sync(cid, ["/no/such/program"])
            raise Failed("ExecSync of a missing program returned %r" % (r,))
        except grpc.RpcError as e:
            want_in("ExecSync error of a missing program", e.details(), "/no/such/program")
            want_in("ExecSync error of a missing program", e.details(), "no such file or directory")


def resources():
    mib = 1024 * 1024
    with new_pod("resources") as pod:
        res = api.LinuxContainerResources(
            cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 * mib,
            cpuset_cpus="0", oom_score_adj=800)
        cid = sleeper(pod, resources=res)
        pid = cri.pid(cid)
        want("memory cgroup", cgroup_of(pid, "memory"), "%s/%s" % (cri.cgroup_parent, cid))
        got = (cg_read(pid, "cpu", "cpu.cfs_period_us"), cg_read(pid, "cpu", "cpu.cfs_quota_us"),
               cg_read(pid, "cpu", "cpu.shares"), cg_read(pid, "memory", "memory.limit_in_bytes"),
               cg_read(pid, "cpuset", "cpuset.cpus"), open("/proc/%d/oom_score_adj" % pid).read().strip())
        want("cfs period, quota, shares, memory limit, cpuset, oom_score_adj", got,
             ("100000", "50000", "512", str(64 * mib), "0", "800"))
        want("memory limit seen inside",
             cri.sh(cid, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes").strip(), str(64 * mib))
        cri.call("UpdateContainerResources", api.UpdateContainerResourcesRequest(
            container_id=cid, linux=api.LinuxContainerResources(
                cpu_period=200000, cpu_quota=30000, cpu_shares=256,
                memory_limit_in_bytes=128 * mib, cpuset_cpus="0-1")))
        got = (cg_read(pid, "cpu", "cpu.cfs_period_us"), cg_read(pid, "cpu", "cpu.cfs_quota_us"),
               cg_read(pid, "cpu", "cpu.shares"), cg_read(pid, "memory", "memory.limit_in_bytes"),
               cg_read(pid, "cpuset", "cpuset.cpus"))
        want("after UpdateContainerResources", got,
             ("200000", "30000", "256", str(128 * mib), "0-1"))
        st = cri.status(cid).status
        want("ContainerStatus resources", (st.resources.linux.cpu_quota,
             st.resources.linux.memory_limit_in_bytes), (30000, 128 * mib))


def run_as_user():
    with new_pod("user") as pod:
        cid = sleeper(pod, security=api.LinuxContainerSecurityContext(
            run_as_user=api.Int64Value(value=1234), run_as_group=api.Int64Value(value=100)))
        want("uid:gid of pid 1", proc_status(cri.pid(cid), "Uid").split()[0] + ":" +
             proc_status(cri.pid(cid), "Gid").split()[0], "1234:100")
        want("exec id, HOME (no passwd entry)", cri.sh(cid, 'echo "$(id -u):$(id -g) $HOME"'),
             "1234:100 /\n")
        cid = cri.create(pod, "daemon", SH + ['echo "$(id -u) $HOME"'],
                         security=api.LinuxContainerSecurityContext(
                             run_as_user=api.Int64Value(value=1)))
        cri.wait_state(cid, EXITED)
        want("uid, HOME from /etc/passwd", cri_log(cri.log_path(pod, "daemon")),
             [("stdout", "F", "1 /usr/sbin")])


def readonly_rootfs():
    with new_pod("readonly") as pod:
        cid = sleeper(pod, security=api.LinuxContainerSecurityContext(readonly_rootfs=True))
        out, err, code = cri.exec_sync(cid, ["touch", "/newfile"])
        if code == 0:
            raise Failed("touch / succeeded in a read-only rootfs")
        want_in("touch / error", err, "Read-only file system")
        want("/dev/shm writable", cri.sh(cid, "touch /dev/shm/x && echo ok"), "ok\n")


def capabilities():
    with new_pod("caps") as pod:
        cid = sleeper(pod, security=api.LinuxContainerSecurityContext(
            capabilities=api.Capability(add_capabilities=["SYS_ADMIN"],
                                        drop_capabilities=["CHOWN"]),
            seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault)))
        pid = cri.pid(cid)
        got = tuple(proc_status(pid, f) for f in ("CapEff", "CapBnd", "Seccomp"))
        want("CapEff, CapBnd, Seccomp of pid 1", got,
             ("00000000a82425fa", "00000000a82425fa", "2"))
        out = cri.sh(cid, "grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -s '\\t ' ' '")
        want("exec: CapEff, Seccomp", out, "CapEff: 00000000a82425fa\nSeccomp: 2\n")
        out, err, code = cri.exec_sync(cid, ["chown", "1", "/tmp"])
        if code == 0:
            raise Failed("chown succeeded without CAP_CHOWN")
        print("ok: chown refused: %r" % err.strip())


def privileged():
    with new_pod("privileged", privileged=True) as pod:
        cid = sleeper(pod, security=api.LinuxContainerSecurityContext(privileged=True))
        host_bnd = proc_status(os.getpid(), "CapBnd")
        pid = cri.pid(cid)
        want("CapEff of pid 1 (every capability we have)", proc_status(pid, "CapEff"), host_bnd)
        out = cri.sh(cid, "grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -s '\\t ' ' ';"
                          "[ -c /dev/net/tun ] && echo has-tun;"
                          "mkdir -p /m && mount -t tmpfs none /m && echo mounted;"
                          "grep -c '^sysfs /sys sysfs rw' /proc/mounts")
        want("exec: caps, no seccomp, host devices, mount, rw /sys", out,
             "CapEff: %s\nSeccomp: 0\nhas-tun\nmounted\n1\n" % host_bnd)


def host_mounts():
    t = env("CRI_T")
    rw, ro, f = t + "/vol-rw", t + "/vol-ro", t + "/hostfile"
    os.makedirs(rw, exist_ok=True)
    os.makedirs(ro, exist_ok=True)
    with open(ro + "/file", "w") as fh:
        fh.write("from-host\n")
    with open(f, "w") as fh:
        fh.write("a file\n")
    with new_pod("mounts") as pod:
        cid = sleeper(pod, mounts=[
            api.Mount(container_path="/data", host_path=rw),
            api.Mount(container_path="/ro", host_path=ro, readonly=True),
            api.Mount(container_path="/etc/hostfile", host_path=f, readonly=True)])
        out = cri.sh(cid, "echo from-container > /data/file; cat /ro/file;"
                          "touch /ro/x 2>/dev/null || echo ro-refused; cat /etc/hostfile")
        want("mounts seen inside", out, "from-host\nro-refused\na file\n")
        want("file written through the rw mount", open(rw + "/file").read(), "from-container\n")
        if os.path.exists(ro + "/x"):
            raise Failed("a file appeared in the readonly mount")


def stop_timeout():
    with new_pod("stop") as pod:
        cid = cri.create(pod, "ignores-term",
                         SH + ['trap "" TERM; echo ready; while :; do sleep 0.1; done'])
        wait_for("the container to be ready", 10,
                 lambda: os.path.exists(cri.log_path(pod, "ignores-term")) and
                 cri_log(cri.log_path(pod, "ignores-term")))
        t0 = time.time()
        cri.stop(cid, timeout=2)
        took = time.time() - t0
        if not 2 <= took < 15:
            raise Failed("StopContainer with timeout 2 took %.1fs" % took)
        print("ok: StopContainer took %.1fs" % took)
        st = cri.status(cid).status
        want("state, exit code after StopContainer",
             (api.ContainerState.Name(st.state), st.exit_code), ("CONTAINER_EXITED", 137))
        # and one that does exit on TERM, at once
        cid = cri.create(pod, "exits-on-term",
                         SH + ['trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'])
        cri.wait_state(cid, RUNNING)
        wait_for("the trap to be set", 10, lambda: cri_log(cri.log_path(pod, "exits-on-term")))
        t0 = time.time()
        cri.stop(cid, timeout=10)
        took = time.time() - t0
        st = cri.status(cid).status
        want("exit code after SIGTERM", st.exit_code, 7)
        if took > 5:
            raise Failed("StopContainer of a process that exits on TERM took %.1fs" % took)


def stats():
    with new_pod("stats") as pod:
        cid = cri.create(pod, "busy", SH + ["i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done;"
                                           "x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 1000"])
        cri.wait_state(cid, RUNNING)
        time.sleep(1)
        s = cri.call("ContainerStats", api.ContainerStatsRequest(container_id=cid)).stats
        want("stats for", s.attributes.id, cid)
        if s.cpu.usage_core_nano_seconds.value <= 0:
            raise Failed("cpu usage %d" % s.cpu.usage_core_nano_seconds.value)
        if s.memory.working_set_bytes.value <= 0:
            raise Failed("memory working set %d" % s.memory.working_set_bytes.value)
        print("ok: cpu %dns, memory working set %d bytes" % (
            s.cpu.usage_core_nano_seconds.value, s.memory.working_set_bytes.value))
        all_stats = cri.call("ListContainerStats", api.ListContainerStatsRequest()).stats
        want("ListContainerStats has it", [x.attributes.id for x in all_stats if x.attributes.id == cid],
             [cid])


def reopen_log():
    with new_pod("reopen") as pod:
        cid = cri.create(pod, "counter",
                         SH + ["i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done"])
        path = cri.log_path(pod, "counter")
        wait_for("lines in the log", 10, lambda: os.path.exists(path) and len(cri_log(path)) >= 3)
        os.rename(path, path + ".1")
        cri.call("ReopenContainerLog", api.ReopenContainerLogRequest(container_id=cid))
        wait_for("lines in the reopened log", 10,
                 lambda: os.path.exists(path) and len(cri_log(path)) >= 2)
        old = [int(e[2][4:]) for e in cri_log(path + ".1")]
        new = [int(e[2][4:]) for e in cri_log(path)]
        if not new[0] > old[-1] or old != list(range(1, len(old) + 1)):
            raise Failed("lines before %s, after %s" % (old, new))
        print("ok: lines 1-%d in the rotated file, from %d in the reopened one" % (old[-1], new[0]))


def shared_namespaces():
    with new_pod("shared", pid=POD, ipc=POD) as pod:
        a = sleeper(pod, "a")
        b = sleeper(pod, "b")
        sandbox_pid = json.loads(cri.pod_status(pod[0], verbose=True).info["info"])["pid"]
        ns = lambda pid, n: os.readlink("/proc/%d/ns/%s" % (pid, n))  # noqa: E731
        for n in ("pid", "ipc"):
            want("%s namespace of a, b, the sandbox" % n,
                 (ns(cri.pid(a), n), ns(cri.pid(b), n)), (ns(sandbox_pid, n), ns(sandbox_pid, n)))
        if ns(cri.pid(a), "mnt") == ns(cri.pid(b), "mnt"):
            raise Failed("a and b share a mount namespace")
        out = cri.sh(b, "ps -o pid,args | grep -v ps")
        want_in("b sees the pause process as pid 1", out, "    1 /bin/sh -c trap")
        want("b sees both sleepers", out.count("sleep 1000"), 2)
        cri.sh(a, "echo from-a > /dev/shm/x")
        want("/dev/shm shared", cri.sh(b, "cat /dev/shm/x"), "from-a\n")
        # A container of a shared pid namespace that exits: its shim kills what is left (--all).
        c = cri.create(pod, "c", SH + ["sleep 1000 & exit 4"])
        st = cri.wait_state(c, EXITED)
        want("exit code in a shared pid namespace", st.exit_code, 4)
        cri.stop(a, timeout=0)
        want("state of a after StopContainer", api.ContainerState.Name(cri.status(a).status.state),
             "CONTAINER_EXITED")
    with new_pod("own-pid", pid=CONTAINER) as pod:
        a = sleeper(pod, "a")
        want("pid 1 with pid=CONTAINER", cri.sh(a, "tr '\\0' ' ' </proc/1/cmdline"),
             "sleep 1000 ")


def pod_loop():
    ids = []
    for i in range(20):
        pod = cri.run_pod("loop")
        ids.append(pod[0])
        try:
            loop_pod(pod, i, ids)
        finally:
            cri.stop_pod(pod[0])
            cri.remove_pod(pod[0])
    print("ok: 20 pods run, their containers exited with the right codes, stopped, removed")
    want("pods listed", [p.id for p in cri.pods() if p.id in ids], [])
    want("containers listed", [c.id for c in cri.containers() if c.id in ids], [])
    want_nothing_left(ids)


def loop_pod(pod, i, ids):
    cid = cri.create(pod, "c%d" % i, SH + ["echo pod%d; exit %d" % (i, i % 3)])
    ids.append(cid)
    st = cri.wait_state(cid, EXITED)
    if st.exit_code != i % 3:
        raise Failed("pod %d: exit code %d, want %d" % (i, st.exit_code, i % 3))
    if i % 2:
        # one left running for StopPodSandbox to stop
        ids.append(sleeper(pod, "s%d" % i))


if __name__ == "__main__":
    try:
        globals()[sys.argv[1]]()
    except Failed as e:
        print("FAILED: %s" % e)
        sys.exit(1)
    except grpc.RpcError as e:
        print("FAILED: CRI error %s: %s" % (e.code(), e.details()))
        sys.exit(1)
