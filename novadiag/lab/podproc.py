"""How one lab pod container becomes a real local process (the kubelet's side).

The kubelet resolves a container's environment as a kubelet does (service links,
``envFrom``, ``env`` with ``$(VAR)`` expansion, ``configMapKeyRef``/
``secretKeyRef``/``fieldRef``), materializes its volumes as files under the pod
directory, writes a *launch plan* (``launch.json``) and spawns the process. The
plan is read inside the pod by ``container.py``, whose PID 1 bootstrap builds the
pod's filesystem view and then either serves as the lab workload in-process or
``exec``s the container's real command (probe pods).

Why this shape, as root:
``unshare --mount --uts --pid --fork --kill-child --propagation private`` gives the
pod a private mount namespace (binding files over ``/etc`` changes nothing outside
it), its own hostname and its own PID namespace whose PID 1 is the container:
killing it (or the ``unshare`` parent, through ``--kill-child``) kills the whole
pod tree, while ``unshare`` stays in the daemon's process group, so a group kill of
the daemon still reaches every pod. The bootstrap then builds a root on a private
tmpfs whose top-level entries are recursive bind mounts of the machine's own
(``/proc`` is mounted fresh for the new PID namespace), binds the pod's
``resolv.conf`` and ``hosts`` and a ``nsswitch.conf`` with ``hosts: files dns``
over ``/etc`` (no nscd, no systemd-resolved, no mDNS), binds each volume at its
``mountPath`` and ``chroot``s into it. A ``mountPath`` that does not exist on the
machine (``/probe``) is created inside the private view only: its deepest existing
ancestor is *spliced* (a tmpfs over it, re-populated with bind mounts of its
entries), so nothing is ever created in the machine's own filesystem. All mounts
are ``mount(2)`` calls through ctypes in a single-threaded process (no ``mount``
binaries, no ``preexec_fn`` in the multi-threaded daemon), and a lab workload runs
in that same Python process (no second interpreter start), so a pod costs one
``unshare`` and one interpreter start. ``runAsUser``/``runAsNonRoot`` drop to that
uid (65534 when only ``runAsNonRoot`` is given) just before ``exec``.

Degraded mode (no root): no namespaces and no mounts. The container gets its own
process group (its pid, recorded in ``pids/``, is the group id), paths under a
volume's ``mountPath`` in ``command``/``args``/env/``workingDir`` are rewritten to
the materialized directory, and a Python container is given a ``sitecustomize``
that routes ``socket.getaddrinfo`` through the explicit stub resolver of
``container.py`` pointed at the lab DNS, so that even then no lab lookup reaches
the machine's resolver.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = Mapping[str, Any]
Lookup = Callable[[str, str, str], "dict[str, Any] | None"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOBODY = 65534
PYTHON_NAMES = re.compile(r"^python(\d+(\.\d+)?)?$")
HOST_TOOLS = frozenset(
    {"sh", "bash", "getent", "cat", "echo", "env", "sleep", "true", "false", "ls", "hostname"}
)
UNSHARE = ("unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
           "--propagation", "private")
YIELD_CPU: tuple[str, ...] = ("chrt", "--idle", "0") if shutil.which("chrt") else ()
"""Pods run under SCHED_IDLE: the lab's control plane (API server, DNS, kube-proxy, kubelet,
all in the daemon) gets the CPU first, as a real cluster reserves it on its own nodes. Without
this, 500 probe pods on 2 cores starve the lab DNS and every lookup times out. Root mode only:
in degraded mode a missing command must still fail in ``Popen`` itself."""
THIS_FILE = Path(__file__).resolve()
CONTAINER_PROGRAM = THIS_FILE.with_name("container.py")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class PodConfigError(Exception):
    """A container cannot be configured yet (CreateContainerConfigError, FailedMount)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Mount:
    source: str
    target: str
    readonly: bool = False


@dataclass
class LaunchPlan:
    """Everything the pod side needs; written as ``launch.json``."""

    argv: list[str]
    env: dict[str, str]
    cwd: str = "/"
    hostname: str = ""
    root: str = ""
    etc_files: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    uid: int | None = None
    gid: int | None = None
    pid_file: str = ""
    program: dict[str, Any] | None = None  # the lab workload's spec, run in-process
    expose: list[str] = field(default_factory=list)  # dirs a non-root uid must traverse
    launcher_mount_ns: str = field(default_factory=lambda: _mount_namespace())

    def write(self, path: Path) -> None:
        data = {**vars(self), "mounts": [vars(m) for m in self.mounts]}
        path.write_text(json.dumps(data), encoding="utf-8")  # no indent: the C encoder


