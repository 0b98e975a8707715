"""References: every host a workload names in its environment and mounted config files.

Services find each other through names written in env vars, so the env is
where broken edges start. This module turns a snapshot's workloads into
:class:`~novadiag.model.Reference` records, one per (workload, container, env
var, host, port), and is pure: no I/O, no Kubernetes client.

Environment resolution follows the kubelet: ``envFrom`` sources in order (a
later one wins, ``prefix`` applied, keys that are not env names skipped), then
``env`` entries override; ``$(VAR)`` expands against what is defined so far,
``$$`` escapes, unknown names stay literal. A missing ConfigMap/Secret becomes a
finding, never a crash; Secrets are read only in their sanitized form, and every
stored ``reference`` is :func:`~novadiag.redaction.redact`-ed.

Host detection is :mod:`novadiag.hostgrammar`'s: this module resolves the env, that one
reads each value. Files a container mounts from ConfigMaps and Secrets are
read by :mod:`novadiag.filereferences`, one call per container, from the same
(sanitized) sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from novadiag.clusternames import ClusterNames
from novadiag.commandrefs import CommandSite, command_references, exec_references
from novadiag.configformats import ParsedFile
from novadiag.expansion import expand as expand  # re-exported: callers read it here
from novadiag.filereferences import file_references
from novadiag.hostgrammar import HostPort, parse_port, parse_value
from novadiag.model import Finding, Gap, Reference
from novadiag.redaction import redact, sanitize_secret

if TYPE_CHECKING:
    from novadiag.snapshot import Snapshot
    from novadiag.workloads import Workload

_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_FIELD_PATH_RE = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")

STARTUP_ANNOTATION = "lab.novadiag.dev/startup-needs"


class _EnvVar(NamedTuple):
    value: str | None
    """None: the variable is set, but to something this snapshot cannot know."""
    origin: str
    names_host: bool = True


def discover_references(snapshot: Snapshot) -> tuple[list[Reference], list[Finding]]:
    """Every host every workload's containers name, and what got in the way.

    Each workload is read once (owned ReplicaSets/Jobs/Pods are counted under
    their owner); init containers are included, marked ``init_container``.
    """
    sources = _Sources(snapshot)
    names = cluster_names(snapshot)
    references: list[Reference] = []
    for workload in snapshot.workloads:
        startup = _startup_names(workload)
        for init, container in _containers(workload):
            name = str(container.get("name") or "")
            env = _Resolver(workload, name, sources).resolve(container)
            references.extend(_references(_Site(workload, name, init, startup), env))
            site = CommandSite(workload.ref, name, init, names, _own_names(workload, name))
            references.extend(command_references(site, container, _known_values(env)))
            references.extend(exec_references(site, container))
            references.extend(file_references(workload, container, init, sources, names))
    return references, sources.findings


def cluster_names(snapshot: Snapshot) -> ClusterNames:
    """The Service names free text is checked against (arguments, scripts, files)."""
    services = ((svc.get("metadata") or {}).get("name") for svc in snapshot.of("Service"))
    return ClusterNames.of((s for s in services if isinstance(s, str)), snapshot.source.cluster_domain)


def _own_names(workload: Workload, container: str) -> frozenset[str]:
    """Names a pod calls itself: a process naming one of them is not calling another service."""
    hostname = workload.pod_spec.get("hostname")
    names = {workload.ref.name, container, hostname if isinstance(hostname, str) else ""}
    return frozenset(n for n in names if n)


def _known_values(env: Mapping[str, _EnvVar]) -> dict[str, str]:
    """The env a container's ``$(VAR)`` in ``command``/``args`` expands against."""
    return {name: var.value for name, var in env.items() if var.value is not None}


def _containers(workload: Workload) -> Iterator[tuple[bool, Mapping[str, Any]]]:
    for key, init in (("initContainers", True), ("containers", False)):
        items = workload.pod_spec.get(key)
        for container in items if isinstance(items, list) else ():
            if isinstance(container, dict):
                yield init, container


def _startup_names(workload: Workload) -> frozenset[str]:
    listed = workload.pod_annotations.get(STARTUP_ANNOTATION, "")
    return frozenset(name.strip() for name in listed.split(",") if name.strip())


