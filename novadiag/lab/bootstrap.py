"""What every cluster holds before anyone applies anything, and keeps holding.

A real control plane publishes, and keeps republishing, a few objects that
tools and audits count on:

- the ``default/kubernetes`` Service: the first address of the Service range,
  port ``https`` 443/TCP to the API server's own port, with an Endpoints and an
  EndpointSlice (named ``kubernetes``, written by the API server itself, not by
  the endpoint controllers) that point at the API server, so that
  ``kubernetes.default.svc`` resolves in the cluster DNS and connects;
- in every namespace, as soon as it exists, the ``kube-root-ca.crt`` ConfigMap
  (key ``ca.crt``: the cluster CA, from the root-ca-cert-publisher controller)
  and the ``default`` ServiceAccount (from the serviceaccounts controller);
  either is recreated when deleted, and the ConfigMap is restored when changed.

The lab's API server publishes the Service once it knows its port, and runs
:class:`NamespaceDefaults` over the Store for the rest. Both go through the
Store directly, as the controllers' writes would; a namespace that is being
deleted gets nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from novadiag.lab.network import LabNetwork
from novadiag.lab.store import AlreadyExists, Event, NotFound, Obj, Store, StoreError

log = logging.getLogger("novadiag.lab.bootstrap")

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DEFAULT_SERVICE_ACCOUNT = "default"
KUBERNETES_SERVICE = "kubernetes"
KUBERNETES_PORT = 443
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

Admit = Callable[[Obj], Obj]


# -- the default/kubernetes Service ------------------------------------------------------------


def kubernetes_service(network: LabNetwork) -> Obj:
    """The ``default/kubernetes`` Service as kube-apiserver writes it (before admission defaults)."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": KUBERNETES_SERVICE, "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": network.kubernetes_service_ip, "sessionAffinity": "None",
                 "type": "ClusterIP",
                 "ports": [{"name": "https", "port": KUBERNETES_PORT, "protocol": "TCP",
                            "targetPort": 0}]},
    }


def kubernetes_endpoints(address: str, port: int) -> tuple[Obj, Obj]:
    """The Endpoints and EndpointSlice of ``default/kubernetes``: the API server's own address."""
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": KUBERNETES_SERVICE, "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": KUBERNETES_SERVICE, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": KUBERNETES_SERVICE}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    return endpoints, endpoint_slice


def publish_kubernetes_service(store: Store, network: LabNetwork, port: int, admit: Admit) -> None:
    """Create (or point at ``port`` again) the ``default/kubernetes`` Service and its endpoints."""
    service = kubernetes_service(network)
    service["spec"]["ports"][0]["targetPort"] = port
    _create_or_replace(store, admit(service))
    for obj in kubernetes_endpoints(network.api_ip, port):
        _create_or_replace(store, obj)


def _create_or_replace(store: Store, obj: Obj) -> None:
    try:
        store.create(obj)
    except AlreadyExists:
        meta = obj["metadata"]
        current = store.get(obj["kind"], meta.get("namespace"), meta["name"])
        store.replace({**current, **{k: v for k, v in obj.items() if k != "metadata"}},
                      check_version=False)


# -- per-namespace defaults --------------------------------------------------------------------


def root_ca_configmap(namespace: str, ca_pem: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                     "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
        "data": {"ca.crt": ca_pem},
    }


def default_service_account(namespace: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}}


class NamespaceDefaults:
    """The root-ca-cert-publisher and serviceaccounts controllers over one Store.

    Writes happen in the thread that changed the Store, right after the change
    (Store subscribers run there): a client that creates a namespace finds its
    ConfigMap and ServiceAccount as soon as the create returns.
    """

    def __init__(self, store: Store, ca_pem: str) -> None:
        self.store = store
        self.ca_pem = ca_pem
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> NamespaceDefaults:
        """Subscribe, then fill in every namespace that exists already."""
        self._unsubscribe = self.store.subscribe(self._on_event)
        for namespace in self.store.list("Namespace")[0]:
            self.ensure(namespace["metadata"]["name"])
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def ensure(self, namespace: str) -> None:
        """Create what ``namespace`` lacks, and restore a changed CA ConfigMap."""
        if not self._active(namespace):
            return
        self._ensure_object(default_service_account(namespace), restore=False)
        self._ensure_object(root_ca_configmap(namespace, self.ca_pem), restore=True)

    def _on_event(self, event: Event) -> None:
        meta: dict[str, Any] = event.object.get("metadata") or {}
        if event.kind == "Namespace" and event.type == "ADDED":
            self.ensure(str(meta.get("name")))
        elif self._is_default(event) and event.type in ("DELETED", "MODIFIED"):
            self.ensure(str(meta.get("namespace")))

    @staticmethod
    def _is_default(event: Event) -> bool:
        name = (event.object.get("metadata") or {}).get("name")
        return (event.kind, name) in (("ConfigMap", ROOT_CA_CONFIGMAP),
                                      ("ServiceAccount", DEFAULT_SERVICE_ACCOUNT))

    def _active(self, namespace: str) -> bool:
        try:
            ns = self.store.get("Namespace", None, namespace)
        except NotFound:
            return False
        return (ns.get("status") or {}).get("phase") != "Terminating"

    def _ensure_object(self, wanted: Obj, *, restore: bool) -> None:
        meta = wanted["metadata"]
        try:
            current = self.store.get(wanted["kind"], meta["namespace"], meta["name"])
        except NotFound:
            current = None
        try:
            if current is None:
                self.store.create(wanted)
            elif restore and current.get("data") != wanted.get("data"):
                self.store.mutate(wanted["kind"], meta["namespace"], meta["name"],
                                  lambda draft: {**draft, "data": wanted["data"]})
        except StoreError as exc:  # lost a race with the namespace's deletion, or a client
            log.debug("%s %s/%s: %s", wanted["kind"], meta["namespace"], meta["name"], exc)