def _mount_namespace() -> str:
    """The launcher's mount namespace: the pod side refuses to mount inside it."""
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""


# -- host side: what to run ------------------------------------------------------


def runs_real_command(container: Obj) -> bool:
    """Whether the container's own command runs (a Python program or a host tool)."""
    command = container.get("command") or []
    if not command:
        return False
    name = os.path.basename(str(command[0]))
    return bool(PYTHON_NAMES.match(name)) or name in HOST_TOOLS


DEGRADED_SAFE_TOOLS = frozenset({"sleep", "true", "false", "echo", "cat", "ls", "hostname"})


def degraded_refusal(container: Obj) -> str | None:
    """Why a real command cannot run in degraded mode (None: it can).

    Without a private mount namespace a non-Python program would resolve names with
    the machine's own resolver; only Python (which gets the stub-resolver shim) and
    tools that never resolve names may run.
    """
    if not runs_real_command(container):
        return None
    name = os.path.basename(str(container["command"][0]))
    if PYTHON_NAMES.match(name) or name in DEGRADED_SAFE_TOOLS:
        return None
    return (f"lab degraded mode: {name!r} would resolve names with the machine's resolver; "
            "only Python commands get the lab's explicit resolver")


def container_argv(container: Obj, env: Mapping[str, str], plan_path: Path) -> list[str]:
    """The argv a container runs: its own command, or the lab's workload program."""
    if not runs_real_command(container):
        return [sys.executable, "-I", str(CONTAINER_PROGRAM), str(plan_path)]
    argv = [expand(str(a), env) for a in [*container["command"], *(container.get("args") or [])]]
    if PYTHON_NAMES.match(os.path.basename(argv[0])):
        argv[0] = sys.executable
    return argv


def interpreter_dirs_to_expose() -> list[str]:
    """Directories on the way to the lab's Python that only root may traverse.

    An image ships its interpreter world-readable; the lab's may live under a private
    home (``/root/.pyenv``). A container that drops to a non-root uid gets those
    directories, and only those, re-exposed inside its private root (mode 0755
    tmpfs mirrors of them), so ``python3`` still starts.
    """
    found: list[str] = []
    for start in {os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix),
                  os.path.realpath(sys.prefix)}:
        path = start if os.path.isdir(start) else os.path.dirname(start)
        while path != "/":
            try:
                closed = not os.stat(path).st_mode & 0o001
            except OSError:
                closed = False
            if closed and path not in found:
                found.append(path)
            path = os.path.dirname(path)
    return sorted(found, key=lambda p: p.count("/"))


def run_as(pod: Obj, container: Obj) -> tuple[int | None, int | None]:
    """The uid/gid the container runs as (None: stay root)."""
    pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
    ctx = {**pod_ctx, **(container.get("securityContext") or {})}
    uid = ctx.get("runAsUser")
    if uid is None and ctx.get("runAsNonRoot"):
        uid = NOBODY
    gid = ctx.get("runAsGroup", uid)
    return (None if uid is None else int(uid)), (None if gid is None else int(gid))


# -- host side: environment ------------------------------------------------------


_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z0-9]+)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names replaced, ``$$`` escapes, rest kept."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, text)