class _Sources:
    """ConfigMap/Secret data for one run, and the findings about them."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._gaps = {(gap.kind, gap.namespace): gap for gap in snapshot.gaps}
        self._sanitized: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.findings: list[Finding] = []
        self.parsed_files: dict[tuple[str, str, str, str, str], ParsedFile] = {}

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        obj: Mapping[str, Any] | None = self._snapshot.get(kind, namespace, name)
        if obj is None:
            return None
        if kind == "Secret":
            # Snapshots sanitize on load; one built by hand (marked or not) still never yields a credential.
            if (namespace, name) not in self._sanitized:
                self._sanitized[(namespace, name)] = sanitize_secret(obj)
            obj = self._sanitized[(namespace, name)]
        data = obj.get("data")
        return data if isinstance(data, Mapping) else {}

    def binary_keys(self, kind: str, namespace: str, name: str) -> frozenset[str]:
        """A ConfigMap's ``binaryData`` keys: mounted as files, never read as text."""
        obj = self._snapshot.get(kind, namespace, name) if kind == "ConfigMap" else None
        binary = obj.get("binaryData") if obj is not None else None
        return frozenset(str(key) for key in binary) if isinstance(binary, Mapping) else frozenset()

    def gap(self, kind: str, namespace: str) -> Gap | None:
        return self._gaps.get((kind, namespace)) or self._gaps.get((kind, None))


class _Resolver:
    """One container's environment, resolved the way the kubelet does it."""

    def __init__(self, workload: Workload, container: str, sources: _Sources) -> None:
        self.workload = workload
        self.container = container
        self.sources = sources
        self.namespace = workload.namespace
        self.env: dict[str, _EnvVar] = {}
        self.known: dict[str, str] = {}

    def resolve(self, container: Mapping[str, Any]) -> dict[str, _EnvVar]:
        for index, entry in enumerate(self._entries(container, "envFrom")):
            self._apply_env_from(index, entry)
        for index, entry in enumerate(self._entries(container, "env")):
            self._apply_env(index, entry)
        return self.env

    def _entries(self, container: Mapping[str, Any], key: str) -> list[Any]:
        entries = container.get(key)
        if entries is None or isinstance(entries, list):
            return entries or []
        self._warn("malformed-env", f"{self._where()}: {key} is not a list; skipped")
        return []

    def _set(self, name: str, var: _EnvVar) -> None:
        self.env[name] = var
        if var.value is None:
            self.known.pop(name, None)
        else:
            self.known[name] = var.value

    def _apply_env_from(self, index: int, entry: Any) -> None:
        source = _env_from_source(entry)
        if source is None:
            why = "not a configMapRef/secretRef with a name"
            self._warn("malformed-env", f"{self._where()}: envFrom entry #{index} skipped: {why}")
            return
        kind, name, optional, prefix = source
        data = self._lookup(kind, name, None, optional, "envFrom")
        origin = f"envFrom:{'secret' if kind == 'Secret' else 'configMap'}/{name}"
        for key, value in (data or {}).items():
            var_name = f"{prefix}{key}"
            if isinstance(value, str) and _ENV_NAME_RE.fullmatch(var_name):
                self._set(var_name, _EnvVar(value, origin))

    def _apply_env(self, index: int, entry: Any) -> None:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            self._warn("malformed-env", f"{self._where()}: env entry #{index} has no name; skipped")
            return
        value, value_from = entry.get("value"), entry.get("valueFrom")
        if value is not None and not isinstance(value, str):
            self._warn("malformed-env", f"{self._where(name)}: value is not a string; skipped")
        elif value or value_from is None:
            self._set(name, _EnvVar(expand(value or "", self.known), "value"))
        elif isinstance(value_from, dict):
            self._apply_value_from(name, value_from)
        else:
            self._warn("malformed-env", f"{self._where(name)}: valueFrom is not an object; skipped")

    def _apply_value_from(self, name: str, value_from: Mapping[str, Any]) -> None:
        for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            ref = value_from.get(field)
            if ref is None:
                continue
            if not isinstance(ref, Mapping) or not _names(ref.get("name"), ref.get("key")):
                self._warn("malformed-env", f"{self._where(name)}: {field} needs a name and a key")
                return
            key, optional = ref["key"], ref.get("optional") is True
            value = (self._lookup(kind, ref["name"], key, optional, name) or {}).get(key)
            if isinstance(value, str):
                self._set(name, _EnvVar(value, f"{field}:{ref['name']}/{key}"))
            return
        if "fieldRef" not in value_from and "resourceFieldRef" not in value_from:
            self._warn("malformed-env", f"{self._where(name)}: valueFrom names no known source")
            return
        field_ref = value_from.get("fieldRef")
        path = field_ref.get("fieldPath") if isinstance(field_ref, Mapping) else None
        self._set(name, _EnvVar(self._field_value(path), "fieldRef", names_host=False))

    def _field_value(self, path: object) -> str | None:
        """The few downward-API fields a pod template already fixes (the kubelet knows them all)."""
        if path == "metadata.namespace":
            return self.namespace
        if path == "spec.serviceAccountName":
            account = self.workload.pod_spec.get("serviceAccountName")
            return account if isinstance(account, str) else "default"
        match = _FIELD_PATH_RE.fullmatch(str(path))
        if match is None:
            return None
        source = self.workload.pod_labels if match[1] == "labels" else self.workload.pod_annotations
        return source.get(match[2])

    def _lookup(
        self, kind: str, name: str, key: str | None, optional: bool, env: str
    ) -> Mapping[str, Any] | None:
        """A source's data, with a finding when it (or its key) is missing or unreadable."""
        data = self.sources.data(kind, self.namespace, name)
        if data is not None and (key is None or key in data):
            return data
        where, what = self._where(env), f"{kind} {self.namespace}/{name}"
        gap = self.sources.gap(kind, self.namespace) if data is None else None
        if gap is not None:
            code = "secret-unreadable" if kind == "Secret" else "config-unreadable"
            why = f"could not be read ({gap.reason}), so the host it names is unknown"
            self._warn(code, f"{where}: {what} {why}")
        elif not optional:
            missing = "does not exist" if data is None else f"has no key {key!r}"
            self._warn("missing-config-source", f"{where}: {what} {missing}")
        return data

    def _where(self, env: str | None = None) -> str:
        where = f"{self.workload.ref} container {self.container}"
        if env == "envFrom":
            return f"{where} envFrom"
        return where if env is None else f"{where} env {env}"

    def _warn(self, code: str, message: str) -> None:
        self.sources.findings.append(Finding("warning", code, message, self.workload.ref))


