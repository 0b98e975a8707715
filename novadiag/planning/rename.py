"""Rewriting what names a namespace or a host: env values, ConfigMap keys, policies, bindings.

A reference is rewritten where it is *written*, not where it is read: an env
var that comes from a ConfigMap key is fixed in the ConfigMap, one from a
Secret in the Secret (at apply time: the snapshot only holds a sanitized copy),
one with a literal ``value`` in the workload. :func:`locate_env` follows the
kubelet's rules (``env`` overrides ``envFrom``, a later ``envFrom`` source wins)
to find that place.

Hosts are replaced token-wise (:func:`replace_host`): ``postgres`` inside
``postgres.nova`` or ``my-postgres`` is another name and stays untouched, so a
multi-host DSN (``postgres:5432,postgres.nova:5432``) is rewritten host by host.

Namespaces are also named outside env vars: RoleBinding subjects
(ServiceAccounts and ``system:serviceaccounts:<ns>`` groups) are rewritten here,
NetworkPolicy selectors in :mod:`novadiag.planning.netpol`. Where several
namespaces land in one and a Service's or controller's selector would start
picking another namespace's pods, the moved pods carry an origin label
(:data:`ORIGIN_LABEL`) and the selector is narrowed by it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ORIGIN_LABEL = "novadiag.dev/origin-namespace"
"""Pod label a moved workload carries when policies or selectors must still tell namespaces apart."""


_HOST_CHARS = r"A-Za-z0-9_\-"

POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}

ContainerList = Literal["containers", "initContainers"]


@dataclass(frozen=True)
class Location:
    """Where an env var's value is written: a literal in the workload, or a data key."""

    kind: Literal["value", "ConfigMap", "Secret"]
    container_list: ContainerList
    container: str
    env: str
    name: str | None = None
    key: str | None = None

    def describe(self, namespace: str) -> str:
        if self.kind == "value":
            return f"env {self.env} of container {self.container}"
        return f"{self.kind} {namespace}/{self.name} key {self.key}"


def replace_host(text: str, old: str, new: str) -> str:
    """``text`` with every whole-host occurrence of ``old`` replaced by ``new``.

    >>> replace_host("postgres://u@postgres:5432,postgres.nova:5432/db", "postgres.nova", "postgres")
    'postgres://u@postgres:5432,postgres:5432/db'
    >>> replace_host("http://my-redis:6379", "redis", "cache")
    'http://my-redis:6379'
    >>> replace_host("redis://redis:6379", "redis", "cache")
    'redis://cache:6379'
    """
    return replace_hosts(text, {old: new})


def replace_hosts(text: str, mapping: Mapping[str, str]) -> str:
    """Every whole-host occurrence of each key replaced by its value, in one pass (no chains).

    >>> replace_hosts("a:1,b:2", {"a": "b", "b": "c"})
    'b:1,c:2'
    """
    pairs = {k.lower(): v for k, v in mapping.items() if k and k.lower() != v.lower()}
    if not pairs:
        return text
    alternatives = "|".join(re.escape(k) for k in sorted(pairs, key=len, reverse=True))
    pattern = rf"(?<![{_HOST_CHARS}.])(?:{alternatives})(?![{_HOST_CHARS}]|\.[A-Za-z0-9]|://)"
    return re.sub(pattern, lambda m: pairs[m.group(0).lower()], text, flags=re.IGNORECASE)


def contains_host(text: str, host: str) -> bool:
    return replace_host(text, host, "\x00") != text


def pod_spec_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside any workload object (the same dict, for in-place edits)."""
    node: Any = obj
    for key in POD_SPEC_PATHS.get(str(obj.get("kind")), ()):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, dict) else None


def find_container(pod_spec: Mapping[str, Any], name: str) -> tuple[ContainerList, dict[str, Any]] | None:
    lists: tuple[ContainerList, ...] = ("containers", "initContainers")
    for key in lists:
        for container in pod_spec.get(key) or ():
            if isinstance(container, dict) and container.get("name") == name:
                return key, container
    return None


def locate_env(workload: Mapping[str, Any], container_name: str, env: str, data_keys: DataKeys) -> Location | None:
    """Where ``env`` of one container gets its value, by the kubelet's precedence rules."""
    pod_spec = pod_spec_of(workload)
    found = None if pod_spec is None else find_container(pod_spec, container_name)
    if found is None:
        return None
    container_list, container = found
    for entry in reversed(container.get("env") or []):
        if isinstance(entry, Mapping) and entry.get("name") == env:
            return _env_entry_location(entry, container_list, container_name, env)
    for entry in reversed(container.get("envFrom") or []):
        if not isinstance(entry, Mapping):
            continue
        prefix = str(entry.get("prefix") or "")
        if not env.startswith(prefix):
            continue
        key = env[len(prefix) :]
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = entry.get(field)
            if isinstance(ref, Mapping) and key in data_keys(kind, str(ref.get("name"))):
                return Location(kind, container_list, container_name, env, str(ref.get("name")), key)  # type: ignore[arg-type]
    return None


