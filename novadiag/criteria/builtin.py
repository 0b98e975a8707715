"""The built-in success criteria: what "the migration worked" means, checkable.

Each criterion is a function ``(params, context) -> Outcome`` registered under
the name used in ``*.novadiag.yaml`` files, with the parameters it accepts
declared next to it so that a typo in a criteria file fails at collection,
naming the file and line, rather than passing silently at run time.

The Nova scenario's six criteria (docs/lab.md) map onto them: zero CrashLoopBackOff →
``no-crashloop``; all services use short names → ``short-names-resolve``;
the gateway answers → ``endpoint-responds``; 95% less cross-namespace traffic →
``cross-namespace-reduction``; one production namespace → ``namespace-count``;
staging kept apart → ``separation``.

A criterion that cannot be checked never passes. ``short-names-resolve`` and
``endpoint-responds`` need what probe pods observe; in a run without probes
(``--no-probe``, or manifests) :func:`evaluate` refuses them before they run —
no audit with probes, no probe pod — and the item fails as "could not be
checked", because a skip would let a CI gate go green on a check never made.
A criterion that names a namespace the cluster does not have fails too:
zero objects to check is not a pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novadiag.criteria.context import CheckContext
from novadiag.errors import ConfigError
from novadiag.model import BROKEN_STATUSES, STATUSES, Edge
from novadiag.redaction import redact


@dataclass(frozen=True)
class Outcome:
    """Result of one criterion: passed, a one-line summary, and the offenders."""

    passed: bool
    summary: str
    offenders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    """Beyond the type: the problem with a value (a short phrase), or None when fine."""


def _names(value: list[Any]) -> str | None:
    bad = [v for v in value if not isinstance(v, str) or not v]
    return f"must list names, not {bad[0]!r}" if bad else None


def _percent(value: float) -> str | None:
    return None if 0 <= value <= 100 else f"must be a percentage from 0 to 100, not {value!r}"


def _two_groups(value: list[Any]) -> str | None:
    if len(value) != 2 or not all(isinstance(group, list) and group and _names(group) is None for group in value):
        return "must be two non-empty lists of namespace names"
    return None


@dataclass(frozen=True)
class CriterionDef:
    name: str
    check: Callable[[Mapping[str, Any], CheckContext], Outcome]
    params: Mapping[str, Param] = field(default_factory=dict)
    needs_probes: bool = False
    """Checks what probe pods observe: cannot be checked in a run without probes."""
    doc: str = ""


REGISTRY: dict[str, CriterionDef] = {}


def criterion(
    name: str, *, needs_probes: bool = False, **params: Param
) -> Callable[
    [Callable[[Mapping[str, Any], CheckContext], Outcome]], Callable[[Mapping[str, Any], CheckContext], Outcome]
]:
    def register(
        fn: Callable[[Mapping[str, Any], CheckContext], Outcome],
    ) -> Callable[[Mapping[str, Any], CheckContext], Outcome]:
        REGISTRY[name] = CriterionDef(name, fn, params, needs_probes, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


def evaluate(definition: CriterionDef, params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """Run one criterion; ConfigError when this run cannot check it (a criterion needing probes, none running)."""
    if definition.needs_probes and (reason := ctx.why_no_probes()) is not None:
        raise ConfigError(f"cannot be checked without probes ({reason})")
    return definition.check(params, ctx)


NAMESPACES = Param((list,), help="namespaces to check (default: all)", check=_names)


def _in(namespaces: Sequence[str] | None, ns: str | None) -> bool:
    return not namespaces or ns in namespaces


def _missing(names: Sequence[str] | None, ctx: CheckContext) -> Outcome | None:
    """A failed outcome when a named namespace does not exist: checking nothing must not pass.

    A misspelt name, or a namespace a migration has yet to create (``nova-prod``
    before the consolidation), would otherwise leave zero objects to check.
    """
    absent = ctx.missing_namespaces(names or ())
    if not absent:
        return None
    lines = tuple(f"namespace {name} does not exist" for name in absent)
    return Outcome(False, "; ".join(lines), lines)


def _edge_line(edge: Edge) -> str:
    fix = f" — fix: {edge.fix}" if edge.fix else ""
    return f"{edge.id}: {edge.status}: {edge.detail}{fix}"


@criterion("no-crashloop", namespaces=NAMESPACES)
def no_crashloop(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """No container of any pod is in CrashLoopBackOff."""
    if (absent := _missing(params.get("namespaces"), ctx)) is not None:
        return absent
    offenders = []
    for pod in ctx.pods():
        meta = pod.get("metadata") or {}
        if not _in(params.get("namespaces"), meta.get("namespace")):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                offenders.append(
                    f"pod {meta.get('namespace')}/{meta.get('name')} container {cs.get('name')}: "
                    f"CrashLoopBackOff, {cs.get('restartCount', 0)} restarts"
                )
    return Outcome(not offenders, f"{len(offenders)} container(s) in CrashLoopBackOff", tuple(sorted(offenders)))


@criterion("max-restarts", max=Param(int, required=True), namespaces=NAMESPACES)
def max_restarts(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """No container restarted more than ``max`` times."""
    if (absent := _missing(params.get("namespaces"), ctx)) is not None:
        return absent
    limit = params["max"]
    offenders = []
    for pod in ctx.pods():
        meta = pod.get("metadata") or {}
        if not _in(params.get("namespaces"), meta.get("namespace")):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            if int(cs.get("restartCount") or 0) > limit:
                offenders.append(
                    f"pod {meta.get('namespace')}/{meta.get('name')} container {cs.get('name')}: "
                    f"{cs.get('restartCount')} restarts > {limit}"
                )
    return Outcome(not offenders, f"{len(offenders)} container(s) restarted more than {limit} times", tuple(offenders))


@criterion(
    "no-broken-edges",
    namespaces=NAMESPACES,
    statuses=Param((list,), help="statuses that count as broken (default: broken and unverified)", check=_names),
)
def no_broken_edges(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """No edge from the given namespaces has a broken status, nor one the audit could not verify."""
    if (absent := _missing(params.get("namespaces"), ctx)) is not None:
        return absent
    statuses = set(params.get("statuses") or BROKEN_STATUSES | {"unverified"})  # a criterion that could not see fails
    unknown = statuses - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status(es): {', '.join(sorted(unknown))}")
    edges = [
        e for e in ctx.report().edges if e.status in statuses and _in(params.get("namespaces"), e.reference.namespace)
    ]
    return Outcome(not edges, f"{len(edges)} broken edge(s)", tuple(_edge_line(e) for e in edges))


@criterion("short-names-resolve", needs_probes=True, namespaces=NAMESPACES)
def short_names_resolve(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """Every same-namespace reference uses a short name that resolves and connects, as observed by probes.

    Backends of Ingresses and routes are not DNS names (their controller reads the Service from the
    API) and are never probed: this criterion does not judge them; ``no-broken-edges`` does.
    """
    if (absent := _missing(params.get("namespaces"), ctx)) is not None:
        return absent
    report = ctx.report()
    offenders = []
    checked = 0
    for edge in report.edges:
        if not _in(params.get("namespaces"), edge.reference.namespace) or edge.status == "external":
            continue
        if edge.reference.routing:
            continue
        checked += 1  # every reference judged below: N of M never has N > M, nor M = 0 with offenders
        target = edge.target or edge.resolves_to
        if target is None or target.namespace != edge.reference.namespace:
            if edge.broken:
                offenders.append(_edge_line(edge))
            continue
        short = (
            "." not in edge.reference.host.rstrip(".")
            or edge.reference.host.count(".") == 2
            and edge.reference.host.split(".")[1] == "svc"
        )
        if not short:
            offenders.append(
                f"{edge.id}: uses {edge.reference.host}; the short name {target.name} works in its namespace"
            )
        elif edge.probe is None:
            offenders.append(f"{edge.id}: not probed ({'no probe ran' if not report.probes else 'no observation'})")
        elif edge.probe.dns != "ok" or edge.probe.connect != "ok":
            offenders.append(
                f"{edge.id}: probe saw DNS {edge.probe.dns}, connect {edge.probe.connect}: {edge.probe.error}"
            )
    if not checked:
        return Outcome(True, "no service reference to check in the namespace(s)")
    return Outcome(not offenders, f"{len(offenders)} of {checked} service reference(s) fail", tuple(offenders))


@criterion(
    "endpoint-responds",
    needs_probes=True,
    namespace=Param(str, required=True, help="namespace the request is made from (a probe pod there)"),
    url=Param(str, required=True, help="http://host:port/path or grpc://host:port"),
    method=Param(str, default="GET"),
    body=Param((str, dict, list)),
    expect_status=Param(int),
    expect_body=Param(str),
)
def endpoint_responds(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """An HTTP or gRPC request from a probe pod in a namespace gets the expected answer."""
    if (absent := _missing([params["namespace"]], ctx)) is not None:
        return absent
    body = params.get("body")
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    result = ctx.request_from(
        params["namespace"],
        params["url"],
        method=params.get("method") or "GET",
        body=body,
        expect_status=params.get("expect_status"),
        expect_body=params.get("expect_body"),
    )
    system = result.get("system") or {}
    line = (
        f"{params.get('method') or 'GET'} {redact(params['url'])} from {params['namespace']}: "
        f"DNS {system.get('status')}, connect {result.get('connect')}, {result.get('detail') or result.get('health')}"
    )
    passed = system.get("status") == "ok" and result.get("connect") == "ok" and result.get("health") == "ok"
    return Outcome(passed, line, () if passed else (line,))


@criterion(
    "cross-namespace-reduction",
    at_least_percent=Param((int, float), required=True, check=_percent),
    namespaces=NAMESPACES,
    ignore=Param(
        (list,),
        help="namespaces kept apart on purpose (shared infrastructure): edges to them don't count",
        check=_names,
    ),
)
def cross_namespace_reduction(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """At least N% fewer cross-namespace edges than the baseline audit."""
    if (absent := _missing(params.get("namespaces"), ctx)) is not None:
        return absent
    baseline = ctx.baseline()
    if baseline is None:
        raise ValueError(
            "needs a baseline, an earlier audit JSON or snapshot: "
            "novadiag check --baseline FILE (under pytest: --novadiag-baseline FILE)"
        )
    ignored = set(params.get("ignore") or ())
    before = [
        e
        for e in baseline
        if e["cross_namespace"]
        and _in(params.get("namespaces"), e["source"]["namespace"])
        and e["source"]["namespace"] not in ignored
        and ((e.get("target") or e.get("resolves_to") or {}).get("namespace") not in ignored)
    ]
    after = [
        e
        for e in ctx.report().edges
        if e.cross_namespace
        and _in(params.get("namespaces"), e.reference.namespace)
        and e.reference.namespace not in ignored
        and (e.target or e.resolves_to) is not None
        and (e.target or e.resolves_to).namespace not in ignored  # type: ignore[union-attr]
    ]
    if not before:
        return Outcome(not after, f"baseline has no cross-namespace edge; now {len(after)}", tuple(e.id for e in after))
    reduction = 100.0 * (len(before) - len(after)) / len(before)
    need = params["at_least_percent"]
    summary = f"cross-namespace edges {len(before)} → {len(after)}: {reduction:.1f}% fewer (need ≥ {need}%)"
    offenders = tuple(
        f"{e.id}: {e.reference.namespace} → {(e.target or e.resolves_to).namespace}"  # type: ignore[union-attr]
        for e in after
    )
    return Outcome(reduction >= params["at_least_percent"], summary, offenders)


@criterion(
    "namespace-count",
    namespaces=Param(
        (list,), required=True, help="exactly the namespaces the environment's workloads live in", check=_names
    ),
    environment=Param(str, help="namespace label environment=<value> selecting the environment"),
    label=Param(str, default="environment", help="the namespace label naming the environment"),
)
def namespace_count(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """The environment's workloads live in exactly the named namespaces."""
    wanted = set(params["namespaces"])
    env = params.get("environment")
    labels = ctx.namespace_labels()
    with_workloads = {w.namespace for w in ctx.workloads()}
    if env is not None:
        key = params.get("label") or "environment"
        actual = {ns for ns in with_workloads if labels.get(ns, {}).get(key) == env}
    else:
        actual = with_workloads & (wanted | {ns for ns in with_workloads if not ns.startswith("kube-")})
    extra, missing = sorted(actual - wanted), sorted(wanted - actual)
    offenders = tuple(
        [f"namespace {ns} has workloads but is not listed" for ns in extra]
        + [f"namespace {ns} is listed but has no workloads" for ns in missing]
    )
    summary = f"workloads{' of ' + env if env else ''} live in {len(actual)} namespace(s): {', '.join(sorted(actual))}"
    return Outcome(not offenders, summary, offenders)


