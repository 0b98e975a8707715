"""Where a routing object's traffic comes from: its ingress controller's or Gateway data plane's namespace.

A routing edge (an Ingress backend, a route's backendRef, a VirtualService
destination) is followed by a controller, not by a pod of the object's own
namespace. Probes and generated NetworkPolicies both need that controller's
namespace, and, when they can be told, its workloads. Found from the snapshot:

- **Gateway API routes**: the parent Gateways' namespaces (``parentRefs``,
  the route's own namespace when a parent names none). In-cluster data planes
  (Istio, Envoy Gateway, kgateway) label their pods
  ``gateway.networking.k8s.io/gateway-name: <gateway>``; workloads carrying
  that label in the Gateway's namespace (or elsewhere with Envoy Gateway's
  ``gateway.envoyproxy.io/owning-gateway-namespace: <gateway namespace>``)
  are the data plane, and their namespace replaces the Gateway's.
- **Ingress**: its IngressClass (``spec.ingressClassName``, the deprecated
  ``kubernetes.io/ingress.class`` annotation, else the class annotated
  ``ingressclass.kubernetes.io/is-default-class: "true"``) gives
  ``spec.controller``; the controller's pods are found by the labels its
  project's own manifests put on them (:data:`CONTROLLER_POD_LABELS`, read
  from the public charts and static manifests):

  - ``k8s.io/ingress-nginx``: ``app.kubernetes.io/name=ingress-nginx`` and
    ``app.kubernetes.io/component=controller`` (the chart and the static deploy.yaml);
  - ``traefik.io/ingress-controller``: ``app.kubernetes.io/name=traefik``;
  - ``haproxy-ingress.github.io/controller``: ``app.kubernetes.io/name=haproxy-ingress``;
  - ``projectcontour.io/...``: ``app=envoy`` (the quickstart's Envoy DaemonSet) or
    ``app.kubernetes.io/component=envoy`` (the Bitnami chart);
  - ``ingress-controllers.konghq.com/kong``: ``app.kubernetes.io/name=kong``.

  Contour's controller name carries its namespace and name
  (``projectcontour.io/<ns>/contour``), so it is matched by prefix; the traffic
  comes from its Envoy pods, not from the Contour pod that configures them.
- **Istio VirtualService**: the ``spec.gateways`` it binds select their
  ingress pods through Istio ``Gateway`` objects, a kind the snapshot does not
  read (it shares its name with the Gateway API's); ``mesh`` means the
  callers' own sidecars. Either way the controller is unknown here.

An explicit choice (``--ingress-from NS``, ``ingress_from=``) wins over all of
this: the traffic comes from those namespaces, and the workloads found there,
if any, are the controller's.

**What a routing edge's probe checks** (:func:`route_probes`): a controller
looks its backend up by namespace and name, never through a search list, so
the probe asks for the Service's FQDN ``<svc>.<ns>.svc.<cluster domain>`` and
connects to the Service port the route names (a named port resolved to its
number), from a probe pod in the controller's namespace with the DNS settings
of the controller's pods (none known: the namespace's defaults). That checks
what the controller needs from the cluster: the Service answers in DNS from
there, and a connection on its port reaches a ready pod (through the network
policies between the two namespaces). Controllers that send to the endpoints'
pod addresses directly (ingress-nginx, Envoy) reach the same pods on the same
target port. When the controller runs in several namespaces, the first (sorted)
that holds its workloads probes. A namespace that does not exist is never
created: the edge is then not probed, and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novadiag.index import ClusterIndex, ServiceInfo
from novadiag.model import Edge, ObjectRef, RawObject, Reference
from novadiag.routing.gateway import GATEWAY_ROUTE_KINDS, gateway_parents
from novadiag.snapshot import Snapshot
from novadiag.workloads import Workload

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
OWNING_GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS = "kubernetes.io/ingress.class"

CONTROLLER_POD_LABELS: tuple[tuple[str, tuple[Mapping[str, str], ...]], ...] = (
    (
        "k8s.io/ingress-nginx",
        ({"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},),
    ),
    ("traefik.io/ingress-controller", ({"app.kubernetes.io/name": "traefik"},)),
    ("haproxy-ingress.github.io/controller", ({"app.kubernetes.io/name": "haproxy-ingress"},)),
    ("projectcontour.io/", ({"app": "envoy"}, {"app.kubernetes.io/component": "envoy"})),
    ("ingress-controllers.konghq.com/kong", ({"app.kubernetes.io/name": "kong"},)),
)
"""(``spec.controller`` or its prefix, label sets any one of which marks the controller's traffic-carrying pods)."""


@dataclass(frozen=True)
class Controller:
    """Where a routing object's traffic comes from, as far as the snapshot (or the user) says."""

    namespaces: tuple[str, ...]
    """Namespaces the traffic leaves from, sorted; empty when unknown."""
    workloads: tuple[Workload, ...] = ()
    """The controller's own workloads there; empty when only the namespace is known."""
    unknown: str | None = None
    """Why no namespace is known, and what to pass instead; None when one is."""


def find_controller(snapshot: Snapshot, route: ObjectRef, ingress_from: Sequence[str] = ()) -> Controller:
    """The controller of routing object ``route``: ``ingress_from`` when given, else what the snapshot shows."""
    if ingress_from:
        chosen = tuple(sorted(set(ingress_from)))
        detected = _detected(snapshot, route)
        return Controller(chosen, tuple(w for w in detected.workloads if w.namespace in chosen))
    return _detected(snapshot, route)


def _detected(snapshot: Snapshot, route: ObjectRef) -> Controller:
    raw = snapshot.get(route.kind, route.namespace, route.name)
    if raw is None:
        return Controller((), unknown=f"{route} is not in the snapshot; pass --ingress-from NS")
    if route.kind == "Ingress":
        return _ingress_controller(snapshot, route, raw)
    if route.kind in GATEWAY_ROUTE_KINDS:
        return _gateway_data_plane(snapshot, route, raw)
    return Controller(
        (),
        unknown=(
            f"the ingress pods of {route} are chosen by Istio Gateways (or are the callers' sidecars for "
            "'mesh'), which are not read; pass --ingress-from NS (the Istio ingress gateway's namespace)"
        ),
    )


def _gateway_data_plane(snapshot: Snapshot, route: ObjectRef, raw: RawObject) -> Controller:
    """The parent Gateways' data-plane workloads when labelled, else the Gateways' namespaces."""
    parents = gateway_parents(route, spec if isinstance(spec := raw.get("spec"), Mapping) else {})
    if not parents:
        return Controller((), unknown=f"{route} names no parent Gateway; pass --ingress-from NS")
    namespaces: set[str] = set()
    found: list[Workload] = []
    for namespace, name in parents:
        plane = [w for w in snapshot.workloads if _serves_gateway(w, namespace, name)]
        found += plane
        namespaces |= {w.namespace for w in plane} or {namespace}
    return Controller(tuple(sorted(namespaces)), tuple(found))


def _serves_gateway(workload: Workload, namespace: str, name: str) -> bool:
    labels = workload.pod_labels
    if labels.get(GATEWAY_NAME_LABEL) != name:
        return False
    return workload.namespace == namespace or labels.get(OWNING_GATEWAY_NAMESPACE) == namespace


def _ingress_controller(snapshot: Snapshot, route: ObjectRef, raw: RawObject) -> Controller:
    """The IngressClass's controller, found by its pods' well-known labels."""
    class_name = ingress_class_name(snapshot, raw)
    if class_name is None:
        return Controller((), unknown=f"{route} names no IngressClass and none is the default; pass --ingress-from NS")
    ingress_class = snapshot.get("IngressClass", None, class_name)
    if ingress_class is None:
        return Controller((), unknown=f"IngressClass {class_name} of {route} was not read; pass --ingress-from NS")
    controller = _controller_of(ingress_class)
    selectors = controller_pod_labels(controller)
    if not selectors:
        return Controller(
            (),
            unknown=f"the pods of controller {controller or '(none)'} (IngressClass {class_name}) are not known "
            "by their labels; pass --ingress-from NS",
        )
    found = tuple(w for w in snapshot.workloads if any(_has(w.pod_labels, s) for s in selectors))
    if not found:
        return Controller(
            (),
            unknown=f"no workload of controller {controller} (IngressClass {class_name}) was found; "
            "pass --ingress-from NS",
        )
    return Controller(tuple(sorted({w.namespace for w in found})), found)


def ingress_class_name(snapshot: Snapshot, raw: RawObject) -> str | None:
    """The IngressClass an Ingress uses: named, annotated (deprecated), or the cluster's default."""
    spec = raw.get("spec") or {}
    named = spec.get("ingressClassName") if isinstance(spec, Mapping) else None
    if isinstance(named, str) and named:
        return named
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    legacy = annotations.get(LEGACY_CLASS) if isinstance(annotations, Mapping) else None
    if isinstance(legacy, str) and legacy:
        return legacy
    defaults = [c for c in snapshot.of("IngressClass") if _is_default(c)]
    return str((defaults[0].get("metadata") or {}).get("name")) if len(defaults) == 1 else None


def _is_default(ingress_class: RawObject) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return isinstance(annotations, Mapping) and str(annotations.get(DEFAULT_CLASS, "")).lower() == "true"


def controller_pod_labels(controller: str) -> tuple[Mapping[str, str], ...]:
    """The label sets that mark the traffic-carrying pods of an IngressClass's ``spec.controller``."""
    for known, selectors in CONTROLLER_POD_LABELS:
        if controller == known or (known.endswith("/") and controller.startswith(known)):
            return selectors
    return ()


def _has(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def service_port(svc: ServiceInfo, reference: Reference) -> int | None:
    """The Service port a routing backend names: its number, or the port its name (as written) stands for."""
    if reference.port is not None:
        return reference.port
    written = reference.reference.rpartition(":")[2] if ":" in reference.reference else None
    named = next((sp.port for sp in svc.ports if written and sp.name == written), None)
    if named is None and len(svc.ports) == 1:
        return svc.ports[0].port  # a backend without a port reaches a single-port Service's only port
    return named


@dataclass(frozen=True)
class ControllerProbe:
    """One routing edge's check, as its controller makes it (a :class:`~novadiag.probing.groups.RouteProbe`)."""

    namespace: str
    host: str
    port: int | None
    pod_spec: Mapping[str, Any] = field(default_factory=dict)
    """A pod spec of the controller there, whose DNS settings the probe pod copies (empty: the defaults)."""


def route_probes(
    edges: Iterable[Edge], snapshot: Snapshot, index: ClusterIndex, ingress_from: Sequence[str] = ()
) -> tuple[dict[str, ControllerProbe], dict[str, str]]:
    """(the check of each probe-able routing edge, why each other routing edge is not probed), by edge id."""
    probes: dict[str, ControllerProbe] = {}
    reasons: dict[str, str] = {}
    controllers: dict[ObjectRef, Controller] = {}
    for edge in edges:
        if not edge.reference.routing:
            continue
        if edge.source not in controllers:
            controllers[edge.source] = find_controller(snapshot, edge.source, ingress_from)
        point = _controller_probe(edge, controllers[edge.source], snapshot, index)
        if isinstance(point, str):
            reasons[edge.id] = point
        else:
            probes[edge.id] = point
    return probes, reasons


def _controller_probe(
    edge: Edge, controller: Controller, snapshot: Snapshot, index: ClusterIndex
) -> ControllerProbe | str:
    """The check of one routing edge, or why there is none."""
    named = edge.target
    svc = None if named is None or named.namespace is None else index.service(named.namespace, named.name)
    if svc is None:
        return "not probed: the backend names no Service that exists, so there is no address to check"
    if not controller.namespaces:
        return f"not probed: {controller.unknown}"
    with_pods = [ns for ns in controller.namespaces if any(w.namespace == ns for w in controller.workloads)]
    namespace = (with_pods or list(controller.namespaces))[0]
    if snapshot.get("Namespace", None, namespace) is None:
        return (
            f"not probed: the controller's namespace {namespace} does not exist (or was not read), "
            "and a probe never creates one; pass --ingress-from NS"
        )
    plane = next((w for w in controller.workloads if w.namespace == namespace), None)
    return ControllerProbe(
        namespace,
        f"{svc.name}.{svc.namespace}.svc.{index.cluster_domain}",
        service_port(svc, edge.reference),
        {} if plane is None else plane.pod_spec,
    )


def controller_namespaces(snapshot: Snapshot) -> frozenset[str]:
    """Namespaces whose every workload is an ingress controller or a Gateway data plane: shared infrastructure.

    A controller is recognised as above: an IngressClass's controller by its pod
    labels, a data plane by ``gateway.networking.k8s.io/gateway-name``. A namespace
    that also runs anything else is an application's, whatever else it holds.
    """
    selectors = [s for c in snapshot.of("IngressClass") for s in controller_pod_labels(_controller_of(c))]
    by_namespace: dict[str, list[bool]] = {}
    for w in snapshot.workloads:
        serves = GATEWAY_NAME_LABEL in w.pod_labels or any(_has(w.pod_labels, s) for s in selectors)
        by_namespace.setdefault(w.namespace, []).append(serves)
    return frozenset(ns for ns, serving in by_namespace.items() if all(serving))


def _controller_of(ingress_class: RawObject) -> str:
    spec = ingress_class.get("spec") or {}
    return str(spec.get("controller") or "") if isinstance(spec, Mapping) else ""
