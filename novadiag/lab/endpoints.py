"""The endpoint controllers: EndpointSlices (``discovery.k8s.io/v1``) and Endpoints (v1).

A real control plane runs two controllers that turn "Service with a selector" plus
"pods matching it" into address lists; DNS (headless answers, per-pod hostnames),
kube-proxy and novadiag's live verdicts (``no-endpoints``) read those lists, never
the pods. The lab keeps the same indirection so each of those readers sees what it
would see in a cluster:

- every Service with a selector (and not ``ExternalName``) gets one EndpointSlice per
  distinct set of resolved ports, labelled ``kubernetes.io/service-name`` and
  ``endpointslice.kubernetes.io/managed-by``, owned by the Service, named
  ``<service>-<5 random chars>`` like ``generateName``; and one Endpoints object of
  the Service's name;
- an endpoint is a pod of the namespace whose labels match, that has an IP and is
  not terminal; ``conditions.ready`` follows the pod's Ready condition (or is true
  for all when ``publishNotReadyAddresses``); ``terminating`` when it is being
  deleted;
- ``hostname`` is set when the pod has ``spec.hostname`` and its ``spec.subdomain``
  is the Service's name (StatefulSet pods behind their governing Service);
- a named ``targetPort`` is resolved against each pod's container ports; a pod that
  lacks the name is left out of that port's set, as in a cluster;
- ``endpoints`` is always a list (``[]`` when empty): the official Python client
  rejects ``null`` there.

Objects are written only when their content changes, so a steady lab is quiet.
Selector-less Services keep whatever Endpoints their owner wrote.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from novadiag.lab.store import NotFound, Obj, Store

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
ENDPOINTS_MANAGED_BY = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER = "endpoint-controller"
NODE_NAME = "lab-node"
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

PortKey = tuple[tuple[str, int, str], ...]


def random_suffix(length: int = 5) -> str:
    """The random tail ``generateName`` appends (the API server's alphabet)."""
    return "".join(random.choice(SUFFIX_ALPHABET) for _ in range(length))


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """Equality-based selector match; an empty selector selects nothing (Services)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def is_endpoint_candidate(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")


def resolve_target_port(port: Mapping[str, Any], pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target:
                return int(cport["containerPort"])
    return None


def pod_port_key(service: Obj, pod: Obj) -> PortKey:
    key = []
    for port in (service.get("spec") or {}).get("ports") or []:
        number = resolve_target_port(port, pod)
        if number is not None:
            key.append((str(port.get("name") or ""), number, str(port.get("protocol") or "TCP")))
    return tuple(key)


def managed(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def endpoint_entry(service: Obj, pod: Obj) -> dict[str, Any]:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    terminating = bool(meta.get("deletionTimestamp"))
    ready = (pod_ready(pod) or bool((service.get("spec") or {}).get("publishNotReadyAddresses")))
    entry: dict[str, Any] = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": ready and not terminating, "serving": ready,
                       "terminating": terminating},
    }
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        entry["hostname"] = spec["hostname"]
    entry["nodeName"] = spec.get("nodeName") or NODE_NAME
    entry["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"),
                          "name": meta["name"], "uid": meta.get("uid")}
    return entry


def group_endpoints(service: Obj, pods: Iterable[Obj]) -> dict[PortKey, list[dict[str, Any]]]:
    """Endpoints of a Service, grouped by the ports they resolve to."""
    selector = (service.get("spec") or {}).get("selector")
    groups: dict[PortKey, list[dict[str, Any]]] = defaultdict(list)
    for pod in pods:
        labels = pod["metadata"].get("labels")
        if is_endpoint_candidate(pod) and selector_matches(selector, labels):
            key = pod_port_key(service, pod)
            if key:
                groups[key].append(endpoint_entry(service, pod))
    for entries in groups.values():
        entries.sort(key=lambda e: (e["targetRef"]["name"], e["addresses"][0]))
    return dict(groups)


def _owner(service: Obj) -> list[dict[str, Any]]:
    meta = service["metadata"]
    return [{"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta.get("uid"),
             "controller": True, "blockOwnerDeletion": True}]


def desired_slices(service: Obj, groups: Mapping[PortKey, list[dict[str, Any]]]
                   ) -> list[dict[str, Any]]:
    """Slice bodies (without names); one empty slice when nothing matches."""
    meta = service["metadata"]
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"],
              SLICE_MANAGED_BY: SLICE_CONTROLLER}
    bodies = []
    for key in sorted(groups) or [()]:
        bodies.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": meta["namespace"], "labels": labels,
                         "generateName": f"{meta['name']}-", "ownerReferences": _owner(service)},
            "addressType": "IPv4",
            "endpoints": groups.get(key, []),
        })
        if key:
            bodies[-1]["ports"] = [{"name": n, "port": p, "protocol": proto} for n, p, proto in key]
    return bodies


def desired_endpoints_object(service: Obj, groups: Mapping[PortKey, list[dict[str, Any]]]
                             ) -> dict[str, Any]:
    meta = service["metadata"]
    subsets = []
    for key in sorted(groups):
        ready: list[dict[str, Any]] = []
        not_ready: list[dict[str, Any]] = []
        for entry in groups[key]:
            address = {"ip": entry["addresses"][0], "nodeName": entry["nodeName"],
                       "targetRef": entry["targetRef"]}
            if "hostname" in entry:
                address["hostname"] = entry["hostname"]
            (ready if entry["conditions"]["ready"] else not_ready).append(address)
        subset: dict[str, Any] = {"ports": [{"name": n, "port": p, "protocol": proto}
                                            for n, p, proto in key]}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subsets.append(subset)
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                     "labels": {**(meta.get("labels") or {}),
                                ENDPOINTS_MANAGED_BY: ENDPOINTS_CONTROLLER}},
    }
    if subsets:
        body["subsets"] = subsets
    return body


class EndpointsController:
    """Keeps the Store's EndpointSlices and Endpoints in step with Services and pods."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sync(self) -> int:
        """One full pass; returns the number of objects written or deleted."""
        services, _ = self.store.list("Service")
        pods, _ = self.store.list("Pod")
        slices, _ = self.store.list("EndpointSlice")
        pods_by_ns: dict[str, list[Obj]] = defaultdict(list)
        for pod in pods:
            pods_by_ns[pod["metadata"].get("namespace")].append(pod)
        slices_by_svc: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for s in slices:
            labels = s["metadata"].get("labels") or {}
            if labels.get(SLICE_MANAGED_BY) == SLICE_CONTROLLER and SERVICE_NAME_LABEL in labels:
                slices_by_svc[(s["metadata"]["namespace"], labels[SERVICE_NAME_LABEL])].append(s)
        writes = 0
        live: set[tuple[str, str]] = set()
        for svc in services:
            if not managed(svc):
                continue
            key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
            live.add(key)
            groups = group_endpoints(svc, pods_by_ns.get(key[0], []))
            writes += self._sync_slices(desired_slices(svc, groups), slices_by_svc.get(key, []))
            writes += self._sync_endpoints(desired_endpoints_object(svc, groups))
        writes += self._delete_orphans(slices_by_svc, live)
        return writes

    def _sync_slices(self, desired: list[dict[str, Any]], existing: list[Obj]) -> int:
        writes = 0
        by_ports = {_ports_of(s): s for s in existing}
        unused = {s["metadata"]["name"]: s for s in existing}
        pending = []
        for body in desired:
            match = by_ports.get(_ports_of(body))
            if match is not None and match["metadata"]["name"] in unused:
                unused.pop(match["metadata"]["name"])
                writes += self._update(match, body)
            else:
                pending.append(body)
        for body in pending:
            if unused:
                writes += self._update(unused.pop(next(iter(unused))), body)
            else:
                name = body["metadata"]["generateName"] + random_suffix()
                self.store.create({**body, "metadata": {**body["metadata"], "name": name}})
                writes += 1
        for name, obj in unused.items():
            writes += self._delete("EndpointSlice", obj["metadata"]["namespace"], name)
        return writes

    def _sync_endpoints(self, body: dict[str, Any]) -> int:
        meta = body["metadata"]
        try:
            current = self.store.get("Endpoints", meta["namespace"], meta["name"])
        except NotFound:
            self.store.create(body)
            return 1
        return self._update(current, body)

    def _update(self, current: Obj, body: dict[str, Any]) -> int:
        fields = [k for k in body if k not in ("apiVersion", "kind", "metadata")]
        wanted_meta = {k: v for k, v in body["metadata"].items()
                       if k in ("labels", "ownerReferences")}
        same = all(current.get(k) == body.get(k) for k in fields) and all(
            current["metadata"].get(k) == v for k, v in wanted_meta.items())
        absent = [k for k in ("subsets", "ports") if k in current and k not in body]
        if same and not absent:
            return 0

        def change(draft: dict[str, Any]) -> None:
            for k in absent:
                draft.pop(k, None)
            for name in fields:
                draft[name] = body[name]
            draft["metadata"].update(wanted_meta)

        meta = current["metadata"]
        try:
            self.store.mutate(current["kind"], meta.get("namespace"), meta["name"], change)
        except NotFound:
            return 0
        return 1

    def _delete_orphans(self, slices_by_svc: Mapping[tuple[str, str], list[Obj]],
                        live: set[tuple[str, str]]) -> int:
        writes = 0
        for key, slices in slices_by_svc.items():
            if key not in live:
                for s in slices:
                    writes += self._delete("EndpointSlice", key[0], s["metadata"]["name"])
        endpoints, _ = self.store.list("Endpoints")
        for ep in endpoints:
            meta = ep["metadata"]
            mine = (meta.get("labels") or {}).get(ENDPOINTS_MANAGED_BY) == ENDPOINTS_CONTROLLER
            if mine and (meta["namespace"], meta["name"]) not in live:
                writes += self._delete("Endpoints", meta["namespace"], meta["name"])
        return writes

    def _delete(self, kind: str, namespace: str, name: str) -> int:
        try:
            self.store.delete(kind, namespace, name)
        except NotFound:
            return 0
        return 1


def _ports_of(slice_body: Mapping[str, Any]) -> PortKey:
    return tuple((str(p.get("name") or ""), int(p["port"]), str(p.get("protocol") or "TCP"))
                 for p in slice_body.get("ports") or [])