class DataKeys:
    """``data_keys(kind, name)``: the keys of a ConfigMap or Secret in one namespace."""

    def __init__(self, objects: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        self._objects = objects

    def __call__(self, kind: str, name: str) -> frozenset[str]:
        obj = self._objects.get((kind, name))
        if obj is None:
            return frozenset()
        keys = set((obj.get("data") or {}).keys())
        keys |= set((obj.get("stringData") or {}).keys())
        keys |= set((obj.get("binaryData") or {}).keys())
        return frozenset(str(k) for k in keys)


def _env_entry_location(entry: Mapping[str, Any], container_list: ContainerList, container: str, env: str) -> Location:
    value_from = entry.get("valueFrom")
    if entry.get("value") or not isinstance(value_from, Mapping):
        return Location("value", container_list, container, env)
    for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = value_from.get(field)
        if isinstance(ref, Mapping):
            return Location(kind, container_list, container, env, str(ref.get("name")), str(ref.get("key")))  # type: ignore[arg-type]
    return Location("value", container_list, container, env)


def env_value(workload: Mapping[str, Any], loc: Location) -> str | None:
    """The literal ``value`` of a ``value`` location (None when absent)."""
    pod_spec = pod_spec_of(workload)
    found = None if pod_spec is None else find_container(pod_spec, loc.container)
    if found is None:
        return None
    for entry in reversed(found[1].get("env") or []):
        if isinstance(entry, Mapping) and entry.get("name") == loc.env:
            value = entry.get("value")
            return value if isinstance(value, str) else None
    return None


def set_env_value(workload: dict[str, Any], loc: Location, value: str) -> None:
    """Set a literal env value in place (on a copy the caller owns)."""
    pod_spec = pod_spec_of(workload)
    found = None if pod_spec is None else find_container(pod_spec, loc.container)
    if found is None:
        raise KeyError(loc.container)
    for entry in reversed(found[1].get("env") or []):
        if isinstance(entry, dict) and entry.get("name") == loc.env:
            entry["value"] = value
            return
    raise KeyError(loc.env)


def value_path(kind: str, loc: Location) -> tuple[str, ...]:
    """Where a literal env value lives in a workload, as a :data:`~novadiag.planning.paths.FieldPath`."""
    return (*POD_SPEC_PATHS[kind], loc.container_list, f"name={loc.container}", "env", f"name={loc.env}", "value")


def env_patch(kind: str, values: Mapping[Location, str]) -> dict[str, Any]:
    """A strategic merge patch setting env vars of containers (containers and env merge by ``name``)."""
    lists: dict[str, dict[str, list[dict[str, str]]]] = {}
    for loc, value in values.items():
        containers = lists.setdefault(loc.container_list, {})
        containers.setdefault(loc.container, []).append({"name": loc.env, "value": value})
    node: dict[str, Any] = {
        key: [{"name": name, "env": env} for name, env in sorted(containers.items())]
        for key, containers in sorted(lists.items())
    }
    for key in reversed(POD_SPEC_PATHS[kind]):
        node = {key: node}
    return node


def rewrite_role_binding(
    binding: Mapping[str, Any],
    moved: Mapping[str, str],
    *,
    keep_old: Container[str] = (),
    renamed_accounts: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """A copy whose ServiceAccount and ``system:serviceaccounts:<ns>`` subjects follow their namespace."""
    out = copy.deepcopy(dict(binding))
    subjects: list[Any] = []
    for subject in out.get("subjects") or []:
        new = _moved_subject(subject, moved, renamed_accounts or {})
        if new is None:
            subjects.append(subject)
            continue
        if _subject_namespace(subject) in keep_old:
            subjects.append(subject)
        if new not in subjects:
            subjects.append(new)
    if subjects:
        out["subjects"] = subjects
    return out


def _subject_namespace(subject: Mapping[str, Any]) -> str | None:
    if subject.get("kind") == "ServiceAccount":
        return str(subject.get("namespace"))
    return str(subject.get("name") or "").rpartition(":")[2] or None


def _moved_subject(
    subject: Any, moved: Mapping[str, str], renamed: Mapping[tuple[str, str], str]
) -> dict[str, Any] | None:
    if not isinstance(subject, dict):
        return None
    if subject.get("kind") == "ServiceAccount" and subject.get("namespace") in moved:
        old_ns, name = subject["namespace"], str(subject.get("name"))
        return {**subject, "namespace": moved[old_ns], "name": renamed.get((old_ns, name), name)}
    prefix = "system:serviceaccounts:"
    name = str(subject.get("name") or "")
    if subject.get("kind") == "Group" and name.startswith(prefix) and name[len(prefix) :] in moved:
        return {**subject, "name": prefix + moved[name[len(prefix) :]]}
    return None


def rename_pod_refs(pod_spec: dict[str, Any], renames: Mapping[tuple[str, str], str]) -> None:
    """Follow renamed ConfigMaps, Secrets, ServiceAccounts and claims inside one pod spec."""
    if not renames:
        return
    account = pod_spec.get("serviceAccountName")
    if isinstance(account, str) and ("ServiceAccount", account) in renames:
        pod_spec["serviceAccountName"] = renames[("ServiceAccount", account)]
        pod_spec.pop("serviceAccount", None)
    for volume in pod_spec.get("volumes") or ():
        if isinstance(volume, dict):
            _rename_volume(volume, renames)
    for secret in pod_spec.get("imagePullSecrets") or ():
        if isinstance(secret, dict):
            _rename(secret, "name", "Secret", renames)
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or ():
            if isinstance(container, dict):
                _rename_container(container, renames)


def _rename_volume(volume: dict[str, Any], renames: Mapping[tuple[str, str], str]) -> None:
    _rename(volume.get("configMap"), "name", "ConfigMap", renames)
    _rename(volume.get("secret"), "secretName", "Secret", renames)
    _rename(volume.get("persistentVolumeClaim"), "claimName", "PersistentVolumeClaim", renames)
    for source in (volume.get("projected") or {}).get("sources") or ():
        if isinstance(source, dict):
            _rename(source.get("configMap"), "name", "ConfigMap", renames)
            _rename(source.get("secret"), "name", "Secret", renames)


def _rename_container(container: dict[str, Any], renames: Mapping[tuple[str, str], str]) -> None:
    for entry in container.get("envFrom") or ():
        if isinstance(entry, dict):
            _rename(entry.get("configMapRef"), "name", "ConfigMap", renames)
            _rename(entry.get("secretRef"), "name", "Secret", renames)
    for entry in container.get("env") or ():
        value_from = entry.get("valueFrom") if isinstance(entry, dict) else None
        if isinstance(value_from, dict):
            _rename(value_from.get("configMapKeyRef"), "name", "ConfigMap", renames)
            _rename(value_from.get("secretKeyRef"), "name", "Secret", renames)


def _rename(holder: Any, field: str, kind: str, renames: Mapping[tuple[str, str], str]) -> None:
    if isinstance(holder, dict) and isinstance(holder.get(field), str) and (kind, holder[field]) in renames:
        holder[field] = renames[(kind, holder[field])]


def pod_config_refs(pod_spec: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret, ServiceAccount and claim a pod spec uses."""
    used: set[tuple[str, str]] = set()
    account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
    if isinstance(account, str) and account:
        used.add(("ServiceAccount", account))
    for volume in pod_spec.get("volumes") or ():
        if not isinstance(volume, Mapping):
            continue
        _add(used, volume.get("configMap"), "name", "ConfigMap")
        _add(used, volume.get("secret"), "secretName", "Secret")
        _add(used, volume.get("persistentVolumeClaim"), "claimName", "PersistentVolumeClaim")
        for source in (volume.get("projected") or {}).get("sources") or ():
            if isinstance(source, Mapping):
                _add(used, source.get("configMap"), "name", "ConfigMap")
                _add(used, source.get("secret"), "name", "Secret")
    for secret in pod_spec.get("imagePullSecrets") or ():
        _add(used, secret, "name", "Secret")
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or ():
            if not isinstance(container, Mapping):
                continue
            for entry in container.get("envFrom") or ():
                if isinstance(entry, Mapping):
                    _add(used, entry.get("configMapRef"), "name", "ConfigMap")
                    _add(used, entry.get("secretRef"), "name", "Secret")
            for entry in container.get("env") or ():
                value_from = entry.get("valueFrom") if isinstance(entry, Mapping) else None
                if isinstance(value_from, Mapping):
                    _add(used, value_from.get("configMapKeyRef"), "name", "ConfigMap")
                    _add(used, value_from.get("secretKeyRef"), "name", "Secret")
    return used


def _add(used: set[tuple[str, str]], holder: Any, field: str, kind: str) -> None:
    if isinstance(holder, Mapping) and isinstance(holder.get(field), str) and holder[field]:
        used.add((kind, holder[field]))