def _names(*values: object) -> bool:
    return all(isinstance(v, str) and v for v in values)


def _env_from_source(entry: Any) -> tuple[str, str, bool, str] | None:
    """(kind, name, optional, prefix) of one envFrom entry, or None when malformed."""
    if not isinstance(entry, Mapping):
        return None
    prefix = entry.get("prefix") or ""
    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
        ref = entry.get(field)
        if isinstance(ref, Mapping) and _names(ref.get("name")) and isinstance(prefix, str):
            return kind, ref["name"], ref.get("optional") is True, prefix
    return None


class _Site(NamedTuple):
    workload: Workload
    container: str
    init: bool
    startup: frozenset[str]


def _references(site: _Site, env: Mapping[str, _EnvVar]) -> list[Reference]:
    found: list[Reference] = []
    for name, var in env.items():
        if var.value is not None and var.names_host:
            hosts = parse_value(name, var.value)
            if hosts:
                found.extend(_var_references(site, name, var, hosts, env))
    return found


def _var_references(
    site: _Site, name: str, var: _EnvVar, hosts: tuple[HostPort, ...], env: Mapping[str, _EnvVar]
) -> list[Reference]:
    """One Reference per (host, port) of one variable; a split ``X_PORT`` fills missing ports."""
    port_env = _port_partner(name, env) if any(h.port is None for h in hosts) else None
    split_port = parse_port(env[port_env].value or "") if port_env else None
    reference = redact(var.value or "")
    found: dict[tuple[str, int | None], Reference] = {}
    for hp in hosts:
        from_env = hp.port is None and port_env is not None
        port = split_port if from_env else hp.port
        if (hp.host, port) in found:
            continue
        found[(hp.host, port)] = Reference(
            workload=site.workload.ref,
            container=site.container,
            env=name,
            origin=var.origin,
            reference=reference,
            host=hp.host,
            port=port,
            scheme=hp.scheme,
            init_container=site.init,
            port_env=port_env if from_env else None,
            startup=name in site.startup,
        )
    return list(found.values())


def _port_partner(name: str, env: Mapping[str, _EnvVar]) -> str | None:
    """``X_PORT`` when ``name`` is ``X_HOST``/``X_HOSTNAME``/``X_ADDR``/``X_ADDRESS``/``X_SERVER``."""
    upper = name.upper()
    for suffix in ("_HOSTNAME", "_HOST", "_ADDRESS", "_ADDR", "_SERVER"):
        if upper.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            candidate = stem + ("_PORT" if name[-len(suffix) :].isupper() else "_port")
            return candidate if candidate in env else None
    return None
