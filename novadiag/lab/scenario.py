"""Lab scenarios: a directory of manifests plus a small ``scenario.yaml``.

A scenario is what a lab starts from: the objects a real cluster would hold
(plain Kubernetes YAML, so ``kubectl apply -f`` accepts the same files), and the
few things no manifest can say — RBAC denials and API faults for the API server,
DNS records for names outside the cluster (the lab's stand-in for the internet,
127.0.0.0/8 only) and rewrites that make DNS disagree with the objects, images
the kubelet must treat as unpullable. ``scenario.yaml``::

    name: nova
    description: ...
    manifests: ["manifests"]           # files or directories, relative; default ["."]
    generator:                         # optional: objects built by a novadiag function
      function: novadiag.lab.generate:generate_manifests
      params: {namespaces: 200}
    faults: [...]                      # API server faults (novadiag.lab.apiserver's format)
    rbac: {...}                        # API server RBAC rules (its format)
    dns:
      records: {db.example.com: 127.0.0.53}
      rewrites: [{from: a.example.com, to: content-service.nova-content.svc.cluster.local}]
    images: {unpullable: [registry.example.com/private:1]}
    network_policies: enforce          # or "store": keep NetworkPolicies without filtering traffic

A directory without ``scenario.yaml`` is a scenario too (its manifests, named
after the directory), so ``lab up --scenario ./my-manifests`` works. Everything
is validated here, with the file named in the message, so a bad scenario fails
before any process starts.
"""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from novadiag.boundedio import read_manifest_file
from novadiag.errors import ManifestError, ScenarioError
from novadiag.lab.faults import FaultSet
from novadiag.lab.rbac import Authorizer
from novadiag.lab.store import CLUSTER_SCOPED_KINDS

SCENARIOS_DIR = Path(__file__).parent / "scenarios"
SCENARIO_FILE = "scenario.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
TOP_LEVEL_KEYS = frozenset({"name", "description", "manifests", "generator", "faults", "rbac", "dns", "images",
                            "network_policies"})
POLICY_MODES = ("enforce", "store")


