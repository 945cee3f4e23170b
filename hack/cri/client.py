"""A small Kubernetes CRI v1 client for hack/dropin-cri.sh: what a kubelet asks of a runtime.

The gRPC stubs are generated at run time (by hack/dropin-cri.sh, with grpcio-tools) from the CRI
API in ../shared/cri-api/api.proto into $CRI_GEN; nothing generated is committed.
"""

import json
import os
import sys
import time
from contextlib import contextmanager

sys.path.insert(0, os.environ["CRI_GEN"])
import grpc  # noqa: E402
import api_pb2 as api  # noqa: E402
import api_pb2_grpc as api_grpc  # noqa: E402

# NamespaceMode
POD, CONTAINER, NODE = api.POD, api.CONTAINER, api.NODE
RUNNING, EXITED = api.CONTAINER_RUNNING, api.CONTAINER_EXITED


class Failed(Exception):
    pass


def env(name):
    return os.environ[name]


class Cri:
    """RuntimeService and ImageService over containerd's socket, every call with a deadline."""

    def __init__(self, sock=None, timeout=None):
        self.channel = grpc.insecure_channel("unix://" + (sock or env("CRI_SOCK")))
        self.rt = api_grpc.RuntimeServiceStub(self.channel)
        self.img = api_grpc.ImageServiceStub(self.channel)
        # Long enough for a loaded machine; short enough that a runtime that breaks containerd's
        # stop path (it retries forever) does not stall the run.
        self.timeout = timeout or float(os.environ.get("CRI_CALL_TIMEOUT", "20"))
        self.handler = env("CRI_HANDLER")
        self.image = env("CRI_IMG")
        self.tag = env("CRI_TAG")
        self.cgroup_parent = env("CRI_CGP") + "/k8s"
        self.log_root = os.path.join(env("CRI_T"), "pod-logs")
        self.n = 0
        self.created = []  # container ids, in order

    def call(self, method, request, timeout=None):
        return getattr(self.rt, method)(request, timeout=timeout or self.timeout)

    # --- pods ---------------------------------------------------------------------------------
    def run_pod(self, name, network=NODE, pid=CONTAINER, ipc=POD, privileged=False):
        """RunPodSandbox with the runtime under test; returns (pod id, sandbox config)."""
        self.n += 1
        uid = "%s-%s-%d" % (self.tag, name, self.n)
        log_dir = os.path.join(self.log_root, uid)
        os.makedirs(log_dir, exist_ok=True)
        config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace=self.tag, attempt=0),
            # (a kubelet leaves the hostname empty for host-network pods: the host's UTS)
            hostname="" if network == NODE else name,
            log_directory=log_dir,
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=api.LinuxSandboxSecurityContext(
                    namespace_options=api.NamespaceOption(network=network, pid=pid, ipc=ipc),
                    privileged=privileged,
                ),
            ),
        )
        resp = self.call(
            "RunPodSandbox", api.RunPodSandboxRequest(config=config, runtime_handler=self.handler)
        )
        return resp.pod_sandbox_id, config

    def pod_status(self, pod_id, verbose=False):
        return self.call(
            "PodSandboxStatus", api.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose)
        )

    # (A runtime that breaks containerd's stop path makes these hang until their deadline;
    # with runc they take well under a second.)
    def stop_pod(self, pod_id):
        self.call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                  timeout=min(self.timeout, 10))

    def remove_pod(self, pod_id):
        self.call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                  timeout=min(self.timeout, 10))

    def pods(self):
        return self.call("ListPodSandbox", api.ListPodSandboxRequest()).items

    @contextmanager
    def pod(self, name, after=None, **kw):
        """A pod that is stopped and removed however the block ends. When the block succeeded,
        a failure to stop or remove it fails too (a kubelet would be stuck with it), and
        after(ids of the pod and its containers) checks what is left."""
        pod_id, config = self.run_pod(name, **kw)
        first = len(self.created)
        try:
            yield pod_id, config
        except BaseException:
            try:
                self.stop_pod(pod_id)
                self.remove_pod(pod_id)
            except grpc.RpcError as e:
                print("cleanup of pod %s: %s" % (pod_id[:12], e.details()))
            raise
        for step, call in (("StopPodSandbox", self.stop_pod), ("RemovePodSandbox", self.remove_pod)):
            try:
                call(pod_id)
            except grpc.RpcError as e:
                raise Failed("%s at the end: %s: %s" % (step, e.code(), e.details()))
        if after:
            after([pod_id] + self.created[first:])

    # --- containers ---------------------------------------------------------------------------
    def create(self, pod, name, command, security=None, resources=None, mounts=(), envs=None,
               start=True):
        """CreateContainer (+ StartContainer); the log goes to <pod log dir>/<name>.log."""
        pod_id, pod_config = pod
        security = security or api.LinuxContainerSecurityContext()
        if not security.HasField("namespace_options"):
            # as a kubelet does: the container's namespaces are the pod's
            security.namespace_options.CopyFrom(
                pod_config.linux.security_context.namespace_options)
        config = api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name, attempt=0),
            image=api.ImageSpec(image=self.image),
            command=command,
            log_path=name + ".log",
            mounts=list(mounts),
            envs=[api.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            linux=api.LinuxContainerConfig(
                resources=resources, security_context=security
            ),
        )
        cid = self.call(
            "CreateContainer",
            api.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config
            ),
        ).container_id
        self.created.append(cid)
        if start:
            self.call("StartContainer", api.StartContainerRequest(container_id=cid))
        return cid

    def status(self, cid, verbose=False):
        return self.call(
            "ContainerStatus", api.ContainerStatusRequest(container_id=cid, verbose=verbose)
        )

    def info(self, cid):
        """The verbose status' info (pid, runtime spec, …)."""
        return json.loads(self.status(cid, verbose=True).info["info"])

    def pid(self, cid):
        return self.info(cid)["pid"]

    def wait_state(self, cid, state, seconds=10):
        deadline = time.time() + seconds
        while True:
            st = self.status(cid).status
            if st.state == state:
                return st
            if time.time() > deadline:
                raise Failed(
                    "container %s: state %s after %ss, want %s (exit code %d, reason %r, message %r)"
                    % (cid[:12], api.ContainerState.Name(st.state), seconds,
                       api.ContainerState.Name(state), st.exit_code, st.reason, st.message)
                )
            time.sleep(0.1)

    def stop(self, cid, timeout=0):
        self.call(
            "StopContainer", api.StopContainerRequest(container_id=cid, timeout=timeout),
            timeout=timeout + self.timeout,
        )

    def remove(self, cid):
        self.call("RemoveContainer", api.RemoveContainerRequest(container_id=cid))

    def containers(self):
        return self.call("ListContainers", api.ListContainersRequest()).containers

    def exec_sync(self, cid, cmd, timeout=0):
        """ExecSync; returns (stdout, stderr, exit code) as text."""
        r = self.call(
            "ExecSync", api.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
            timeout=(timeout or 30) + self.timeout,
        )
        return r.stdout.decode(), r.stderr.decode(), r.exit_code

    def sh(self, cid, script):
        """stdout of `sh -c SCRIPT`, which must exit 0."""
        out, err, code = self.exec_sync(cid, ["sh", "-c", script])
        if code != 0:
            raise Failed("exec %r: exit code %d, stderr %r" % (script, code, err))
        return out

    def log_path(self, pod, name):
        return os.path.join(pod[1].log_directory, name + ".log")


def cri_log(path):
    """The entries of a CRI log file: [(stream, tag, text)]."""
    entries = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) < 3:
                raise Failed("%s: not a CRI log line: %r" % (path, line))
            entries.append((parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    return entries


def want(what, got, expected):
    if got != expected:
        raise Failed("%s: got %r, want %r" % (what, got, expected))
    print("ok: %s = %r" % (what, expected))


def want_in(what, text, needle):
    if needle not in text:
        raise Failed("%s: %r not in %r" % (what, needle, text))
    print("ok: %s has %r" % (what, needle))


def wait_for(what, seconds, fn):
    deadline = time.time() + seconds
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise Failed("timed out after %ss waiting for %s" % (seconds, what))
        time.sleep(0.1)