def service_env(services: Sequence[Obj]) -> dict[str, str]:
    """``{SVC}_SERVICE_HOST`` and Docker-link variables for the pod's namespace."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = str(svc["metadata"]["name"]).upper().replace("-", "_")
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{str(port['name']).upper().replace('-', '_')}"] = str(
                    port["port"])
        first = ports[0]
        env[f"{name}_PORT"] = f"{str(first.get('protocol', 'TCP')).lower()}://{ip}:{first['port']}"
        for port in ports:
            proto = str(port.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{port['port']}_{proto}"
            env[prefix] = f"{proto.lower()}://{ip}:{port['port']}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(port["port"])
            env[f"{prefix}_ADDR"] = ip
    return env


def container_env(
    pod: Obj, container: Obj, *, lookup: Lookup, services: Sequence[Obj], hostname: str,
    master_service: Obj | None = None,
) -> dict[str, str]:
    """The container's environment in the kubelet's order; raises PodConfigError.

    ``master_service`` is ``default/kubernetes``: every pod gets its ``KUBERNETES_*``
    variables, whatever its namespace and even without service links, unless its own
    namespace has a Service of that name (the kubelet's rule).
    """
    namespace = str(pod["metadata"].get("namespace") or "default")
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    linked = list(services) if (pod.get("spec") or {}).get("enableServiceLinks", True) else []
    names = {str(s["metadata"]["name"]) for s in linked}
    if master_service is not None and master_service["metadata"]["name"] not in names:
        linked.append(master_service)
    env.update(service_env(linked))
    for source in container.get("envFrom") or []:
        env.update(_env_from(source, namespace, lookup))
    for var in container.get("env") or []:
        name = str(var["name"])
        if "valueFrom" in var:
            value = _value_from(var["valueFrom"], pod, namespace, lookup)
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(var.get("value") or ""), env)
    env.setdefault("HOME", "/root")
    return env


def _env_from(source: Obj, namespace: str, lookup: Lookup) -> dict[str, str]:
    prefix = str(source.get("prefix") or "")
    for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
        ref = source.get(key)
        if ref is None:
            continue
        obj = lookup(kind, namespace, str(ref.get("name")))
        if obj is None:
            if ref.get("optional"):
                return {}
            raise PodConfigError("CreateContainerConfigError",
                              f'{kind.lower()} "{ref.get("name")}" not found')
        data = object_data(obj)
        return {prefix + k: v for k, v in data.items() if ENV_NAME.match(prefix + k)}
    return {}


def _value_from(source: Obj, pod: Obj, namespace: str, lookup: Lookup) -> str | None:
    for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = source.get(key)
        if ref is None:
            continue
        obj = lookup(kind, namespace, str(ref.get("name")))
        value = None if obj is None else object_data(obj).get(str(ref.get("key")))
        if value is None and not ref.get("optional"):
            what = "not found" if obj is None else f'has no key "{ref.get("key")}"'
            raise PodConfigError("CreateContainerConfigError",
                              f'{kind.lower()} "{ref.get("name")}" {what}')
        return value
    if "fieldRef" in source:
        return field_value(pod, str(source["fieldRef"].get("fieldPath")))
    return ""


def object_data(obj: Obj) -> dict[str, str]:
    """String data of a ConfigMap or Secret (Secret ``data`` is base64)."""
    if obj.get("kind") == "Secret":
        data = {k: base64.b64decode(v).decode("utf-8", "replace")
                for k, v in (obj.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
        return data
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}


def field_value(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
        "status.podIPs": status.get("podIP"),
    }
    return str(simple.get(path) or "")


# -- host side: volumes ----------------------------------------------------------


def materialize_volumes(pod: Obj, pod_dir: Path, *, lookup: Lookup, pvc_dir: Path) -> dict[str, Path]:
    """Write each volume's files under ``pod_dir/volumes``; raises PodConfigError (FailedMount)."""
    namespace = str(pod["metadata"].get("namespace") or "default")
    paths: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume["name"])
        target = pod_dir / "volumes" / name
        if "persistentVolumeClaim" in volume:
            claim = str(volume["persistentVolumeClaim"].get("claimName"))
            target = pvc_dir / f"{namespace}_{claim}"
            target.mkdir(parents=True, exist_ok=True)
        elif "hostPath" in volume and os.path.exists(str(volume["hostPath"].get("path"))):
            target = Path(str(volume["hostPath"]["path"]))
        else:
            _fresh_dir(target)
            for rel, content, mode in _volume_files(volume, pod, namespace, lookup):
                _write_file(target / rel, content, mode)
        paths[name] = target
    return paths


def _volume_files(volume: Obj, pod: Obj, namespace: str, lookup: Lookup
                  ) -> list[tuple[str, bytes, int]]:
    sources: list[tuple[str, Obj]] = []
    for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret"), ("", "downwardAPI")):
        if key in volume:
            sources.append((kind, volume[key]))
    for source in (volume.get("projected") or {}).get("sources") or []:
        for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret"), ("", "downwardAPI")):
            if key in source:
                sources.append((kind, source[key]))
    files: list[tuple[str, bytes, int]] = []
    for kind, source in sources:
        mode = int(source.get("defaultMode", 0o644))
        if not kind:
            files += [(str(i["path"]), field_value(pod, str((i.get("fieldRef") or {})
                       .get("fieldPath"))).encode(), mode) for i in source.get("items") or []]
            continue
        files += _keyed_files(kind, source, namespace, lookup, mode)
    return files


