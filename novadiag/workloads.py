"""Workloads: the things that run containers and therefore name other hosts.

A cluster holds the same pod template several times over: a Deployment owns
ReplicaSets, which own Pods; a CronJob owns Jobs, which own Pods. novadiag counts
each template once, under the object a person edits (the Deployment, the CronJob),
so one mis-typed env var is one broken edge, not one per replica. Bare Pods
(no controlling owner) are workloads of their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.model import WORKLOAD_KINDS, ObjectRef, RawObject

# A controller of one of these kinds means the object is counted under its owner.
_OWNED_BY = {
    "ReplicaSet": {"Deployment"},
    "Job": {"CronJob"},
    "Pod": {"ReplicaSet", "StatefulSet", "DaemonSet", "Job"},
}


@dataclass(frozen=True)
class Workload:
    """One pod template and the object that owns it."""

    ref: ObjectRef
    pod_spec: Mapping[str, Any]
    pod_labels: Mapping[str, str]
    pod_annotations: Mapping[str, str]
    replicas: int
    service_name: str | None = None

    @property
    def namespace(self) -> str:
        return self.ref.namespace or "default"

    @property
    def host_network(self) -> bool:
        return bool(self.pod_spec.get("hostNetwork"))


def pod_template(obj: RawObject) -> Mapping[str, Any] | None:
    """The pod template (``metadata`` + ``spec``) of any workload kind, or None."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind == "CronJob":
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        template = job_spec.get("template")
    else:
        template = spec.get("template")
    return template if isinstance(template, Mapping) else None


def desired_replicas(obj: RawObject) -> int:
    """How many pods the object asks for; DaemonSets and Pods count as one."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        value = spec.get("replicas", 1)
        return value if isinstance(value, int) else 1
    if kind == "Job":
        value = spec.get("parallelism", 1)
        return value if isinstance(value, int) else 1
    if kind == "CronJob":
        return 0 if spec.get("suspend") else 1
    if kind == "Pod":
        phase = (obj.get("status") or {}).get("phase")
        return 0 if phase in ("Succeeded", "Failed") else 1
    return 1


def is_owned(obj: RawObject) -> bool:
    """True when a controller of a kind we already count owns this object."""
    owners = _OWNED_BY.get(str(obj.get("kind")))
    if not owners:
        return False
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(owner, Mapping) and owner.get("kind") in owners:
            return True
    return False


def workload_from(obj: RawObject) -> Workload | None:
    """Convert one raw workload object; None when it has no usable pod template."""
    template = pod_template(obj)
    if template is None:
        return None
    meta = obj.get("metadata") or {}
    tmeta = template.get("metadata") or {}
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        return None
    service_name = (obj.get("spec") or {}).get("serviceName") if obj.get("kind") == "StatefulSet" else None
    return Workload(
        ref=ObjectRef(str(obj.get("kind")), meta.get("namespace") or "default", str(meta.get("name"))),
        pod_spec=spec,
        pod_labels={str(k): str(v) for k, v in (tmeta.get("labels") or {}).items()},
        pod_annotations={str(k): str(v) for k, v in (tmeta.get("annotations") or {}).items()},
        replicas=desired_replicas(obj),
        service_name=service_name if isinstance(service_name, str) else None,
    )


def iter_workloads(objects_by_kind: Mapping[str, tuple[RawObject, ...]]) -> Iterator[Workload]:
    """Every workload once, owners before the objects they would hide."""
    for kind in WORKLOAD_KINDS:
        for obj in objects_by_kind.get(kind, ()):
            if is_owned(obj):
                continue
            workload = workload_from(obj)
            if workload is not None:
                yield workload


# Where a container holds exec handlers, and whether the kubelet expands ``$(VAR)`` in them: it does
# for probes, from the container's literal ``env`` values only (``ExpandContainerCommandOnlyStatic``),
# and runs lifecycle hooks as written.
EXEC_HANDLERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("livenessProbe", ("livenessProbe",), True),
    ("readinessProbe", ("readinessProbe",), True),
    ("startupProbe", ("startupProbe",), True),
    ("postStart", ("lifecycle", "postStart"), False),
    ("preStop", ("lifecycle", "preStop"), False),
)


def exec_action(container: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The ``exec`` block at ``path`` of a container (an ``EXEC_HANDLERS`` path) when it holds a command list."""
    handler: object = container
    for key in path:
        handler = handler.get(key) if isinstance(handler, Mapping) else None
    action = handler.get("exec") if isinstance(handler, Mapping) else None
    return action if isinstance(action, dict) and isinstance(action.get("command"), list) else None
