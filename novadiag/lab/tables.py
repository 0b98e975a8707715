"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and
prints whatever columns the server sends; a server that answers with a plain list
gets only ``NAME AGE``. People debugging the lab look at ``kubectl get pods`` for
``CrashLoopBackOff`` and restart counts, so the lab prints the columns kubectl
users know for the kinds it serves (wide-only columns have priority 1). Rows
carry ``PartialObjectMetadata`` so kubectl can add ``NAMESPACE`` (``-A``) and
``--show-labels`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from novadiag.lab.resources import Resource

Obj = dict[str, Any]
Cell = str | int
Column = tuple[str, str, int]  # name, type, priority
TABLE_ACCEPT = "as=Table"


def to_table(resource: Resource, listing: Obj) -> Obj:
    """The Table for a list document (or a one-item list for a single get)."""
    columns, row_of = _PRINTERS.get(resource.kind, (_NAME_AGE, _name_age))
    now = datetime.now(UTC)
    rows = []
    for obj in listing.get("items") or []:
        rows.append({
            "cells": [_name(obj), *row_of(obj, now)],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj.get("metadata") or {}},
        })
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
    ] + [
        {"name": name, "type": kind, "format": "", "description": name, "priority": priority}
        for name, kind, priority in columns
    ]
    meta = {k: v for k, v in (listing.get("metadata") or {}).items()
            if k in ("resourceVersion", "continue", "remainingItemCount")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": definitions, "rows": rows}


def human_age(timestamp: str | None, now: datetime) -> str:
    """kubectl's ``HumanDuration`` of the time since ``timestamp``."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = int((now - then).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _age(obj: Obj, now: datetime) -> str:
    return human_age((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


_NAME_AGE: list[Column] = [("Age", "string", 0)]


def _name_age(obj: Obj, now: datetime) -> list[Cell]:
    return [_age(obj, now)]


def _pod_status(obj: Obj) -> str:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = _status(obj)
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        terminated = (state.get("terminated") or {}).get("reason")
        if waiting:
            reason = str(waiting)
        elif terminated and reason not in ("Succeeded", "Failed"):
            reason = str(terminated)
    return reason


def _pod_row(obj: Obj, now: datetime) -> list[Cell]:
    statuses = _status(obj).get("containerStatuses") or []
    total = len(_spec(obj).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [f"{ready}/{total}", _pod_status(obj), restarts, _age(obj, now),
            _status(obj).get("podIP") or "<none>", _spec(obj).get("nodeName") or "<none>",
            "<none>", "<none>"]


_POD: list[Column] = [("Ready", "string", 0), ("Status", "string", 0),
                      ("Restarts", "integer", 0), ("Age", "string", 0), ("IP", "string", 1),
                      ("Node", "string", 1), ("Nominated Node", "string", 1),
                      ("Readiness Gates", "string", 1)]


def _service_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    ports = []
    for port in spec.get("ports") or []:
        node = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node}/{port.get('protocol', 'TCP')}")
    external = spec.get("externalName") if spec.get("type") == "ExternalName" else None
    ingress = (_status(obj).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        external = ",".join(str(i.get("ip") or i.get("hostname")) for i in ingress)
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>",
            external or "<none>", ",".join(ports) or "<none>", _age(obj, now),
            selector or "<none>"]


_SERVICE: list[Column] = [("Type", "string", 0), ("Cluster-IP", "string", 0),
                          ("External-IP", "string", 0), ("Port(s)", "string", 0),
                          ("Age", "string", 0), ("Selector", "string", 1)]


def _containers(obj: Obj) -> tuple[str, str]:
    spec = ((_spec(obj).get("template") or {}).get("spec") or {})
    containers = spec.get("containers") or []
    return (",".join(str(c.get("name")) for c in containers),
            ",".join(str(c.get("image")) for c in containers))


def _selector_text(obj: Obj) -> str:
    labels = ((_spec(obj).get("selector") or {}).get("matchLabels") or {})
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _deployment_row(obj: Obj, now: datetime) -> list[Cell]:
    status = _status(obj)
    names, images = _containers(obj)
    return [f"{status.get('readyReplicas', 0)}/{_spec(obj).get('replicas', 1)}",
            int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0)),
            _age(obj, now), names, images, _selector_text(obj)]


_DEPLOYMENT: list[Column] = [("Ready", "string", 0), ("Up-to-date", "integer", 0),
                             ("Available", "integer", 0), ("Age", "string", 0),
                             ("Containers", "string", 1), ("Images", "string", 1),
                             ("Selector", "string", 1)]


def _statefulset_row(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(obj)
    ready = _status(obj).get("readyReplicas", 0)
    return [f"{ready}/{_spec(obj).get('replicas', 1)}", _age(obj, now), names, images]


_STATEFULSET: list[Column] = [("Ready", "string", 0), ("Age", "string", 0),
                              ("Containers", "string", 1), ("Images", "string", 1)]


def _replicaset_row(obj: Obj, now: datetime) -> list[Cell]:
    status = _status(obj)
    return [int(_spec(obj).get("replicas", 1)), int(status.get("replicas", 0)),
            int(status.get("readyReplicas", 0)), _age(obj, now)]


_REPLICASET: list[Column] = [("Desired", "integer", 0), ("Current", "integer", 0),
                             ("Ready", "integer", 0), ("Age", "string", 0)]


def _daemonset_row(obj: Obj, now: datetime) -> list[Cell]:
    status = _status(obj)
    return [int(status.get("desiredNumberScheduled", 0)),
            int(status.get("currentNumberScheduled", 0)), int(status.get("numberReady", 0)),
            int(status.get("updatedNumberScheduled", 0)), int(status.get("numberAvailable", 0)),
            _age(obj, now)]


_DAEMONSET: list[Column] = [("Desired", "integer", 0), ("Current", "integer", 0),
                            ("Ready", "integer", 0), ("Up-to-date", "integer", 0),
                            ("Available", "integer", 0), ("Age", "string", 0)]


def _job_row(obj: Obj, now: datetime) -> list[Cell]:
    status = _status(obj)
    state = "Complete" if status.get("succeeded") else (
        "Failed" if status.get("failed") and not status.get("active") else "Running")
    return [state, f"{status.get('succeeded', 0)}/{_spec(obj).get('completions', 1)}",
            _age(obj, now)]


_JOB: list[Column] = [("Status", "string", 0), ("Completions", "string", 0),
                      ("Age", "string", 0)]


def _cronjob_row(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    last = status.get("lastScheduleTime")
    return [str(spec.get("schedule", "")), "True" if spec.get("suspend") else "False",
            len(status.get("active") or []), human_age(last, now) if last else "<none>",
            _age(obj, now)]


_CRONJOB: list[Column] = [("Schedule", "string", 0), ("Suspend", "string", 0),
                          ("Active", "integer", 0), ("Last Schedule", "string", 0),
                          ("Age", "string", 0)]


def _namespace_row(obj: Obj, now: datetime) -> list[Cell]:
    return [str(_status(obj).get("phase", "Active")), _age(obj, now)]


def _node_row(obj: Obj, now: datetime) -> list[Cell]:
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in _status(obj).get("conditions") or [])
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    version = (_status(obj).get("nodeInfo") or {}).get("kubeletVersion", "")
    return ["Ready" if ready else "NotReady", ",".join(roles) or "<none>", _age(obj, now),
            str(version)]


def _data_row(obj: Obj, now: datetime) -> list[Cell]:
    return [len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


def _secret_row(obj: Obj, now: datetime) -> list[Cell]:
    return [str(obj.get("type", "Opaque")), len(obj.get("data") or {}), _age(obj, now)]


def _endpoints_row(obj: Obj, now: datetime) -> list[Cell]:
    addresses = []
    for subset in obj.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for address in subset.get("addresses") or []:
            addresses += [f"{address.get('ip')}:{p}" if p else str(address.get("ip"))
                          for p in ports]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..."
                                       if len(addresses) > 3 else "")
    return [shown or "<none>", _age(obj, now)]


def _slice_row(obj: Obj, now: datetime) -> list[Cell]:
    ports = ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..."
                                       if len(addresses) > 3 else "")
    return [str(obj.get("addressType", "")), ports, shown or "<unset>", _age(obj, now)]


def _pvc_row(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    capacity = (status.get("capacity") or {}).get("storage", "")
    return [str(status.get("phase", "Pending")), str(spec.get("volumeName", "")),
            str(capacity), ",".join(spec.get("accessModes") or []),
            str(spec.get("storageClassName") or "<unset>"), _age(obj, now)]


def _netpol_row(obj: Obj, now: datetime) -> list[Cell]:
    labels = ((_spec(obj).get("podSelector") or {}).get("matchLabels") or {})
    return [",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>",
            _age(obj, now)]


def _event_row(obj: Obj, now: datetime) -> list[Cell]:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or (
        obj.get("metadata") or {}).get("creationTimestamp")
    return [human_age(last, now), str(obj.get("type", "")), str(obj.get("reason", "")),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            str(obj.get("message", ""))]


_PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, datetime], list[Cell]]]] = {
    "Pod": (_POD, _pod_row),
    "Service": (_SERVICE, _service_row),
    "Deployment": (_DEPLOYMENT, _deployment_row),
    "StatefulSet": (_STATEFULSET, _statefulset_row),
    "ReplicaSet": (_REPLICASET, _replicaset_row),
    "DaemonSet": (_DAEMONSET, _daemonset_row),
    "Job": (_JOB, _job_row),
    "CronJob": (_CRONJOB, _cronjob_row),
    "Namespace": ([("Status", "string", 0), ("Age", "string", 0)], _namespace_row),
    "Node": ([("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
              ("Version", "string", 0)], _node_row),
    "ConfigMap": ([("Data", "integer", 0), ("Age", "string", 0)], _data_row),
    "Secret": ([("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
               _secret_row),
    "Endpoints": ([("Endpoints", "string", 0), ("Age", "string", 0)], _endpoints_row),
    "EndpointSlice": ([("AddressType", "string", 0), ("Ports", "string", 0),
                       ("Endpoints", "string", 0), ("Age", "string", 0)], _slice_row),
    "PersistentVolumeClaim": ([("Status", "string", 0), ("Volume", "string", 0),
                               ("Capacity", "string", 0), ("Access Modes", "string", 0),
                               ("StorageClass", "string", 0), ("Age", "string", 0)], _pvc_row),
    "NetworkPolicy": ([("Pod-Selector", "string", 0), ("Age", "string", 0)], _netpol_row),
    "Event": ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
               ("Object", "string", 0), ("Message", "string", 0)], _event_row),
}
