"""Structural types of the raw objects novadiag reads, checked once on the way into a Snapshot.

An API server refuses an object whose ``spec`` is a string or whose ports are a
mapping, but manifest files and saved snapshot files have no such guard, and
every later stage (workloads, index, references, policies, verdicts) reads raw
dicts with ``.get``. Checking the shapes of the structural fields here, once,
lets :func:`~novadiag.snapshot.build_snapshot` skip a malformed object with an
``invalid-object`` finding that names the field — as it skips an object
without a name — instead of the audit crashing far from the cause.

Only containers (mapping, list) and the scalars used as keys or names are
checked; anything else is left to the stages that read it, which already
treat odd values as data. Found by property-based fuzzing
(``tests/reliability/test_fuzz_manifests.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

_POD = (
    "{P}(dict)",
    "{P}.containers(list) {P}.containers[](dict) {P}.containers[].name(str) {P}.containers[].ports(list)",
    "{P}.containers[].ports[](dict) {P}.initContainers(list) {P}.initContainers[](dict)",
    "{P}.initContainers[].name(str) {P}.dnsPolicy(str) {P}.dnsConfig(dict) {P}.dnsConfig.searches(list)",
    "{P}.dnsConfig.nameservers(list) {P}.dnsConfig.options(list) {P}.dnsConfig.options[](dict)",
    "{P}.volumes(list) {P}.volumes[](dict) {P}.serviceAccountName(str) {P}.hostname(str) {P}.subdomain(str)",
)
_SELECTOR = (
    "{S}(dict) {S}.matchLabels(dict) {S}.matchLabels{}(str) {S}.matchExpressions(list) {S}.matchExpressions[](dict)"
)
_TEMPLATE = (
    _SELECTOR.replace("{S}", "spec.selector"),
    "{T}(dict) {T}.metadata(dict) {T}.metadata.labels(dict) {T}.metadata.labels{}(str) {T}.metadata.annotations(dict)",
    *_POD,
)
_PEERS = (
    "spec.{D}(list) spec.{D}[](dict) spec.{D}[].{F}(list) spec.{D}[].{F}[](dict) spec.{D}[].ports(list)",
    "spec.{D}[].ports[](dict) spec.{D}[].{F}[].ipBlock(dict) spec.{D}[].{F}[].ipBlock.except(list)",
    _SELECTOR.replace("{S}", "spec.{D}[].{F}[].podSelector"),
    _SELECTOR.replace("{S}", "spec.{D}[].{F}[].namespaceSelector"),
)
Path = tuple[tuple[str, str], ...]
"""Steps of a path: (field, "" | "[]" for each list item | "{}" for each mapping value)."""


def _paths(*groups: str, **fill: str) -> tuple[tuple[Path, str], ...]:
    out = []
    for group in groups:
        for item in group.replace("{P}", fill.get("P", "{P}")).replace("{T}", fill.get("T", "{T}")).split():
            text, _, expected = item.partition("(")
            text = text.replace("{D}", fill.get("D", "{D}")).replace("{F}", fill.get("F", "{F}"))
            steps = tuple((s.rstrip("[]{}"), s[len(s.rstrip("[]{}")) :]) for s in text.split("."))
            out.append((steps, expected.rstrip(")")))
    return tuple(out)


def _workload(**fill: str) -> tuple[tuple[Path, str], ...]:
    return _paths(*_TEMPLATE, **fill)


_COMMON = _paths(
    "metadata(dict) metadata.name(str) metadata.namespace(str) metadata.labels(dict) metadata.labels{}(str)",
    "metadata.annotations(dict) metadata.ownerReferences(list) metadata.ownerReferences[](dict) spec(dict)",
)
_TEMPLATED = {"T": "spec.template", "P": "spec.template.spec"}
_ROUTE = _paths(
    "spec.parentRefs(list) spec.parentRefs[](dict) spec.rules(list) spec.rules[](dict)",
    "spec.rules[].backendRefs(list) spec.rules[].backendRefs[](dict)",
)
SHAPES: dict[str, tuple[tuple[Path, str], ...]] = {
    "Pod": _paths(*_POD, P="spec"),
    "Deployment": _workload(**_TEMPLATED),
    "StatefulSet": _paths("spec.serviceName(str)") + _workload(**_TEMPLATED),
    "DaemonSet": _workload(**_TEMPLATED),
    "ReplicaSet": _workload(**_TEMPLATED),
    "Job": _workload(**_TEMPLATED),
    "CronJob": _paths("spec.jobTemplate(dict) spec.jobTemplate.spec(dict)")
    + _workload(T="spec.jobTemplate.spec.template", P="spec.jobTemplate.spec.template.spec"),
    "Service": _paths(
        "spec.selector(dict) spec.selector{}(str) spec.ports(list) spec.ports[](dict) spec.ports[].name(str)",
        "spec.ports[].port(int) spec.ports[].protocol(str) spec.clusterIP(str) spec.clusterIPs(list)",
        "spec.type(str) spec.externalName(str)",
    ),
    "Endpoints": _paths(
        "subsets(list) subsets[](dict) subsets[].addresses(list) subsets[].addresses[](dict)",
        "subsets[].notReadyAddresses(list) subsets[].notReadyAddresses[](dict) subsets[].ports(list)",
        "subsets[].ports[](dict)",
    ),
    "EndpointSlice": _paths(
        "endpoints(list) endpoints[](dict) endpoints[].addresses(list) endpoints[].conditions(dict)",
        "endpoints[].targetRef(dict) ports(list) ports[](dict)",
    ),
    "ConfigMap": _paths("data(dict) binaryData(dict)"),
    "Secret": _paths("data(dict) stringData(dict)"),
    "NetworkPolicy": _paths(_SELECTOR.replace("{S}", "spec.podSelector"), "spec.policyTypes(list)")
    + _paths(*_PEERS, D="ingress", F="from")
    + _paths(*_PEERS, D="egress", F="to"),
    "Ingress": _paths(
        "spec.defaultBackend(dict) spec.rules(list) spec.rules[](dict) spec.rules[].http(dict)",
        "spec.rules[].http.paths(list) spec.rules[].http.paths[](dict) spec.rules[].http.paths[].backend(dict)",
    ),
    **{kind: _ROUTE for kind in ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")},
    "Gateway": _paths("spec.listeners(list) spec.listeners[](dict) spec.listeners[].allowedRoutes(dict)"),
    "ReferenceGrant": _paths("spec.from(list) spec.from[](dict) spec.to(list) spec.to[](dict)"),
    "VirtualService": _paths(
        *(f"spec.{k}(list) spec.{k}[](dict) spec.{k}[].route(list)" for k in ("http", "tcp", "tls"))
    ),
    "DestinationRule": _paths("spec.host(str) spec.subsets(list) spec.subsets[](dict)"),
    "ServiceEntry": _paths("spec.hosts(list)"),
    "Role": _paths("rules(list) rules[](dict)"),
    "RoleBinding": _paths("subjects(list) subjects[](dict) roleRef(dict)"),
}
_TYPES: dict[str, type] = {"dict": dict, "list": list, "str": str, "int": int}
_NAMES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}


class _Node:
    """One step of the paths of a kind, merged into a tree so an object is walked once."""

    __slots__ = ("children", "expected", "steps")

    def __init__(self) -> None:
        self.expected: type | None = None
        self.children: dict[tuple[str, str], _Node] = {}
        self.steps: tuple[tuple[str, str, type | None, _Node], ...] = ()
        """``children`` flattened as (field, each, expected type, node) once built, for the lean pass."""


def _tree(paths: tuple[tuple[Path, str], ...]) -> _Node:
    root = _Node()
    for steps, expected in paths:
        node = root
        for step in steps:
            node = node.children.setdefault(step, _Node())
        node.expected = _TYPES[expected]
    _flatten(root)
    return root


def _flatten(node: _Node) -> None:
    node.steps = tuple((name, each, child.expected, child) for (name, each), child in node.children.items())
    for child in node.children.values():
        _flatten(child)


_TREES = {kind: _tree(_COMMON + paths) for kind, paths in SHAPES.items()}
_COMMON_TREE = _tree(_COMMON)
Trail = tuple[tuple[str, object], ...]


def shape_problem(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The first structural field of the wrong type, e.g. ``spec.ports[0] is a string, not a mapping``.

    Nearly every object is well formed, so a lean pass that only says yes or no
    comes first; the walk that names the field runs only for the rare bad one.
    Writing a kind's pass costs about as much as walking a few dozen objects, so
    the first :data:`WALKED_BEFORE_WRITING` objects of each kind are walked
    (a handful of manifest files never pays for the writing).
    """
    lean = _LEAN.get(kind)
    if lean is None:  # a plain dict, not a cache decorator: this runs for every object read
        seen = _WALKED[kind] = _WALKED.get(kind, 0) + 1
        if seen <= WALKED_BEFORE_WRITING:
            return _walk(_TREES.get(kind, _COMMON_TREE), obj, ())
        lean = _LEAN[kind] = _write_lean_pass(_TREES.get(kind, _COMMON_TREE))
    return None if lean(obj) else _walk(_TREES.get(kind, _COMMON_TREE), obj, ())


