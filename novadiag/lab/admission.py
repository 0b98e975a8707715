"""Defaulting and minimal validation, as the real API server applies them on write.

What a client reads back after a create is not what it sent: the server fills in
defaults (a Service's ``type: ClusterIP`` and its allocated ``clusterIP``, a Pod's
``dnsPolicy: ClusterFirst``, a Deployment's ``replicas: 1``, a Namespace's
``kubernetes.io/metadata.name`` label, a Secret's ``stringData`` folded into
base64 ``data``) and refuses objects that could not exist (names that are not
DNS-1123, a Pod without containers, a selector that does not match its template).
novadiag reads defaults (an unset ``dnsPolicy`` *is* ``ClusterFirst``) and its
migration planner must not carry server-owned fields, so the lab returns objects
shaped exactly like a cluster's.

Both the API server (on create/update) and the lab daemon (when it loads a
scenario) go through :func:`admit`, so scenario objects look like applied ones.
Validation failures raise :class:`AdmissionInvalid` (HTTP 422, with per-field causes).
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import weakref
from collections import Counter
from collections.abc import Iterable
from typing import Any

from novadiag.lab.network import SERVICE_RANGE, LabNetwork
from novadiag.lab.selectors import SelectorError, selector_from_match_labels
from novadiag.lab.store import Event, Invalid, Store

Obj = dict[str, Any]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

LABEL_NAME_KINDS = frozenset({"Namespace"})
DNS1035_NAME_KINDS = frozenset({"Service"})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
NODE_PORT_RANGE = (30000, 32767)

_MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
    "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
    "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character (e.g. "
    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


class AdmissionInvalid(Invalid):
    """An object the API server refuses (HTTP 422 with ``details.causes``)."""

    def __init__(self, kind: str, name: str, causes: list[tuple[str, str]]) -> None:
        self.kind = kind
        self.name = name
        self.causes = [
            {"reason": "FieldValueInvalid", "message": msg, "field": field}
            for field, msg in causes
        ]
        parts = [f"{field}: {msg}" for field, msg in causes]
        joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        super().__init__(f'{kind} "{name}" is invalid: {joined}')


class _Errors:
    """Collects field errors so one 422 reports them all, as the real server does."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def invalid(self, field: str, value: Any, why: str) -> None:
        self.add(field, f"Invalid value: {_quote(value)}: {why}")

    def required(self, field: str) -> None:
        self.add(field, "Required value")


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


# -- entry points ----------------------------------------------------------------------------

def admit(obj: Obj, *, network: LabNetwork, store: Store) -> Obj:
    """Defaults and validation for a create; returns a new object, ``obj`` is untouched."""
    obj = copy.deepcopy(obj)
    kind = str(obj.get("kind") or "")
    obj.setdefault("metadata", {})
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(obj, network, store, None)
    validate(obj)
    return obj


def admit_update(old: Obj, new: Obj, *, network: LabNetwork, store: Store) -> Obj:
    """Defaults and validation for an update (PUT/PATCH) of ``old`` into ``new``."""
    new = copy.deepcopy(new)
    kind = str(new.get("kind") or old.get("kind") or "")
    new.setdefault("metadata", {})
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(new, network, store, old)
    validate(new)
    return new


def validate(obj: Obj) -> None:
    """Raise :class:`AdmissionInvalid` when ``obj`` could not exist in a cluster."""
    kind = str(obj.get("kind") or "")
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    errors = _Errors()
    _validate_meta(kind, meta, errors)
    validator = _VALIDATORS.get(kind)
    if validator is not None:
        validator(obj, errors)
    if errors.items:
        raise AdmissionInvalid(kind, name, errors.items)


# -- metadata --------------------------------------------------------------------------------

def _validate_meta(kind: str, meta: Obj, errors: _Errors) -> None:
    name = meta.get("name")
    if not name:
        errors.required("metadata.name")
    elif kind in LABEL_NAME_KINDS:
        _check_name(name, _DNS1123_LABEL, _MSG_LABEL, "metadata.name", errors, 63)
    elif kind in DNS1035_NAME_KINDS:
        _check_name(name, _DNS1035_LABEL, _MSG_DNS1035, "metadata.name", errors, 63)
    else:
        _check_name(name, _DNS1123_SUBDOMAIN, _MSG_SUBDOMAIN, "metadata.name", errors, 253)
    _validate_labels(meta.get("labels"), "metadata.labels", errors)
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            errors.invalid(f"metadata.annotations[{key}]", value, "must be a string")


