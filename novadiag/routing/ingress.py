"""Ingress (``networking.k8s.io/v1``) backends: one edge per Service an Ingress routes to.

An Ingress names Services of its own namespace only: ``backend.service`` has
no namespace field, and a Service of the same name elsewhere is not reached.
The backends are ``spec.defaultBackend`` and every
``spec.rules[i].http.paths[j].backend``; a port is a number or a name
(``port.number`` / ``port.name``). ``resource`` backends (a bucket, a CRD)
name no Service and make no edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from novadiag.model import Finding, ObjectRef, RawObject
from novadiag.routing.backends import Backend


def ingress_backends(ingress: RawObject, findings: list[Finding]) -> Iterator[Backend]:
    """Every Service backend of one Ingress, in the order they are written; malformed ones become findings."""
    meta = ingress.get("metadata") or {}
    source = ObjectRef("Ingress", str(meta.get("namespace") or "default"), str(meta.get("name")))
    spec = ingress.get("spec") or {}
    if not isinstance(spec, Mapping):
        return
    default = spec.get("defaultBackend")
    if default is not None:
        yield from _backend(source, "defaultBackend", "", default, findings)
    rules = spec.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else ()):
        http = rule.get("http") if isinstance(rule, Mapping) else None
        paths = http.get("paths") if isinstance(http, Mapping) else None
        for j, path in enumerate(paths if isinstance(paths, list) else ()):
            backend = path.get("backend") if isinstance(path, Mapping) else None
            yield from _backend(source, f"rules[{i}].http.paths[{j}]", "backend.", backend, findings)


def _backend(source: ObjectRef, location: str, prefix: str, raw: Any, findings: list[Finding]) -> Iterator[Backend]:
    """One backend; ``prefix``: where ``service`` sits under ``location`` (``backend.`` in a path, none by default)."""
    if isinstance(raw, Mapping) and "resource" in raw and "service" not in raw:
        return  # a resource backend names no Service
    service = raw.get("service") if isinstance(raw, Mapping) else None
    name = service.get("name") if isinstance(service, Mapping) else None
    if not isinstance(service, Mapping) or not isinstance(name, str) or not name:
        message = f"{source} {location}: backend names no Service ({prefix}service.name is missing); skipped"
        findings.append(Finding("warning", "malformed-route", message, source))
        return
    port = service.get("port")
    number = port.get("number") if isinstance(port, Mapping) else None
    port_name = port.get("name") if isinstance(port, Mapping) else None
    if isinstance(number, int) and not isinstance(number, bool):
        value: int | str | None = number
        field = "service.port.number"
    elif isinstance(port_name, str) and port_name:
        value, field = port_name, "service.port.name"
    else:
        value, field = None, "service.port"
    assert source.namespace is not None
    yield Backend(source, location, source.namespace, name, value, f"{prefix}service.name", prefix + field)