WALKED_BEFORE_WRITING = 32
"""Objects of one kind checked by :func:`_walk` before its lean pass is written."""

_LEAN: dict[str, Callable[[Mapping[str, Any]], bool]] = {}
"""Each kind's written pass, once :data:`WALKED_BEFORE_WRITING` of its objects were walked."""

_WALKED: dict[str, int] = {}
"""Objects of each kind walked while its pass is not yet written."""


def _write_lean_pass(tree: _Node) -> Callable[[Mapping[str, Any]], bool]:
    """Whether :func:`_walk` would find nothing, as straight-line code written from the tree.

    Every object listed or loaded goes through this pass, and a loop that
    interprets the tree spends most of its time on fields the object does not
    have: written out, each absent field is one ``get`` and one test. The
    objects a listing of M reads took 200 ms interpreted, 106 ms written out.
    Written on first use, not at import (all the kinds' passes take 17 ms).
    The rules are :func:`_walk`'s; a property test checks the two agree on
    any Kubernetes-shaped object.
    """
    lines = ["def lean_pass(obj):"]
    _emit(tree, "obj", lines, depth=1, counter=[0])
    lines.append("    return True")
    namespace: dict[str, Any] = {}
    # The source is written from SHAPES alone, never from input.
    exec(compile("\n".join(lines), "<shapes lean pass>", "exec"), namespace)
    return cast(Callable[[Mapping[str, Any]], bool], namespace["lean_pass"])