def _check_name(name: Any, pattern: re.Pattern[str], why: str, field: str, errors: _Errors,
                limit: int) -> None:
    if not isinstance(name, str) or not pattern.match(name):
        errors.invalid(field, name, why)
    elif len(name) > limit:
        errors.invalid(field, name, f"must be no more than {limit} characters")


def _validate_labels(labels: Any, field: str, errors: _Errors) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        errors.invalid(field, labels, "must be a map of strings")
        return
    for key, value in labels.items():
        prefix, _, short = str(key).rpartition("/")
        if not _LABEL_NAME.match(short) or len(short) > 63 or (
            prefix and not _DNS1123_SUBDOMAIN.match(prefix)
        ):
            errors.invalid(field, key, "name part must consist of alphanumeric characters, "
                           "'-', '_' or '.', and must start and end with an alphanumeric "
                           "character")
        if not isinstance(value, str):
            errors.invalid(f"{field}[{key}]", value, "label values must be strings")
        elif len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.invalid(f"{field}[{key}]", value, "a valid label must be an empty string or "
                           "consist of alphanumeric characters, '-', '_' or '.', and must "
                           "start and end with an alphanumeric character")


# -- defaults per kind -----------------------------------------------------------------------

def _default_namespace(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    if meta.get("name"):
        labels["kubernetes.io/metadata.name"] = meta["name"]
    meta["labels"] = labels
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_service(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    spec.setdefault("type", "ExternalName" if spec.get("externalName") else "ClusterIP")
    if spec["type"] != "ExternalName":
        if old is not None and not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec["clusterIP"]:
            raise AdmissionInvalid("Service", str(obj["metadata"].get("name") or ""), [(
                "spec.clusterIPs[0]", f'Invalid value: "{spec.get("clusterIP")}": may not '
                "change once set")])
        if not spec.get("clusterIP"):
            spec["clusterIP"] = _allocate_service_ip(network, store)
        elif old is None and spec["clusterIP"] != "None":
            _check_requested_ip(obj, network, store)
        spec["clusterIPs"] = [spec["clusterIP"]]
        _default_ip_families(spec)
        spec.setdefault("internalTrafficPolicy", "Cluster")
    _default_session_affinity(spec)
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _allocate_node_ports(spec, old_spec, store)
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    obj.setdefault("status", {"loadBalancer": {}})


def _default_ip_families(spec: Obj) -> None:
    """The lab is a single-stack IPv4 cluster; headless Services get families too.

    A headless Service without a selector defaults to ``RequireDualStack`` (its
    endpoints may be of either family), as kube-apiserver's allocator does.
    """
    spec.setdefault("ipFamilies", ["IPv4"])
    headless_manual = spec.get("clusterIP") == "None" and not spec.get("selector")
    spec.setdefault("ipFamilyPolicy", "RequireDualStack" if headless_manual else "SingleStack")


def _default_session_affinity(spec: Obj) -> None:
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        config.setdefault("timeoutSeconds", 10800)


def _allocate_service_ip(network: LabNetwork, store: Store) -> str:
    used = _used_cluster_ips(store)
    while True:
        ip = network.allocate_service_ip()
        if ip not in used:
            return ip


class _ClusterIps:
    """The ClusterIPs of a store's Services, kept current from its change events.

    Listing every Service for each new one made loading a scenario quadratic
    (20,000 Services took hours); a subscription to the store keeps this count.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter[str] = Counter()

    def seed(self, services: Iterable[Obj]) -> None:
        """Count the Services that existed before the subscription (an event may have counted one already)."""
        with self._lock:
            for service in services:
                ip = _cluster_ip(service)
                self._count[ip] = self._count[ip] or 1

    def on_event(self, event: Event) -> None:
        if event.kind != "Service":
            return
        ip = _cluster_ip(event.object)
        with self._lock:
            if event.type == "DELETED":
                self._count[ip] -= 1
                if self._count[ip] <= 0:
                    del self._count[ip]
            elif event.type == "ADDED" or ip not in self._count:
                self._count[ip] += 1

    def __contains__(self, ip: object) -> bool:
        with self._lock:
            return ip in self._count


_CLUSTER_IPS: weakref.WeakKeyDictionary[Store, _ClusterIps] = weakref.WeakKeyDictionary()
_CLUSTER_IPS_LOCK = threading.Lock()


def _cluster_ip(service: Obj) -> str:
    return str((service.get("spec") or {}).get("clusterIP"))


def _used_cluster_ips(store: Store) -> _ClusterIps:
    """The store's ClusterIPs in use (a live view: ``ip in _used_cluster_ips(store)``)."""
    with _CLUSTER_IPS_LOCK:
        tracked = _CLUSTER_IPS.get(store)
        if tracked is None:
            tracked = _CLUSTER_IPS[store] = _ClusterIps()
            store.subscribe(tracked.on_event)  # before listing, so no Service created meanwhile is missed
            tracked.seed(store.list("Service")[0])
        return tracked


def _check_requested_ip(obj: Obj, network: LabNetwork, store: Store) -> None:
    ip = str(obj["spec"]["clusterIP"])
    parts = ip.split(".")
    in_range = (network.contains(ip) and len(parts) == 4
                and SERVICE_RANGE[0] <= int(parts[2]) <= SERVICE_RANGE[1])
    name = str(obj["metadata"].get("name") or "")
    if not in_range:
        raise AdmissionInvalid("Service", name, [(
            "spec.clusterIPs", f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: the '
            f"provided IP ({ip}) is not in the valid range. The range of valid IPs is "
            f"127.{network.block}.{SERVICE_RANGE[0]}.0/17",
        )])
    if ip in _used_cluster_ips(store):
        raise AdmissionInvalid("Service", name, [(
            "spec.clusterIPs", f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: '
            "provided IP is already allocated",
        )])


def _allocate_node_ports(spec: Obj, old_spec: Obj, store: Store) -> None:
    old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
    services, _ = store.list("Service")
    used = {p.get("nodePort") for s in services for p in (s.get("spec") or {}).get("ports") or []}
    candidate = NODE_PORT_RANGE[0]
    for port in spec.get("ports") or []:
        if port.get("nodePort"):
            continue
        if old_ports.get(port.get("port")):
            port["nodePort"] = old_ports[port.get("port")]
            continue
        while candidate in used and candidate < NODE_PORT_RANGE[1]:
            candidate += 1
        port["nodePort"] = candidate
        used.add(candidate)


def _default_pod_spec(spec: Obj, *, restart_policy: str | None = "Always") -> None:
    spec.setdefault("dnsPolicy", "ClusterFirst")
    if restart_policy is not None:
        spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            _default_container(container)


def _default_container(container: Obj) -> None:
    image = str(container.get("image") or "")
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = not tagged or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def _default_pod(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    _default_pod_spec(spec)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _default_template(obj: Obj, *, restart_policy: str | None = "Always") -> Obj:
    spec: Obj = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}), restart_policy=restart_policy)
    return spec