@dataclass(frozen=True)
class ScenarioDns:
    """Names outside the cluster zone, and name rewrites (CoreDNS ``rewrite name``)."""

    records: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rewrites: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario. ``objects`` are raw manifests: treat them as read-only."""

    name: str
    description: str
    objects: tuple[dict[str, Any], ...]
    faults: tuple[Mapping[str, Any], ...]
    rbac: Mapping[str, Any]
    dns: ScenarioDns
    images: Mapping[str, Any]
    path: Path
    network_policies: str = "enforce"
    """``enforce``: the lab's firewall drops what NetworkPolicies deny (see ``firewall``);
    ``store``: policies are API objects only, as on a plugin that ignores them."""

    @property
    def unpullable_images(self) -> frozenset[str]:
        return frozenset(self.images.get("unpullable", ()))


@dataclass(frozen=True)
class ScenarioInfo:
    """What ``lab scenarios`` lists, read without loading the manifests."""

    name: str
    description: str
    path: Path


def list_scenarios() -> list[ScenarioInfo]:
    """The bundled scenarios, sorted by name."""
    found = []
    for directory in sorted(p for p in SCENARIOS_DIR.iterdir() if p.is_dir()):
        if (directory / SCENARIO_FILE).is_file():
            meta = _read_meta(directory)
            found.append(ScenarioInfo(meta["name"], meta["description"], directory))
    return found


def scenario_path(name_or_path: str | Path) -> Path:
    """A bundled scenario's directory, or the directory given as a path."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if "/" in text or text.startswith(".") or isinstance(name_or_path, Path):
        if not candidate.is_dir():
            raise ScenarioError(f"{candidate}: scenario directory not found")
        return candidate.resolve()
    bundled = SCENARIOS_DIR / text
    if bundled.is_dir():
        return bundled
    names = ", ".join(info.name for info in list_scenarios()) or "none"
    raise ScenarioError(f"unknown scenario {text!r} (bundled: {names}; or give a directory path)")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a bundled scenario by name, or a scenario directory by path."""
    directory = scenario_path(name_or_path)
    meta = _read_meta(directory)
    where = str(directory / SCENARIO_FILE)
    objects = list(_manifest_objects(directory, meta["manifests"]))
    if meta["generator"] is not None:
        objects.extend(_generated(meta["generator"], where))
    _check_unique(objects, directory)
    return Scenario(
        name=meta["name"],
        description=meta["description"],
        objects=tuple(objects),
        faults=tuple(_faults(meta["faults"], where)),
        rbac=MappingProxyType(_rbac(meta["rbac"], where)),
        dns=_dns(meta["dns"], where),
        images=MappingProxyType(_images(meta["images"], where)),
        path=directory,
        network_policies=meta["network_policies"],
    )


# -- scenario.yaml -------------------------------------------------------------------------


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / SCENARIO_FILE
    raw: Any = {}
    if path.is_file():
        raw = _parse_yaml(path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ScenarioError(f"{path}: must be a mapping (name, description, manifests, ...)")
        unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
        if unknown:
            raise ScenarioError(f"{path}: unknown key(s) {', '.join(unknown)}")
    manifests = raw.get("manifests", ["."])
    if isinstance(manifests, str):
        manifests = [manifests]
    if not isinstance(manifests, list) or not all(isinstance(m, str) for m in manifests):
        raise ScenarioError(f"{path}: manifests must be a list of relative paths")
    return {
        "name": str(raw.get("name") or directory.name),
        "description": " ".join(str(raw.get("description") or "").split()),
        "manifests": manifests,
        "generator": raw.get("generator"),
        "faults": raw.get("faults") or [],
        "rbac": raw.get("rbac") or {},
        "dns": raw.get("dns") or {},
        "images": raw.get("images") or {},
        "network_policies": _policy_mode(raw.get("network_policies", "enforce"), path),
    }


def _policy_mode(value: Any, path: Path) -> str:
    if value not in POLICY_MODES:
        raise ScenarioError(f"{path}: network_policies must be one of {', '.join(POLICY_MODES)}, got {value!r}")
    return str(value)


def _parse_yaml(path: Path) -> Any:
    docs = _documents(path)
    if len(docs) > 1:
        raise ScenarioError(f"{path}: holds {len(docs)} YAML documents; a scenario file is one mapping")
    return docs[0] if docs else None


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: {key} must be a mapping")
    return value


def _faults(value: Any, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise ScenarioError(f"{where}: faults must be a list of mappings")
    try:
        FaultSet(value)  # the API server's own validation, so a bad rule fails here
    except ValueError as exc:
        raise ScenarioError(f"{where}: faults: {exc}") from exc
    return [MappingProxyType(f) for f in value]


def _rbac(value: Any, where: str) -> dict[str, Any]:
    rbac = _mapping(value, "rbac", where)
    try:
        Authorizer("validation-only", rbac)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ScenarioError(f"{where}: rbac: {exc}") from exc
    return rbac


def _dns(value: Any, where: str) -> ScenarioDns:
    value = _mapping(value, "dns", where)
    records = _mapping(value.get("records") or {}, "dns.records", where)
    checked: dict[str, str] = {}
    for name, ip in records.items():
        try:
            address = ipaddress.IPv4Address(str(ip))
        except ValueError as exc:
            raise ScenarioError(f"{where}: dns.records {name}: {ip!r} is not an IPv4 address") from exc
        if not address.is_loopback:
            raise ScenarioError(f"{where}: dns.records {name}: {ip} is outside 127.0.0.0/8")
        checked[str(name).rstrip(".").lower()] = str(address)
    rewrites = value.get("rewrites") or []
    if not isinstance(rewrites, list):
        raise ScenarioError(f"{where}: dns.rewrites must be a list of {{from, to}}")
    pairs = []
    for item in rewrites:
        if not isinstance(item, dict) or not item.get("from") or not item.get("to"):
            raise ScenarioError(f"{where}: each dns.rewrites entry needs 'from' and 'to'")
        pairs.append((str(item["from"]).rstrip(".").lower(), str(item["to"]).rstrip(".").lower()))
    return ScenarioDns(MappingProxyType(checked), tuple(pairs))


def _images(value: Any, where: str) -> dict[str, Any]:
    images = dict(_mapping(value, "images", where))
    unpullable = images.get("unpullable") or []
    if not isinstance(unpullable, list) or not all(isinstance(i, str) for i in unpullable):
        raise ScenarioError(f"{where}: images.unpullable must be a list of image names")
    images["unpullable"] = tuple(unpullable)
    return images


# -- manifests -----------------------------------------------------------------------------


def _manifest_files(directory: Path, entries: Iterable[str]) -> Iterator[Path]:
    root = directory.resolve()
    for entry in entries:
        path = (directory / entry).resolve()
        if not path.is_relative_to(root):
            raise ScenarioError(f"{directory / SCENARIO_FILE}: manifests entry {entry!r} leaves the scenario")
        if path.is_dir():
            yield from sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES and p.name != SCENARIO_FILE
            )
        elif path.is_file():
            yield path
        else:
            raise ScenarioError(f"{directory / SCENARIO_FILE}: manifests entry {entry!r} not found")


def _manifest_objects(directory: Path, entries: Iterable[str]) -> Iterator[dict[str, Any]]:
    for path in _manifest_files(directory, entries):
        for number, doc in enumerate(_documents(path), start=1):
            yield from _objects_of(doc, f"{path} (document {number})")


def _documents(path: Path) -> list[Any]:
    """The documents of one file, read within the manifest loader's limits.

    A scenario is loaded by a daemon that may run as root, from files anyone may
    hand it, so it gets the same protection as ``novadiag audit --manifests``:
    a size cap, UTF-8 only, bounded nesting and alias expansion, and numbers too
    long to convert refused — each as one line naming the file. Empty documents
    are kept so that "document N" counts as the file does.
    """
    try:
        return read_manifest_file(path, keep_empty=True)
    except ManifestError as exc:
        raise ScenarioError(_scenario_message(exc)) from exc


def _scenario_message(exc: ManifestError) -> str:
    """The manifest loader's message, with YAML problems said as this module always said them."""
    where = exc.path
    problem = exc.problem
    if problem.startswith("invalid YAML") and exc.line is not None:
        return f"{where}: invalid YAML at line {exc.line}: {problem.removeprefix('invalid YAML: ')}"
    if problem.startswith("invalid JSON") and exc.line is not None:
        return f"{where}: invalid JSON at line {exc.line}: {problem.removeprefix('invalid JSON: ')}"
    return f"{where}: {problem}"