@criterion(
    "separation",
    between=Param(
        (list,), required=True, help="two lists of namespaces that must not talk to each other", check=_two_groups
    ),
)
def separation(params: Mapping[str, Any], ctx: CheckContext) -> Outcome:
    """No edge between two groups of namespaces (e.g. prod and staging), either way."""
    groups = params["between"]
    if len(groups) != 2 or not all(isinstance(g, list) and g for g in groups):
        raise ValueError("between must be two non-empty lists of namespaces")
    if (absent := _missing([*groups[0], *groups[1]], ctx)) is not None:
        return absent
    a, b = set(groups[0]), set(groups[1])
    offenders = []
    for edge in ctx.report().edges:
        target = edge.target or edge.resolves_to
        if target is None:
            continue
        src, dst = edge.reference.namespace, target.namespace
        if (src in a and dst in b) or (src in b and dst in a):
            offenders.append(f"{edge.id}: {src} → {dst}")
    return Outcome(not offenders, f"{len(offenders)} edge(s) cross between the groups", tuple(offenders))


def _types(spec: Param) -> tuple[type, ...]:
    return (spec.type,) if isinstance(spec.type, type) else spec.type


def _type_ok(value: Any, spec: Param) -> bool:
    """isinstance, except that YAML's true/false is not a number (bool is an int in Python)."""
    if isinstance(value, bool):
        return bool in _types(spec)
    return isinstance(value, spec.type)


def validate(name: str, params: Mapping[str, Any]) -> list[str]:
    """Problems with a criterion's parameters, each a short sentence (empty when fine)."""
    definition = REGISTRY.get(name)
    if definition is None:
        return [f"unknown criterion {name!r}; known: {', '.join(sorted(REGISTRY))}"]
    problems = []
    for key, value in params.items():
        spec = definition.params.get(key)
        if spec is None:
            problems.append(
                f"{name}: unknown parameter {key!r} (accepts: {', '.join(sorted(definition.params)) or 'none'})"
            )
        elif value is not None and not _type_ok(value, spec):
            expected = "/".join(t.__name__ for t in _types(spec))
            problems.append(f"{name}: parameter {key!r} must be {expected}, got {type(value).__name__}")
        elif value is not None and spec.check is not None and (problem := spec.check(value)) is not None:
            problems.append(f"{name}: parameter {key!r} {problem}")
    for key, spec in definition.params.items():
        if spec.required and key not in params:
            problems.append(f"{name}: missing required parameter {key!r}")
    return problems