def _default_workload(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    kind = obj.get("kind")
    spec = _default_template(obj)
    spec.setdefault("revisionHistoryLimit", 10)
    if kind != "DaemonSet":
        spec.setdefault("replicas", 1)
    if kind == "Deployment":
        strategy = spec.setdefault("strategy", {})
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
        spec.setdefault("progressDeadlineSeconds", 600)
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                           "rollingUpdate": {"partition": 0}})
        spec.setdefault("persistentVolumeClaimRetentionPolicy",
                        {"whenDeleted": "Retain", "whenScaled": "Retain"})
        for claim in spec.get("volumeClaimTemplates") or []:
            _default_claim_template(claim)
    elif kind == "DaemonSet":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": 1, "maxSurge": 0}})
    _keep_status(obj, old)


def _default_job(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    spec = _default_template(obj, restart_policy=None)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    _keep_status(obj, old)


def _default_cronjob(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job = spec.setdefault("jobTemplate", {})
    _default_template(job, restart_policy=None)
    _keep_status(obj, old)


REQUIRED_STATUS: dict[str, Obj] = {
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "ReplicaSet": {"replicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                  "numberReady": 0},
}
"""Status fields the API serializes even when zero (no ``omitempty``): a fresh object shows them,
and the official Python client (v37) rejects a StatefulSet whose status lacks ``replicas``."""


def _keep_status(obj: Obj, old: Obj | None) -> None:
    """Status is the controllers' (the REST layer routes it per subresource); its required fields start at 0."""
    status = obj.setdefault("status", {})
    for field, zero in REQUIRED_STATUS.get(str(obj.get("kind")), {}).items():
        status.setdefault(field, zero)


def _default_secret(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _default_claim_template(claim: Obj) -> None:
    """A StatefulSet's ``volumeClaimTemplates`` entry reads back as a full PersistentVolumeClaim."""
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    claim.setdefault("status", {}).setdefault("phase", "Pending")


def _default_network_policy(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    """``policyTypes`` spelled out (Ingress, plus Egress when there are egress rules), ports TCP."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _default_pvc(obj: Obj, network: LabNetwork, store: Store, old: Obj | None) -> None:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    _keep_status(obj, old)
    obj["status"].setdefault("phase", "Pending")


_DEFAULTERS = {
    "Namespace": _default_namespace,
    "Service": _default_service,
    "Pod": _default_pod,
    "Deployment": _default_workload,
    "StatefulSet": _default_workload,
    "DaemonSet": _default_workload,
    "ReplicaSet": _default_workload,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "Secret": _default_secret,
    "PersistentVolumeClaim": _default_pvc,
    "NetworkPolicy": _default_network_policy,
}


# -- validation per kind ---------------------------------------------------------------------

def _validate_containers(spec: Obj, field: str, errors: _Errors) -> None:
    containers = spec.get("containers")
    if not containers:
        errors.required(f"{field}.containers")
        return
    seen: set[str] = set()
    for i, container in enumerate(_dicts(containers)):
        where = f"{field}.containers[{i}]"
        name = container.get("name")
        if not name:
            errors.required(f"{where}.name")
        elif not isinstance(name, str) or not _DNS1123_LABEL.match(name):
            errors.invalid(f"{where}.name", name, _MSG_LABEL)
        elif name in seen:
            errors.add(f"{where}.name", f'Duplicate value: "{name}"')
        else:
            seen.add(name)
        if not container.get("image"):
            errors.required(f"{where}.image")
        for j, port in enumerate(_dicts(container.get("ports"))):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                errors.invalid(f"{where}.ports[{j}].containerPort", number,
                               "must be between 1 and 65535, inclusive")


def _dicts(items: Any) -> Iterable[Obj]:
    return [i for i in items or [] if isinstance(i, dict)]


def _validate_pod(obj: Obj, errors: _Errors) -> None:
    _validate_containers(obj.get("spec") or {}, "spec", errors)


def _validate_service(obj: Obj, errors: _Errors) -> None:
    spec = obj.get("spec") or {}
    kind = spec.get("type")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.add("spec.type", f'Unsupported value: "{kind}": supported values: "ClusterIP", '
                   '"ExternalName", "LoadBalancer", "NodePort"')
    if kind == "ExternalName" and not spec.get("externalName"):
        errors.required("spec.externalName")
    ports = list(_dicts(spec.get("ports")))
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        errors.required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errors.invalid(f"spec.ports[{i}].port", number, "must be between 1 and 65535")
        name = port.get("name")
        if len(ports) > 1 and not name:
            errors.required(f"spec.ports[{i}].name")
        elif name in names:
            errors.add(f"spec.ports[{i}].name", f'Duplicate value: "{name}"')
        if name:
            names.add(str(name))


def _validate_workload(obj: Obj, errors: _Errors) -> None:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    selector = spec.get("selector")
    if not selector:
        errors.required("spec.selector")
    else:
        labels = (template.get("metadata") or {}).get("labels") or {}
        try:
            matches = selector_from_match_labels(selector).matches(labels)
        except SelectorError as exc:
            errors.invalid("spec.selector", selector, str(exc))
        else:
            if not matches:
                errors.invalid("spec.template.metadata.labels", labels,
                               "`selector` does not match template `labels`")
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    _validate_containers(template.get("spec") or {}, "spec.template.spec", errors)


def _validate_job(obj: Obj, errors: _Errors) -> None:
    template_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    policy = template_spec.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errors.add("spec.template.spec.restartPolicy", f'Required value: valid values: '
                   f'"OnFailure", "Never" (got "{policy}")')
    _validate_containers(template_spec, "spec.template.spec", errors)


def _validate_cronjob(obj: Obj, errors: _Errors) -> None:
    spec = obj.get("spec") or {}
    if not spec.get("schedule"):
        errors.required("spec.schedule")
    template_spec = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
                     or {}).get("spec") or {}
    _validate_containers(template_spec, "spec.jobTemplate.spec.template.spec", errors)


def _validate_endpointslice(obj: Obj, errors: _Errors) -> None:
    if obj.get("addressType") not in ("IPv4", "IPv6", "FQDN"):
        errors.add("addressType", 'Unsupported value: supported values: "FQDN", "IPv4", "IPv6"')


_VALIDATORS = {
    "Pod": _validate_pod,
    "Service": _validate_service,
    "Deployment": _validate_workload,
    "StatefulSet": _validate_workload,
    "DaemonSet": _validate_workload,
    "ReplicaSet": _validate_workload,
    "Job": _validate_job,
    "CronJob": _validate_cronjob,
    "EndpointSlice": _validate_endpointslice,
}