def _objects_of(doc: Any, where: str) -> Iterator[dict[str, Any]]:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise ScenarioError(f"{where}: not a Kubernetes object")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc.get("items") or ():
            yield from _objects_of(item, where)
        return
    meta = doc.get("metadata")
    if not doc.get("apiVersion") or not doc.get("kind"):
        raise ScenarioError(f"{where}: object without apiVersion or kind")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ScenarioError(f"{where}: {doc['kind']} without metadata.name")
    yield doc


def _generated(spec: Any, where: str) -> list[dict[str, Any]]:
    """Objects from ``generator.function`` (a ``novadiag.*`` module function) and ``params``."""
    spec = _mapping(spec, "generator", where)
    target = str(spec.get("function") or "")
    module_name, _, func_name = target.partition(":")
    if not module_name.startswith("novadiag.") or not func_name:
        raise ScenarioError(f"{where}: generator.function must be 'novadiag.<module>:<function>'")
    params = _mapping(spec.get("params") or {}, "generator.params", where)
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ScenarioError(f"{where}: generator {target} not found") from exc
    try:
        objects = list(func(**params))
    except TypeError as exc:
        raise ScenarioError(f"{where}: generator {target}: {exc}") from exc
    return [obj for item in objects for obj in _objects_of(item, f"{where} (generator)")]


def _check_unique(objects: Iterable[Mapping[str, Any]], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        kind = str(obj.get("kind"))
        ns = "" if kind in CLUSTER_SCOPED_KINDS else str(meta.get("namespace") or "default")
        key = (kind, ns, str(meta.get("name")))
        if key in seen:
            where = f"{key[1]}/" if key[1] else ""
            raise ScenarioError(f"{directory}: {key[0]} {where}{key[2]} is defined twice")
        seen.add(key)