def _emit(node: _Node, var: str, lines: list[str], depth: int, counter: list[int]) -> None:
    """The checks of ``node``'s children on the mapping in ``var``: the body of the lean pass."""
    pad = "    " * depth
    for field, each, expected, child in node.steps:
        counter[0] += 1
        value, member = f"v{counter[0]}", f"m{counter[0]}"
        lines.append(f"{pad}{value} = {var}.get({field!r})")
        if not each:
            lines.append(f"{pad}if {value} is not None:")
            _emit_member(child, expected, value, lines, depth + 1, counter, maybe_none=False)
        elif each == "[]":
            lines.append(f"{pad}if type({value}) is list:")
            lines.append(f"{pad}    for {member} in {value}:")
            _emit_member(child, expected, member, lines, depth + 2, counter)
        else:
            lines.append(f"{pad}if type({value}) is dict:")
            lines.append(f"{pad}    for key, {member} in {value}.items():")
            lines.append(f"{pad}        if type(key) is not str:")
            lines.append(f"{pad}            return False")
            _emit_member(child, expected, member, lines, depth + 2, counter)


def _emit_member(node: _Node, expected: type | None, var: str, lines: list[str], depth: int, counter: list[int],
                 *, maybe_none: bool = True) -> None:  # fmt: skip
    """The checks of one value: its type, then (when it is a mapping) its own fields."""
    pad = "    " * depth
    if expected is not None:
        present = f"{var} is not None and " if maybe_none else ""
        lines.append(f"{pad}if {present}not isinstance({var}, {expected.__name__}):")
        lines.append(f"{pad}    return False")
    if node.children:
        lines.append(f"{pad}if type({var}) is dict:")
        _emit(node, var, lines, depth + 1, counter)


def _walk(tree: _Node, obj: Mapping[str, Any], trail: Trail) -> str | None:
    for (name, each), node in tree.children.items():
        value = obj.get(name)
        if value is None:
            continue
        members: list[tuple[tuple[str, object], Any]]
        if not each:
            members = [((name, None), value)]
        elif each == "[]" and type(value) is list:
            members = [((name, i), item) for i, item in enumerate(value)]
        elif each == "{}" and type(value) is dict:
            members = [((name, repr(k)), v if type(k) is str else _BadKey()) for k, v in value.items()]
        else:
            continue
        for label, member in members:
            if isinstance(member, _BadKey):
                return f"{_where(trail)}.{name} has a key that is not a string: {label[1]}"
            if node.expected is not None and member is not None and not isinstance(member, node.expected):
                return f"{_where((*trail, label))} is {_NAMES.get(type(member), 'other')}, not {_NAMES[node.expected]}"
            if node.children and type(member) is dict:
                problem = _walk(node, member, (*trail, label))
                if problem is not None:
                    return problem
    return None


def _where(trail: Trail) -> str:
    return ".".join(name if index is None else f"{name}[{index}]" for name, index in trail)


class _BadKey:
    """Stands for the value of a mapping entry whose key is not a string (YAML allows ``1: a``)."""
