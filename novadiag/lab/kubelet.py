"""The lab's node: a kubelet (plus the workload controllers and kube-proxy it drives).

One thread runs a level-triggered loop, as the real kubelet's sync loop does: the
Store's change notifications only set a flag and wake it (a byte on a pipe), and
each pass then

1. runs the workload controllers (Deployments, ReplicaSets, StatefulSets,
   DaemonSets, Jobs → Pods, garbage collection);
2. syncs every Pod bound to ``lab-node`` (binding unscheduled ones to it, unless
   their ``nodeSelector`` does not match the Node's labels: those stay Pending,
   unbound, with ``PodScheduled=False``/``Unschedulable`` as the scheduler leaves
   them): gives it
   an IP from the lab network, writes its ``resolv.conf``/``hosts`` under
   ``state_dir/pods/<ns>_<pod>/``, materializes its volumes, starts each container
   as a real process (see ``podproc``), restarts exited ones with exponential
   back-off (CrashLoopBackOff), enforces ``activeDeadlineSeconds``, and writes the
   pod status a kubelet writes (phase, IPs, conditions, container states with
   ``lastState`` and ``restartCount``);
3. syncs EndpointSlices/Endpoints from pod readiness;
4. points the Service proxy at the ready endpoints.

The same loop waits, in one ``selectors`` call, on every container's pidfd (exit)
and readiness pipe, on the wake pipe and on the nearest timer (back-off, deadline),
so neither a hundred pods nor a hundred Services cost a thread each. Only this
thread touches the runtime state; other threads use :meth:`Kubelet.read_log`,
which reads files.

Readiness: a lab workload container reports ready once all its listeners are bound
(the kubelet reads ``ready`` from a pipe it passed), which stands in for a passing
readiness probe; a container running a real command (a probe pod) is ready while
it runs.

Process ownership: every container process is a child of the daemon and stays in
its process group; its pid (and, as root, the host pid of the pod's PID 1) is
recorded in ``state_dir/pids/`` — one pid per file — so ``lab down`` can kill
stragglers after a daemon crash. :meth:`Kubelet.stop` kills and reaps them all.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from novadiag.lab import podproc, resolvconf
from novadiag.lab.admission import admit
from novadiag.lab.controllers import WorkloadControllers, default_pod
from novadiag.lab.endpoints import EndpointsController
from novadiag.lab.execstream import ExecError
from novadiag.lab.network import LabNetwork
from novadiag.lab.proxy import ServiceProxy, proxy_table
from novadiag.lab.store import Event, NotFound, Obj, Store, StoreError, now_rfc3339

log = logging.getLogger("novadiag.lab.kubelet")


NODE_NAME = "lab-node"
UNSCHEDULABLE_MESSAGE = ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
                         "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
STARTUP_NEEDS = "lab.novadiag.dev/startup-needs"
IGNORED_KINDS = frozenset({"Event", "Lease"})
RESYNC_SECONDS = 30.0
"""A pass with nothing to do, as a safety net: every change the loop acts on already wakes it
(Store events, container exits on their pidfd, readiness pipes, timers). It was 2 s: at
benchmark size L an idle pass walks 50,000 workloads and every Pod, Service and endpoint,
holding the daemon's GIL while the lab's API server is trying to answer lists."""
RETRY_SECONDS = 2.0
"""The next pass after one that failed (an exception, a pod a controller could not create): no event
will come to retry it."""
KILL_WAIT_SECONDS = 2.0

Mode = Literal["root", "degraded"]
PodKey = tuple[str, str]


@dataclass
class ContainerRuntime:
    """One container of one pod, as the kubelet tracks it between passes."""

    spec: dict[str, Any]
    init: bool = False
    restart_count: int = 0
    proc: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    ready_fd: int | None = None
    ready: bool = False
    started_mono: float = 0.0
    started_at: str = ""
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    backoff: float = 0.0
    restart_at: float | None = None
    exited_once: bool = False
    done: bool = False
    blocked: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def settled(self) -> bool:
        """Nothing more will happen without time passing or the world changing."""
        return self.ready or self.exited_once or self.done or self.blocked or (
            self.proc is None and "waiting" in self.state)


@dataclass
class PodRuntime:
    namespace: str
    name: str
    uid: str
    pod_dir: Path
    pod_ip: str
    host_ip: str
    start_time: str
    containers: list[ContainerRuntime]
    deadline: float | None = None
    volumes: dict[str, Path] | None = None
    phase: str | None = None  # set once terminal
    reason: str | None = None
    message: str | None = None
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> PodKey:
        return (self.namespace, self.name)

    @property
    def settled(self) -> bool:
        return self.phase is not None or all(c.settled for c in self.containers)


class Kubelet:
    """Runs the lab's pods as local processes and keeps their status in the Store."""

    def __init__(self, store: Store, *, network: LabNetwork, state_dir: Path,
                 dns_address: tuple[str, int], cluster_domain: str = "cluster.local",
                 mode: Mode = "root", scenario: Any = None, backoff_initial: float = 1.0,
                 backoff_max: float = 10.0, network_plugin: Callable[[Obj], None] | None = None) -> None:
        self.store = store
        self.network_plugin = network_plugin
        """Called with a pod and its new IP before its containers start (the lab's CNI ADD)."""
        self.network = network
        self.state_dir = Path(state_dir)
        self.dns_address = (str(dns_address[0]), int(dns_address[1]))
        self.cluster_domain = cluster_domain
        self.mode = mode
        self.unpullable = unpullable_patterns(scenario)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.controllers = WorkloadControllers(store, admit=self._admit_function())
        self.endpoints = EndpointsController(store)
        self.proxy = ServiceProxy()
        self._pods: dict[PodKey, PodRuntime] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._dirty = True
        self._stopping = False
        self._settled = threading.Condition()
        self._is_settled = False
        self._thread = threading.Thread(target=self._run, name="lab-kubelet", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None
        self._next_resync = 0.0
        self._quiet_version: int | None = None
        """The store's version after the last pass that changed nothing and had no failure. The
        controllers, endpoints and proxy read only the store, so until it moves on a pass need not
        run them: the 30 s safety-net pass over an idle lab of size L cost 3.8 s of CPU doing that,
        on the core a client under test was using. Pods are still checked: their processes are not
        in the store."""

    # -- public API ---------------------------------------------------------------
    @property
    def root_mode(self) -> bool:
        return self.mode == "root"

    @property
    def _nsswitch(self) -> Path:
        return self.state_dir / "pods" / "nsswitch.conf"

    def start(self) -> None:
        for sub in ("pods", "pids", "pvc"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self._nsswitch.write_text(resolvconf.NSSWITCH_CONF, encoding="utf-8")
        self.proxy.start()
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._thread.start()

    def stop(self) -> None:
        """Kill every pod process (and its PID namespace), close every listener."""
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._unsubscribe:
            self._unsubscribe()
        for pr in self._pods.values():  # signal every pod first, then reap: stop is quick
            for cr in pr.containers:
                self._signal_kill(pr, cr)
        for key in list(self._pods):
            self._teardown(key, remove_dir=False)
        self.proxy.stop()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def wait_ready(self, timeout: float) -> bool:
        """True once a pass changed nothing and every pod has started or settled."""
        with self._settled:
            return self._settled.wait_for(lambda: self._is_settled, timeout)

    def read_log(self, namespace: str, pod: str, container: str | None = None, *,
                 previous: bool = False) -> str | None:
        """The container's log (stdout+stderr); ``previous``: the instance before."""
        logs = self.state_dir / "pods" / f"{namespace}_{pod}" / "logs"
        try:
            if container is None:
                names = sorted(p.name for p in logs.iterdir()) if logs.is_dir() else []
                container = self._first_container(namespace, pod) or (names[0] if names else None)
            if container is None:
                return None
            files = sorted((logs / container).glob("*.log"), key=lambda p: int(p.stem))
            index = -2 if previous else -1
            if len(files) < -index:
                return None
            return files[index].read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):  # the pod went away while we looked
            return None

    def exec_refusal(self, namespace: str, pod: str, container: str) -> str | None:
        """Why a command cannot run in that container now (None: it can)."""
        if not self.root_mode:
            return ("lab degraded mode: pods have no namespaces of their own to exec into "
                    "(run the lab as root)")
        target = self._exec_target(namespace, pod, container)
        return None if target is not None else f'container not found ("{container}")'

    def start_exec(self, namespace: str, pod: str, container: str, command: list[str], *,
                   stdin: bool) -> subprocess.Popen[bytes]:
        """Start ``command`` inside a running container, as ``kubectl exec`` does; raises ExecError.

        Reads only files (the pod's recorded PID 1 and its launch plan), so any thread
        may call it. The command gets the container's environment and user; it runs
        in its own process group, which the caller kills when the client goes away.
        """
        refusal = self.exec_refusal(namespace, pod, container)
        target = self._exec_target(namespace, pod, container)
        if refusal is not None or target is None:
            raise ExecError(refusal or f'container not found ("{container}")')
        init_pid, plan = target
        argv = podproc.exec_argv(init_pid, command, uid=plan.get("uid"), gid=plan.get("gid"))
        return subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(plan.get("env") or {}), cwd="/", start_new_session=True)

    def _exec_target(self, namespace: str, pod: str, container: str) -> tuple[int, dict[str, Any]] | None:
        """The running container's host pid of its PID 1, and its launch plan."""
        init_pid = _read_pid(self.state_dir / "pids" / f"{namespace}_{pod}_{container}.init.pid")
        plan_path = self.state_dir / "pods" / f"{namespace}_{pod}" / f"{container}.launch.json"
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if init_pid is None or not isinstance(plan, dict) or not _alive(init_pid):
            return None
        return init_pid, plan

    # -- loop ------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if event.kind not in IGNORED_KINDS:
            with self._settled:
                self._is_settled = False
            self._dirty = True
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _drain_wake(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass

    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(self._timeout()):
                key.data(key.fileobj)
            if self._stopping:
                break
            now = time.monotonic()
            if self._dirty or now >= self._next_resync or self._timer_due(now):
                self._dirty = False
                failed = False
                try:
                    self._reconcile()
                except Exception:  # the loop must survive any one bad object
                    log.exception("kubelet pass failed")
                    failed = True
                retry = failed or self.controllers.failures > 0
                self._next_resync = now + (RETRY_SECONDS if retry else RESYNC_SECONDS)

    def _timers(self) -> list[float]:
        timers = []
        for pr in self._pods.values():
            if pr.deadline is not None and pr.phase is None:
                timers.append(pr.deadline)
            timers += [c.restart_at for c in pr.containers if c.restart_at is not None]
        return timers

    def _timer_due(self, now: float) -> bool:
        return any(t <= now for t in self._timers())

    def _timeout(self) -> float:
        now = time.monotonic()
        nearest = min([self._next_resync, *self._timers()], default=now + RESYNC_SECONDS)
        return 0.0 if self._dirty else max(0.0, min(nearest - now, RESYNC_SECONDS))

    def _reconcile(self) -> None:
        version = self.store.resource_version
        control_plane = version != self._quiet_version
        self._quiet_version = None  # until this pass ends well
        if control_plane:
            self.controllers.sync()
        pods, _ = self.store.list("Pod")
        seen = set()
        for pod in pods:
            key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            seen.add(key)
            self._sync_pod(pod)
        for key in [k for k in self._pods if k not in seen]:
            self._teardown(key)
        if control_plane or self.store.resource_version != version:
            self.endpoints.sync()
            self.proxy.apply(proxy_table(self.store))
        settled = all(pr.settled for pr in self._pods.values())
        unchanged = self.store.resource_version == version
        with self._settled:
            self._is_settled = settled and unchanged
            self._settled.notify_all()
        if unchanged and self.controllers.failures == 0:
            self._quiet_version = version

    # -- pods ------------------------------------------------------------------------
    def _sync_pod(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        key = (meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            self._teardown(key)
            with contextlib.suppress(NotFound):
                self.store.delete("Pod", key[0], key[1])
            return
        if spec.get("nodeName") not in (None, "", NODE_NAME):
            return
        if not spec.get("nodeName") and key not in self._pods and not self._fits_node(spec):
            self._mark_unschedulable(pod)
            return
        pr = self._pods.get(key)
        if pr is not None and pr.uid != meta.get("uid"):
            self._teardown(key)
            pr = None
        if pr is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            pr = self._admit_pod(pod)
        self._advance(pr, pod)
        self._write_status(pr, pod)

    def _fits_node(self, spec: Mapping[str, Any]) -> bool:
        """The scheduler's nodeSelector filter against the lab's one Node (affinity and taints are not modelled)."""
        wanted = spec.get("nodeSelector") or {}
        if not wanted:
            return True
        node = self._lookup("Node", None, NODE_NAME) or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in wanted.items())

    def _mark_unschedulable(self, pod: Obj) -> None:
        """Leave the pod Pending, unbound, with PodScheduled=False/Unschedulable, as kube-scheduler does."""
        old = pod.get("status") or {}
        since = next((c.get("lastTransitionTime") for c in old.get("conditions") or ()
                      if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"), None)
        status = {"phase": "Pending", "qosClass": old.get("qosClass") or "BestEffort", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": UNSCHEDULABLE_MESSAGE, "lastTransitionTime": since or now_rfc3339()}]}
        if status == old:
            return

        def change(draft: dict[str, Any]) -> None:
            draft["status"] = status

        with contextlib.suppress(NotFound):
            self.store.mutate("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"], change)

    def _admit_pod(self, pod: Obj) -> PodRuntime:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        pod_dir = self.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}"
        if pod_dir.exists():
            shutil.rmtree(pod_dir, ignore_errors=True)
        pod_dir.mkdir(parents=True)
        host_ip = self.network.api_ip
        pod_ip = host_ip if spec.get("hostNetwork") else self.network.allocate_pod_ip()
        containers = [ContainerRuntime(dict(c), init=True) for c in spec.get("initContainers") or []]
        containers += [ContainerRuntime(dict(c)) for c in spec.get("containers") or []]
        pr = PodRuntime(namespace=meta["namespace"], name=meta["name"], uid=str(meta.get("uid")),
                        pod_dir=pod_dir, pod_ip=pod_ip, host_ip=host_ip,
                        start_time=now_rfc3339(), containers=containers)
        if spec.get("activeDeadlineSeconds") is not None:
            pr.deadline = time.monotonic() + float(spec["activeDeadlineSeconds"])
        if self.network_plugin is not None:
            self.network_plugin(with_addresses(pod, pr))
        self._write_pod_files(pr, pod)
        self._pods[pr.key] = pr
        return pr

    def _write_pod_files(self, pr: PodRuntime, pod: Obj) -> None:
        dns_ip = self.dns_address[0]
        config = resolvconf.pod_resolver_config(pod, dns_ip=dns_ip,
                                                cluster_domain=self.cluster_domain)
        files = {
            "resolv.conf": config.render(),
            "hosts": resolvconf.render_hosts(pod, pod_ip=pr.pod_ip, node_ip=pr.host_ip,
                                             cluster_domain=self.cluster_domain),
        }
        for name, text in files.items():
            (pr.pod_dir / name).write_text(text, encoding="utf-8")

    def _advance(self, pr: PodRuntime, pod: Obj) -> None:
        now = time.monotonic()
        if pr.phase is not None:
            return
        if pr.deadline is not None and now >= pr.deadline:
            self._deadline_exceeded(pr)
            return
        for cr in pr.containers:
            image = str(cr.spec.get("image") or "")
            if image_unpullable(image, self.unpullable):
                cr.blocked = True
                cr.state = {"waiting": {"reason": "ImagePullBackOff",
                                        "message": f'Back-off pulling image "{image}"'}}
        if pr.volumes is None and not self._mount_volumes(pr, pod):
            return
        for cr in pr.containers:
            if cr.init:
                self._complete_init(cr)
                continue
            due = cr.restart_at is None or now >= cr.restart_at
            if cr.proc is None and not cr.done and not cr.blocked and due:
                self._start_container(pr, cr, pod)

    def _mount_volumes(self, pr: PodRuntime, pod: Obj) -> bool:
        try:
            pr.volumes = podproc.materialize_volumes(
                pod, pr.pod_dir, lookup=self._lookup, pvc_dir=self.state_dir / "pvc")
        except podproc.PodConfigError as exc:
            for cr in pr.containers:
                cr.state = {"waiting": {"reason": exc.reason, "message": str(exc)}}
            return False
        return True

    def _complete_init(self, cr: ContainerRuntime) -> None:
        """Init containers are reported as run to completion (the lab runs no images)."""
        if not cr.done:
            cr.done = True
            now = now_rfc3339()
            cr.state = {"terminated": {"exitCode": 0, "reason": "Completed",
                                       "startedAt": now, "finishedAt": now}}

    def _deadline_exceeded(self, pr: PodRuntime) -> None:
        for cr in pr.containers:
            if cr.proc is not None:
                self._kill(pr, cr)
                cr.state = {"terminated": {"exitCode": 137, "reason": "Error",
                                           "startedAt": cr.started_at,
                                           "finishedAt": now_rfc3339()}}
            cr.ready = False
            cr.restart_at = None
        pr.phase, pr.reason = "Failed", "DeadlineExceeded"
        pr.message = "Pod was active on the node longer than the specified deadline"

    # -- containers ---------------------------------------------------------------------
    def _start_container(self, pr: PodRuntime, cr: ContainerRuntime, pod: Obj) -> None:
        refusal = None if self.root_mode else podproc.degraded_refusal(cr.spec)
        if refusal:
            cr.blocked = True
            cr.state = {"waiting": {"reason": "CreateContainerError", "message": refusal}}
            return
        hostname = resolvconf.pod_hostname(pod)
        try:
            env = podproc.container_env(with_addresses(pod, pr), cr.spec, lookup=self._lookup,
                                        hostname=hostname,
                                        services=self.store.list("Service", pr.namespace)[0],
                                        master_service=self._lookup("Service", "default",
                                                                    "kubernetes"))
        except podproc.PodConfigError as exc:
            cr.state = {"waiting": {"reason": exc.reason, "message": str(exc)}}
            return
        restart = cr.restart_count + (1 if cr.exited_once else 0)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            plan = self._launch_plan(pr, cr, pod, env, ready_w, hostname)
            log_path = pr.pod_dir / "logs" / cr.name / f"{restart}.log"
            cr.proc = podproc.spawn(plan, plan_path=self._plan_path(pr, cr),
                                    root_mode=self.root_mode, log_path=log_path,
                                    pass_fds=(ready_w,))
        except (OSError, ValueError) as exc:
            os.close(ready_r)
            cr.state = {"waiting": {"reason": "RunContainerError", "message": str(exc)}}
            self._schedule_restart(cr)
            return
        finally:
            os.close(ready_w)
        cr.restart_count = restart
        cr.started_mono, cr.started_at = time.monotonic(), now_rfc3339()
        cr.state = {"running": {"startedAt": cr.started_at}}
        cr.restart_at = None
        cr.ready = podproc.runs_real_command(cr.spec)
        self._watch(pr, cr, ready_r)
        self._record_pid(pr, cr)

    def _plan_path(self, pr: PodRuntime, cr: ContainerRuntime) -> Path:
        return pr.pod_dir / f"{cr.name}.launch.json"

    def _launch_plan(self, pr: PodRuntime, cr: ContainerRuntime, pod: Obj,
                     env: dict[str, str], ready_fd: int, hostname: str) -> podproc.LaunchPlan:
        uid, gid = podproc.run_as(pod, cr.spec)
        etc = {"/etc/resolv.conf": str(pr.pod_dir / "resolv.conf"),
               "/etc/hosts": str(pr.pod_dir / "hosts"),
               "/etc/nsswitch.conf": str(self._nsswitch)}
        real = podproc.runs_real_command(cr.spec)
        root = pr.pod_dir / "rootfs" / cr.name
        root.mkdir(parents=True, exist_ok=True)
        plan = podproc.LaunchPlan(
            argv=podproc.container_argv(cr.spec, env, self._plan_path(pr, cr)), env=env,
            cwd=str(cr.spec.get("workingDir") or "/"), hostname=hostname, root=str(root),
            etc_files=etc, mounts=podproc.volume_mounts(cr.spec, pr.volumes or {}),
            uid=uid, gid=gid, pid_file=str(self._pid_path(pr, cr, ".init.pid")),
            expose=podproc.interpreter_dirs_to_expose() if uid else [],
            program=None if real else self._program_spec(pr, cr, pod, env, ready_fd))
        if not self.root_mode:
            plan = podproc.degrade_plan(plan, pod_dir=pr.pod_dir,
                                        resolver=self._resolver_config(pr, pod))
        return plan

    def _program_spec(self, pr: PodRuntime, cr: ContainerRuntime, pod: Obj,
                      env: Mapping[str, str], ready_fd: int) -> dict[str, Any]:
        annotations = pod["metadata"].get("annotations") or {}
        needs = [n.strip() for n in str(annotations.get(STARTUP_NEEDS) or "").split(",")
                 if n.strip()]
        mains = [c for c in pr.containers if not c.init]
        if len(mains) > 1:
            needs = [n for n in needs if n in env]
        glibc = self.root_mode and self.dns_address[1] == 53
        return {
            "pod": pr.name, "namespace": pr.namespace, "container": cr.name,
            "image": cr.spec.get("image"), "pod_ip": pr.pod_ip,
            "ports": cr.spec.get("ports") or [], "startup_needs": needs,
            "resolver": None if glibc else self._resolver_config(pr, pod), "ready_fd": ready_fd,
        }

    def _resolver_config(self, pr: PodRuntime, pod: Obj) -> dict[str, Any]:
        config = resolvconf.pod_resolver_config(pod, dns_ip=self.dns_address[0],
                                                cluster_domain=self.cluster_domain)
        return {"nameservers": [list(self.dns_address)] if config.nameservers else [],
                "search": list(config.searches), "ndots": config.ndots,
                "hosts_file": str(pr.pod_dir / "hosts")}

    def _watch(self, pr: PodRuntime, cr: ContainerRuntime, ready_r: int) -> None:
        assert cr.proc is not None
        cr.pidfd = os.pidfd_open(cr.proc.pid)
        self._selector.register(cr.pidfd, selectors.EVENT_READ,
                                lambda _fd: self._on_exit(pr, cr))
        if cr.ready:
            os.close(ready_r)
            return
        cr.ready_fd = ready_r
        self._selector.register(ready_r, selectors.EVENT_READ,
                                lambda fd: self._on_ready_pipe(cr, fd))

    def _on_ready_pipe(self, cr: ContainerRuntime, fd: int) -> None:
        data = b""
        with contextlib.suppress(OSError):
            data = os.read(fd, 64)
        if data.startswith(b"ready"):
            cr.ready = True
            self._dirty = True
        if not data or cr.ready:
            self._close_ready(cr)

    def _close_ready(self, cr: ContainerRuntime) -> None:
        if cr.ready_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(cr.ready_fd)
            os.close(cr.ready_fd)
            cr.ready_fd = None

    def _unwatch(self, cr: ContainerRuntime) -> None:
        self._close_ready(cr)
        if cr.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(cr.pidfd)
            os.close(cr.pidfd)
            cr.pidfd = None

    def _on_exit(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        proc = cr.proc
        if proc is None:
            return
        code = proc.wait()
        code = 128 - code if code < 0 else code
        self._unwatch(cr)
        self._forget_pid(pr, cr)
        cr.proc, cr.ready, cr.exited_once = None, False, True
        self._dirty = True
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                      "startedAt": cr.started_at, "finishedAt": now_rfc3339(),
                      "containerID": f"lab://{proc.pid}"}
        policy = self._restart_policy(pr)
        if pr.phase is None and (policy == "Always" or (policy == "OnFailure" and code)):
            self._schedule_restart(cr)
            cr.last_state = {"terminated": terminated}
            cr.state = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {cr.backoff:g}s restarting failed container={cr.name} "
                f"pod={pr.name}_{pr.namespace}({pr.uid})")}}
            return
        cr.state, cr.done = {"terminated": terminated}, True
        mains = [c for c in pr.containers if not c.init]
        if pr.phase is None and all(c.done for c in mains):
            ok = all(c.state["terminated"]["exitCode"] == 0 for c in mains)
            pr.phase = "Succeeded" if ok else "Failed"

    def _schedule_restart(self, cr: ContainerRuntime) -> None:
        if cr.started_mono and time.monotonic() - cr.started_mono > 2 * self.backoff_max:
            cr.backoff = 0.0  # it ran long enough: the back-off starts over
        cr.backoff = self.backoff_initial if not cr.backoff else min(
            cr.backoff * 2, self.backoff_max)
        cr.restart_at = time.monotonic() + cr.backoff

    def _restart_policy(self, pr: PodRuntime) -> str:
        try:
            pod = self.store.get("Pod", pr.namespace, pr.name)
        except NotFound:
            return "Never"
        return str((pod.get("spec") or {}).get("restartPolicy") or "Always")

    # -- killing ---------------------------------------------------------------------------
    def _kill(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        self._signal_kill(pr, cr)
        self._reap(pr, cr)

    def _signal_kill(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        proc = cr.proc
        if proc is None:
            return
        init_pid = _read_pid(self._pid_path(pr, cr, ".init.pid"))
        if init_pid and _parent_of(init_pid) == proc.pid:
            with contextlib.suppress(OSError):
                os.kill(init_pid, signal.SIGKILL)  # PID 1 of the pod: the namespace dies
        with contextlib.suppress(OSError):
            if self.root_mode:
                os.kill(proc.pid, signal.SIGKILL)
            else:
                os.killpg(proc.pid, signal.SIGKILL)

    def _reap(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        if cr.proc is None:
            return
        try:
            cr.proc.wait(timeout=KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("pod %s/%s container %s did not die", pr.namespace, pr.name, cr.name)
        self._unwatch(cr)
        self._forget_pid(pr, cr)
        cr.proc = None

    def _teardown(self, key: PodKey, *, remove_dir: bool = True) -> None:
        pr = self._pods.pop(key, None)
        if pr is None:
            return
        for cr in pr.containers:
            self._kill(pr, cr)
        if remove_dir:
            shutil.rmtree(pr.pod_dir, ignore_errors=True)

    def _pid_path(self, pr: PodRuntime, cr: ContainerRuntime, suffix: str = ".pid") -> Path:
        return self.state_dir / "pids" / f"{pr.namespace}_{pr.name}_{cr.name}{suffix}"

    def _record_pid(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        if cr.proc is not None:
            self._pid_path(pr, cr).write_text(f"{cr.proc.pid}\n", encoding="ascii")

    def _forget_pid(self, pr: PodRuntime, cr: ContainerRuntime) -> None:
        for suffix in (".pid", ".init.pid"):
            with contextlib.suppress(OSError):
                self._pid_path(pr, cr, suffix).unlink()

    # -- status ------------------------------------------------------------------------------
    def _write_status(self, pr: PodRuntime, pod: Obj) -> None:
        status = self._pod_status(pr, pod)
        needs_bind = not (pod.get("spec") or {}).get("nodeName")
        if status == pod.get("status") and not needs_bind:
            return

        def change(draft: dict[str, Any]) -> None:
            draft.setdefault("spec", {}).setdefault("nodeName", NODE_NAME)
            draft["status"] = status

        with contextlib.suppress(NotFound):
            self.store.mutate("Pod", pr.namespace, pr.name, change)

    def _pod_status(self, pr: PodRuntime, pod: Obj) -> dict[str, Any]:
        mains = [c for c in pr.containers if not c.init]
        started = all(c.proc is not None or c.exited_once for c in mains)
        phase = pr.phase or ("Running" if started else "Pending")
        ready = phase == "Running" and all(c.ready for c in mains)
        unready = [c.name for c in mains if not c.ready]
        status: dict[str, Any] = {"phase": phase}
        if pr.reason:
            status.update(reason=pr.reason, message=pr.message)
        status["conditions"] = self._conditions(pr, ready, unready, phase)
        status.update(hostIP=pr.host_ip, hostIPs=[{"ip": pr.host_ip}], podIP=pr.pod_ip,
                      podIPs=[{"ip": pr.pod_ip}], startTime=pr.start_time,
                      qosClass=(pod.get("status") or {}).get("qosClass") or "BestEffort")
        inits = [self._container_status(c) for c in pr.containers if c.init]
        if inits:
            status["initContainerStatuses"] = inits
        status["containerStatuses"] = [self._container_status(c) for c in mains]
        return status

    def _conditions(self, pr: PodRuntime, ready: bool, unready: list[str],
                    phase: str) -> list[dict[str, Any]]:
        reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
        rows = [("PodReadyToStartContainers", True), ("Initialized", True), ("Ready", ready),
                ("ContainersReady", ready), ("PodScheduled", True)]
        conditions = []
        for kind, ok in rows:
            value = "True" if ok else "False"
            previous = pr.transitions.get(kind)
            if previous is None or previous[0] != value:
                pr.transitions[kind] = (value, now_rfc3339())
            condition: dict[str, Any] = {"type": kind, "status": value,
                                         "lastTransitionTime": pr.transitions[kind][1]}
            if not ok:
                condition.update(reason=reason, message=message)
            conditions.append(condition)
        return conditions

    @staticmethod
    def _container_status(cr: ContainerRuntime) -> dict[str, Any]:
        image = str(cr.spec.get("image") or "")
        status: dict[str, Any] = {
            "name": cr.name, "image": image, "imageID": f"lab.novadiag.dev/{image}",
            "ready": cr.ready, "restartCount": cr.restart_count,
            "started": cr.proc is not None, "state": cr.state, "lastState": cr.last_state,
        }
        if cr.proc is not None:
            status["containerID"] = f"lab://{cr.proc.pid}"
        return status

    # -- helpers ---------------------------------------------------------------------------
    def _lookup(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(kind, namespace, name)
        except NotFound:
            return None

    def _first_container(self, namespace: str, pod: str) -> str | None:
        try:
            obj = self.store.get("Pod", namespace, pod)
        except NotFound:
            return None
        containers = (obj.get("spec") or {}).get("containers") or []
        return str(containers[0]["name"]) if containers else None

    def _admit_function(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def run(obj: dict[str, Any]) -> dict[str, Any]:
            obj = default_pod(obj)
            try:
                return dict(admit(obj, network=self.network, store=self.store))
            except StoreError:
                raise
            except Exception as exc:  # admission is another module's seam: never fatal here
                log.warning("admission failed for %s: %s", obj["metadata"].get("name"), exc)
                return obj

        return run


def with_addresses(pod: Obj, pr: PodRuntime) -> Obj:
    """The pod as its containers' downward API sees it: with the IPs the kubelet gave it.

    A container's first start happens in the pass that allocates the pod's IP,
    before that pass writes the status, and a real kubelet knows the sandbox's IP
    before it starts any container: ``fieldRef: status.podIP`` must not read empty.
    """
    status = {**(pod.get("status") or {}), "podIP": pr.pod_ip, "hostIP": pr.host_ip}
    return {**pod, "status": status}


def unpullable_patterns(scenario: Any) -> tuple[str, ...]:
    """``scenario.images.unpullable`` as a tuple (exact names or glob patterns)."""
    if scenario is None:
        return ()
    images = scenario.get("images") if isinstance(scenario, Mapping) else getattr(
        scenario, "images", None)
    if not images:
        return ()
    raw = images.get("unpullable") if isinstance(images, Mapping) else getattr(
        images, "unpullable", ())
    return tuple(str(p) for p in raw or ())


def image_unpullable(image: str, patterns: tuple[str, ...]) -> bool:
    return any(image == p or fnmatch.fnmatchcase(image, p) for p in patterns)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
