"""Builders for the planner's tests: tiny clusters as raw objects, audited statically.

Imported by the ``test_plan_*`` modules (pytest puts this directory on the path);
it holds no tests itself.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from novadiag.model import SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.planning.simulate import merge, strategic_merge
from novadiag.report.core import Report
from novadiag.snapshot import build_snapshot

NOVA = Path(__file__).resolve().parents[2] / "novadiag" / "lab" / "scenarios" / "nova" / "manifests"


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def workload(
    ns: str,
    name: str,
    env: Mapping[str, str] | list[dict[str, Any]] | None = None,
    *,
    kind: str = "Deployment",
    replicas: int = 1,
    env_from: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    claim_templates: list[str] | None = None,
    image: str = "example/app:1",
    extra_meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    entries = [{"name": k, "value": v} for k, v in env.items()] if isinstance(env, Mapping) else list(env or [])
    container: dict[str, Any] = {"name": name, "image": image, "env": entries, "ports": [{"containerPort": 8080}]}
    if env_from:
        container["envFrom"] = env_from
    pod_spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        pod_spec["volumes"] = volumes
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, **(extra_meta or {})},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }
    if kind == "StatefulSet":
        obj["spec"]["serviceName"] = name
    if claim_templates:
        obj["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": c}, "spec": {"accessModes": ["ReadWriteOnce"]}} for c in claim_templates
        ]
    return obj


def service(ns: str, name: str, port: int = 80, *, selector: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": selector or name}, "ports": [{"port": port, "targetPort": 8080}], **spec},
    }


def config_map(ns: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": dict(data)}


def secret(ns: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "stringData": dict(data)}


def audit_objects(*objects: Mapping[str, Any]) -> Report:
    """The static audit of a cluster made of these objects (namespaces added as needed)."""
    items = [copy.deepcopy(dict(o)) for o in objects]
    declared = {o["metadata"]["name"] for o in items if o["kind"] == "Namespace"}
    for ns in sorted({o["metadata"].get("namespace") for o in items} - declared - {None}):
        items.append(namespace(ns))
    snap = build_snapshot(items, SourceInfo("manifests"))  # type: ignore[arg-type]
    return audit_snapshot(snap)


class FakeClient:
    """An in-memory API for the runner: objects are ready as soon as they exist.

    ``fail_ready`` names objects that never become ready; ``secrets`` hold real
    (base64) values, like a cluster's.
    """

    context_name = "fake"
    host = "https://fake.invalid"

    def __init__(self, objects: list[dict[str, Any]], *, fail_ready: set[str] | None = None) -> None:
        self.store: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str | None, str]] = []
        self.fail_ready = fail_ready or set()
        for obj in objects:
            obj = copy.deepcopy(obj)
            if obj["kind"] == "Secret" and "stringData" in obj:
                data = obj.pop("stringData")
                obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
            meta = obj["metadata"]
            self.store[(obj["kind"], meta.get("namespace"), meta["name"])] = obj

    def create(self, kind: str, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        key = (kind, namespace, body["metadata"]["name"])
        assert key not in self.store, f"{key} exists"
        self.calls.append(("create", kind, namespace, key[2]))
        self.store[key] = copy.deepcopy(dict(body))
        return self.store[key]

    def patch(
        self, kind: str, namespace: str | None, name: str, body: Mapping[str, Any], *, strategic: bool = False
    ) -> dict[str, Any]:
        self.calls.append(("patch", kind, namespace, name))
        key = (kind, namespace, name)
        self.store[key] = strategic_merge(self.store[key], body) if strategic else merge(self.store[key], body)
        return self.store[key]

    def delete(self, kind: str, namespace: str | None, name: str, *, grace_seconds: int | None = 0) -> bool:
        self.calls.append(("delete", kind, namespace, name))
        if kind == "Namespace":
            for key in [k for k in self.store if k[1] == name]:
                del self.store[key]
        return self.store.pop((kind, namespace, name), None) is not None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.store.get((kind, namespace, name))
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        ready = 0 if f"{namespace}/{name}" in self.fail_ready else replicas
        obj["status"] = {"replicas": replicas, "readyReplicas": ready, "updatedReplicas": ready}
        return obj

    def list_raw(
        self, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        for (k, ns, _), obj in list(self.store.items()):
            if k == kind and (namespace is None or ns == namespace):
                yield copy.deepcopy(obj)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return base64.b64decode(self.store[("Secret", namespace, name)]["data"][key]).decode()
