"""One verdict per edge, naming the first layer that fails.

Layers, in the order a connection meets them (DESIGN.md, "Statuses"):
target exists → the source's DNS resolves it → the port is exposed → ready
endpoints exist → no NetworkPolicy denies it (one policy check comes first: a
source whose egress cannot reach the cluster DNS resolves nothing, so every edge
from it is ``blocked``). Stopping at the first failure
keeps the verdict actionable: fixing a port is pointless while the name does
not resolve.

Every broken edge whose target is known gets a ``fix``: the shortest name that
the *source's own resolver* maps to the target (checked with the DNS model,
not assumed), so ``svc`` within a namespace, ``svc.ns`` across, and the full
FQDN only where the pod has no cluster search list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from novadiag.addresses import is_ip_literal
from novadiag.dns import Answer, ResolverConfig, resolve, resolver_config
from novadiag.index import ClusterIndex, ServiceInfo
from novadiag.model import Edge, ObjectRef, Reference, Status
from novadiag.policies import Decision, PolicyIndex, evaluate_dns, evaluate_external, service_denial
from novadiag.targets import Intent, intended_target
from novadiag.workloads import Workload


@dataclass
class VerdictContext:
    """Caches shared by all edges of one audit (resolver configs, endpoint checks)."""

    index: ClusterIndex
    node_search: tuple[str, ...] = ()
    cluster_dns_ips: tuple[str, ...] = ()
    policies: PolicyIndex | None = None  # NetworkPolicies; None: not judged (no policy in the snapshot)
    _resolvers: dict[tuple[object, ...], ResolverConfig] = field(default_factory=dict)
    _has_endpoints: dict[tuple[str, str], bool] = field(default_factory=dict)

    def resolver_for(self, workload: Workload) -> ResolverConfig:
        spec = workload.pod_spec
        key = (
            workload.namespace,
            spec.get("dnsPolicy"),
            bool(spec.get("hostNetwork")),
            repr(spec.get("dnsConfig")) if spec.get("dnsConfig") else None,
        )
        config = self._resolvers.get(key)
        if config is None:
            config = resolver_config(
                spec,
                workload.namespace,
                self.index.cluster_domain,
                node_search=self.node_search,
                cluster_dns_ips=self.cluster_dns_ips,
            )
            self._resolvers[key] = config
        return config

    def has_endpoints(self, svc: ServiceInfo) -> bool:
        key = (svc.namespace, svc.name)
        known = self._has_endpoints.get(key)
        if known is None:
            known = _has_endpoints(svc, self.index)
            self._has_endpoints[key] = known
        return known


def judge_all(
    references: Iterable[Reference], workloads: Mapping[ObjectRef, Workload], ctx: VerdictContext
) -> list[Edge]:
    """Verdicts for many references; ``workloads`` maps ObjectRef → Workload."""
    return [judge(ref, workloads[ref.workload], ctx) for ref in references]


def judge(ref: Reference, workload: Workload, ctx: VerdictContext) -> Edge:
    """The verdict of one edge."""
    index = ctx.index
    source_ns = ref.namespace
    intent = intended_target(ref.host, source_ns, index)
    config = ctx.resolver_for(workload)
    dns_denied = _policy_denies_dns(ref, workload, config, intent, ctx)
    if dns_denied is not None:
        return dns_denied
    if not intent.in_cluster:
        return _external(ref, workload, ctx)
    answer = resolve(ref.host, config, index)
    if intent.service is None:
        return _unknown_target(ref, intent, answer)
    target = intent.service
    if not answer.resolved or answer.service is None:
        return _unresolvable(ref, intent, answer, config, ctx)
    reached = answer.service
    if answer.via_alias is not None:
        target = reached  # the alias is a bridge; the Service meant is the one behind it
    via = f" via ExternalName {answer.via_alias.ref.namespace}/{answer.via_alias.name}" if answer.via_alias else ""
    musl = _musl_note(ref.host, config, index, answer)
    port_problem = _port_problem(ref.port, reached, intent, index)
    if port_problem is not None:
        detail, fix_port = port_problem
        fix = _fix(intent, reached, fix_port, config, ctx)
        return _edge(ref, "port-mismatch", detail + via + musl, target, reached, fix)
    if reached.type != "ExternalName" and not ctx.has_endpoints(reached):
        detail = f"{_label(reached)} selects no ready pod{via}"
        if reached.headless:
            detail += " (a headless Service without ready endpoints answers NXDOMAIN)"
        return _edge(ref, "no-endpoints", detail + musl, target, reached, None)
    blocked = _policy_blocks(ref, workload, reached, intent.hostname, target, ctx)
    if blocked is not None:
        return blocked
    detail = f"{ref.host} resolves to {_label(reached)}{via}"
    if answer.fqdn:
        detail += f" as {answer.fqdn.rstrip('.')}"
    return _edge(ref, "ok", detail + musl, target, reached, None)


def _edge(
    ref: Reference,
    status: Status,
    detail: str,
    target: ServiceInfo | None,
    reached: ServiceInfo | None,
    fix: str | None,
) -> Edge:
    return Edge(
        reference=ref,
        status=status,
        detail=detail,
        target=None if target is None else target.ref,
        resolves_to=None if reached is None else reached.ref,
        fix=fix,
    )


# -- NetworkPolicy layer (novadiag.policies): DNS egress first, then the connection itself --


def _policy_denies_dns(
    ref: Reference, workload: Workload, config: ResolverConfig, intent: Intent, ctx: VerdictContext
) -> Edge | None:
    """A source whose egress cannot reach the cluster DNS resolves no name: every edge from it is blocked."""
    if ctx.policies is None or not config.uses_cluster_dns or is_ip_literal(ref.host):
        return None
    decision = evaluate_dns(ctx.policies, ctx.policies.endpoint(workload))
    if decision.allowed:
        return None
    return _edge(ref, "blocked", decision.detail, intent.service, None, decision.fix)


def _external(ref: Reference, workload: Workload, ctx: VerdictContext) -> Edge:
    if ctx.policies is not None:
        decision = evaluate_external(ctx.policies, ctx.policies.endpoint(workload), ref.host, port=ref.port)
        if not decision.allowed:
            return Edge(ref, "blocked", decision.detail, fix=decision.fix)
    return Edge(ref, "external", f"{ref.host} is outside the cluster; not checked statically")


def _policy_blocks(
    ref: Reference,
    workload: Workload,
    reached: ServiceInfo,
    hostname: str | None,
    target: ServiceInfo,
    ctx: VerdictContext,
) -> Edge | None:
    if ctx.policies is None:
        return None
    source = ctx.policies.endpoint(workload)
    if reached.type == "ExternalName":
        external = reached.external_name or reached.name
        decision: Decision | None = evaluate_external(ctx.policies, source, external, port=ref.port)
    else:
        decision = service_denial(ctx.policies, source, reached, port=ref.port, hostname=hostname)
    if decision is None or decision.allowed:
        return None
    return _edge(ref, "blocked", decision.detail, target, reached, decision.fix)


def _unknown_target(ref: Reference, intent: Intent, answer: Answer) -> Edge:
    if intent.missing_namespace:
        detail = f"{ref.host} names namespace {intent.missing_namespace}, which does not exist"
    else:
        detail = f"no Service anywhere matches {ref.host}"
    reached = answer.service if answer.resolved else None
    return _edge(ref, "unknown-target", detail, None, reached, None)


def _unresolvable(ref: Reference, intent: Intent, answer: Answer, config: ResolverConfig, ctx: VerdictContext) -> Edge:
    target = intent.service
    assert target is not None
    tried = ", ".join(name.rstrip(".") for name in answer.tried[:4])
    more = "" if len(answer.tried) <= 4 else f" (+{len(answer.tried) - 4} more)"
    where = f"{_label(target)} lives in {target.namespace}"
    if not config.uses_cluster_dns:
        detail = (
            f"{ref.host} cannot resolve: the pod's resolver (dnsPolicy {config.policy}) "
            f"does not query the cluster DNS; {where}"
        )
    elif "." not in ref.host.rstrip("."):
        detail = (
            f"{ref.host} does not resolve from {ref.namespace}: a short name only finds Services "
            f"of the pod's own namespace; {where}"
        )
    else:
        detail = f"{ref.host} does not resolve from {ref.namespace} (tried {tried}{more}); {where}"
    if config.notes:
        detail += "; " + "; ".join(config.notes)
    fix = _fix(intent, target, ref.port, config, ctx)
    if fix is None and not config.uses_cluster_dns:
        detail += "; set dnsPolicy ClusterFirstWithHostNet (hostNetwork) or ClusterFirst"
    return _edge(ref, "dns-unresolvable", detail, target, None, fix)


def _port_problem(
    port: int | None, svc: ServiceInfo, intent: Intent, index: ClusterIndex
) -> tuple[str, int | None] | None:
    """(detail, port to use instead) when the port is not exposed; None when fine."""
    if port is None or svc.type == "ExternalName" or not svc.ports:
        return None
    exposed = {p.port for p in svc.ports}
    if port in exposed:
        return None
    if svc.headless or intent.hostname:
        # DNS gives pod IPs directly: the container port is what counts.
        if port in _container_ports(svc, index) | {_int(p.target_port) for p in svc.ports}:
            return None
    listed = ", ".join(str(p) for p in sorted(exposed))
    for p in svc.ports:
        if _int(p.target_port) == port:
            return (
                f"port {port} is the container port of {_label(svc)}; the Service exposes {p.port}",
                p.port,
            )
    suggestion = svc.ports[0].port if len(svc.ports) == 1 else None
    return (f"{_label(svc)} does not expose port {port} (it exposes {listed})", suggestion)


def _container_ports(svc: ServiceInfo, index: ClusterIndex) -> set[int]:
    ports: set[int] = set()
    for workload in index.selected_workloads(svc):
        for container in workload.pod_spec.get("containers") or ():
            for p in container.get("ports") or ():
                if isinstance(p.get("containerPort"), int):
                    ports.add(p["containerPort"])
    return ports


def _has_endpoints(svc: ServiceInfo, index: ClusterIndex) -> bool:
    live = index.endpoints.get((svc.namespace, svc.name))
    if index.live and live is not None:
        return bool(live.ready)
    if svc.selector is None:
        # Selector-less Services are fed by hand-made Endpoints; trust them if present.
        return live is None or bool(live.ready)
    return any(w.replicas > 0 for w in index.selected_workloads(svc))


def _fix(
    intent: Intent, target: ServiceInfo, port: int | None, config: ResolverConfig, ctx: VerdictContext
) -> str | None:
    """The shortest name that the source's resolver maps to the target, with the port."""
    zone = ctx.index.cluster_domain
    if intent.hostname:
        base = f"{intent.hostname}.{target.name}"
        forms = [base, f"{base}.{target.namespace}", f"{base}.{target.namespace}.svc"]
    else:
        forms = [target.name, f"{target.name}.{target.namespace}", f"{target.name}.{target.namespace}.svc"]
    forms.append(f"{forms[-1]}.{zone}")
    for form in forms:
        answer = resolve(form, config, ctx.index)
        if answer.service is not None and answer.service.ref == target.ref:
            musl = resolve(form, config, ctx.index, libc="musl")
            if musl.service is not None and musl.service.ref == target.ref:
                return form if port is None else f"{form}:{port}"
    return None


def _musl_note(host: str, config: ResolverConfig, index: ClusterIndex, glibc: Answer) -> str:
    musl = resolve(host, config, index, libc="musl")
    if musl.service == glibc.service and musl.kind == glibc.kind:
        return ""
    if not musl.resolved:
        return " (glibc only: musl/Alpine does not walk the search list for this name and fails)"
    return f" (glibc; musl/Alpine would reach {musl.service.name if musl.service else musl.fqdn})"


def _label(svc: ServiceInfo) -> str:
    return f"Service {svc.namespace}/{svc.name}"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
