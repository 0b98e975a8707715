"""The lab API server's resource registry and the discovery documents built from it.

A real API server learns its resources from compiled-in types; clients learn them
from discovery (``/api``, ``/apis``, ``/apis/<group>/<version>``), and ``kubectl``
maps a short name such as ``svc`` or ``deploy`` to a URL only through those
documents. One table here drives both sides: the router resolves a URL to a
:class:`Resource`, and the discovery handlers describe the same table, so a kind the
router serves is always a kind ``kubectl`` can find (and nothing else is).

Objects live in the Store under their Kind name, so :attr:`Resource.kind` is also the
Store key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "delete", "deletecollection", "patch", "update")
ALL_VERBS = tuple(sorted(READ_VERBS + WRITE_VERBS))
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-novadiag-lab",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    """One REST resource: where it lives, what it is called, what may be done to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", "log", "exec"
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


SUBRESOURCE_VERBS = {"log": ["get"], "exec": ["create", "get"]}
_ALL = ("all",)
_STATUS = ("status",)
_SCALE = ("scale", "status")

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",),
             ("create", "delete", "get", "list", "patch", "update", "watch"), _STATUS),
    Resource("", "v1", "nodes", "Node", False, ("no",), subresources=_STATUS),
    Resource("", "v1", "pods", "Pod", True, ("po",), subresources=("exec", "log", "status"),
             categories=_ALL),
    Resource("", "v1", "services", "Service", True, ("svc",),
             ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
             _STATUS, _ALL),
    Resource("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",),
             subresources=_STATUS),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), subresources=_SCALE,
             categories=_ALL),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), subresources=_SCALE,
             categories=_ALL),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), subresources=_STATUS,
             categories=_ALL),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), subresources=_SCALE,
             categories=_ALL),
    Resource("batch", "v1", "jobs", "Job", True, subresources=_STATUS, categories=_ALL),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("cj",), subresources=_STATUS,
             categories=_ALL),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), subresources=_STATUS),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    Resource("gateway.networking.k8s.io", "v1", "gateways", "Gateway", True, ("gtw",),
             subresources=_STATUS),
    Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", True,
             subresources=_STATUS),
    Resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute", True,
             subresources=_STATUS),
    Resource("gateway.networking.k8s.io", "v1alpha2", "tlsroutes", "TLSRoute", True,
             subresources=_STATUS),
    Resource("gateway.networking.k8s.io", "v1alpha2", "tcproutes", "TCPRoute", True,
             subresources=_STATUS),
    Resource("gateway.networking.k8s.io", "v1beta1", "referencegrants", "ReferenceGrant", True,
             ("refgrant",)),
    Resource("networking.istio.io", "v1beta1", "virtualservices", "VirtualService", True, ("vs",)),
    Resource("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule", True, ("dr",)),
    Resource("networking.istio.io", "v1beta1", "serviceentries", "ServiceEntry", True, ("se",)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
             "SelfSubjectAccessReview", False, verbs=("create",)),
)
VIRTUAL_KINDS = frozenset({"SelfSubjectAccessReview"})  # answered, never stored

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {r.kind: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at ``/api[s]/<group>/<version>/.../<plural>``, if any."""
    return _BY_PATH.get((group, version, plural))


def by_kind(kind: str) -> Resource | None:
    return _BY_KIND.get(kind)


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in registry order."""
    seen: list[tuple[str, str]] = []
    for res in RESOURCES:
        if (res.group, res.version) not in seen:
            seen.append((res.group, res.version))
    return seen


def is_served_group_version(group: str, version: str) -> bool:
    return (group, version) in group_versions()


# -- discovery documents ---------------------------------------------------------------------

def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the legacy core group."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: every named group once, with all its served versions (the Gateway API serves three)."""
    names = dict.fromkeys(group for group, _ in group_versions() if group)
    groups = [api_group(name) for name in names]
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")} for g in groups if g]}


def api_group(group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``: the first version registered is the preferred one."""
    versions = [v for g, v in group_versions() if g == group]
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs[0],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``/apis/<group>/<version>``: resources with their subresources."""
    members = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not members:
        return None
    entries: list[dict[str, Any]] = []
    for res in members:
        entry: dict[str, Any] = {
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": list(res.verbs),
        }
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        entries.append(entry)
        entries.extend(_subresource_entries(res))
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": entries}


def _subresource_entries(res: Resource) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for sub in res.subresources:
        entry: dict[str, Any] = {
            "name": f"{res.plural}/{sub}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": SUBRESOURCE_VERBS.get(sub, ["get", "patch", "update"]),
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        elif sub == "exec":
            entry["kind"] = "PodExecOptions"
        entries.append(entry)
    return entries


def openapi_v3_index() -> dict[str, Any]:
    """``GET /openapi/v3``: one document per group-version, as client-go expects."""
    paths = {}
    for group, version in group_versions():
        key = f"apis/{group}/{version}" if group else "api/v1"
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=lab{version}"}
    return {"paths": paths}


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document for one group-version.

    ``kubectl apply``/``create`` (with the default ``--validate=strict``) ask OpenAPI v3
    whether the server validates fields itself: if the PATCH operation of the kind
    lists a ``fieldValidation`` query parameter, kubectl skips client-side schema
    validation (which would need the full schemas) and leaves it to the server. The
    PATCH operations deliberately carry no request body, so kubectl computes
    strategic merge patches from its compiled-in types instead of from schemas this
    document does not have.
    """
    members = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not members:
        return None
    paths: dict[str, Any] = {}
    for res in members:
        base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        scope = "/namespaces/{namespace}" if res.namespaced else ""
        gvk = {"group": group, "version": version, "kind": res.kind}
        params = [
            {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        patch_op = {
            "operationId": f"patch{res.kind}",
            "parameters": params,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{base}{scope}/{res.plural}/{{name}}"] = {"patch": patch_op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (novadiag lab)", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