def _keyed_files(kind: str, source: Obj, namespace: str, lookup: Lookup, mode: int
                 ) -> list[tuple[str, bytes, int]]:
    name = str(source.get("name") if kind == "ConfigMap" else source.get("secretName")
               or source.get("name"))
    obj = lookup(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return []
        raise PodConfigError("ContainerCreating",
                          f'MountVolume.SetUp failed: {kind.lower()} "{name}" not found')
    data = {k: v.encode() for k, v in object_data(obj).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    items = source.get("items")
    if not items:
        return [(k, v, mode) for k, v in data.items()]
    return [(str(i["path"]), data.get(str(i["key"]), b""), int(i.get("mode", mode)))
            for i in items]


def volume_mounts(container: Obj, volumes: Mapping[str, Path]) -> list[Mount]:
    mounts = []
    for vm in container.get("volumeMounts") or []:
        source = volumes.get(str(vm.get("name")))
        if source is None:
            continue
        if vm.get("subPath"):
            source = source / str(vm["subPath"])
        mounts.append(Mount(str(source), str(vm["mountPath"]), bool(vm.get("readOnly"))))
    return mounts


def rewrite_paths(text: str, mounts: list[Mount]) -> str:
    """Degraded mode: a path under a mountPath becomes the materialized path."""
    for mount in sorted(mounts, key=lambda m: len(m.target), reverse=True):
        target = mount.target.rstrip("/")
        if text == target or text.startswith(target + "/"):
            return mount.source + text[len(target):]
    return text


def _fresh_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o755)


def _write_file(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode & 0o777)


# -- host side: spawn ------------------------------------------------------------


def spawn(plan: LaunchPlan, *, plan_path: Path, root_mode: bool, log_path: Path,
          pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """Write the plan and start the container; its stdout and stderr go to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    plan.write(plan_path)
    with open(log_path, "ab") as log:
        if root_mode:
            argv = [*YIELD_CPU, *UNSHARE, sys.executable, "-I", str(CONTAINER_PROGRAM), "--init",
                    str(plan_path)]
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                    env={"PATH": DEFAULT_PATH}, cwd="/")
        cwd = plan.cwd if os.path.isdir(plan.cwd) else "/"
        return subprocess.Popen(plan.argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, pass_fds=pass_fds, env=plan.env,
                                cwd=cwd, process_group=0)


def exec_argv(init_pid: int, command: Sequence[str], *, uid: int | None, gid: int | None) -> list[str]:
    """``kubectl exec``: ``command`` run by ``nsenter`` in the pod's own namespaces, root and directory.

    Mount (so ``/etc/resolv.conf`` is the pod's and glibc resolves through the
    pod's search list), UTS (its hostname) and PID (it sees the pod's processes),
    the container's root and working directory, and the container's user.
    """
    argv = ["nsenter", f"--target={init_pid}", "--mount", "--uts", "--pid", "--root", "--wd"]
    if uid is not None:
        argv += [f"--setgid={gid if gid is not None else uid}", f"--setuid={uid}"]
    return [*argv, "--", *command]


SITECUSTOMIZE = """\
# written by the novadiag lab (degraded mode): lab pods never use the machine's resolver
import importlib.util as _u, json as _j, os as _o, sys as _s
_spec = _u.spec_from_file_location("_lab_container", _o.environ["LAB_CONTAINER_PROGRAM"])
_m = _u.module_from_spec(_spec); _spec.loader.exec_module(_m)
_m.install_stub_resolver(_j.loads(_o.environ["LAB_DEGRADED_RESOLVER"]))
_s.stderr.write("lab degraded mode: name lookups use an explicit resolver for the lab DNS\\n")
"""


def degrade_plan(plan: LaunchPlan, *, pod_dir: Path, resolver: Mapping[str, Any]) -> LaunchPlan:
    """Adapt a plan for degraded mode: rewritten paths and the stub-resolver shim."""
    env = {k: rewrite_paths(v, plan.mounts) for k, v in plan.env.items()}
    argv = [rewrite_paths(a, plan.mounts) for a in plan.argv]
    if argv and argv[0] == sys.executable and CONTAINER_PROGRAM.as_posix() not in argv:
        shim = pod_dir / "sitecustomize"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
        env["LAB_CONTAINER_PROGRAM"] = str(CONTAINER_PROGRAM)
        env["LAB_DEGRADED_RESOLVER"] = json.dumps(dict(resolver))
    return LaunchPlan(argv=argv, env=env, cwd=rewrite_paths(plan.cwd, plan.mounts),
                      hostname=plan.hostname, root=plan.root, mounts=plan.mounts,
                      pid_file=plan.pid_file, program=plan.program)
