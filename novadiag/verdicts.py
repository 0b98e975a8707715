"""One verdict per edge, naming the first layer that fails.

Layers, in the order a connection meets them (docs/report-contract.md, "Statuses"):
target exists → the source's DNS resolves it → the port is exposed → ready
endpoints exist → no NetworkPolicy denies it (one policy check comes first: a
source whose egress cannot reach the cluster DNS resolves nothing, so every edge
from it is ``blocked``). Stopping at the first failure
keeps the verdict actionable: fixing a port is pointless while the name does
not resolve.

A verdict that rests on objects the audit could not read (RBAC gaps) is
``unverified`` instead, its detail naming the missing permission; which reads
each layer needs is decided in :mod:`novadiag.visibility`.

Every broken edge whose target is known gets a ``fix``: the shortest name that
the *source's own resolver* maps to the target (checked with the DNS model,
not assumed), so ``svc`` within a namespace, ``svc.ns`` across, and the full
FQDN only where the pod has no cluster search list. The name and port are the
edge's ``fix_host``/``fix_port``; ``fix`` is the value to write, the reference
as written with them put in (:mod:`novadiag.fixvalue`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from novadiag.addresses import is_ip_literal
from novadiag.fixvalue import fix_value
from novadiag.index import ClusterIndex, ServiceInfo, remember
from novadiag.model import Edge, ObjectRef, Reference, Status
from novadiag.netpol.evaluation import (
    Decision,
    PolicyIndex,
    evaluate_dns,
    evaluate_external,
    service_denial,
)
from novadiag.netpol.policy import Endpoint
from novadiag.resolver import Answer, ResolverConfig, follow_aliases, resolve, resolver_config
from novadiag.selector import NAME_LABEL
from novadiag.targets import Intent, intended_target
from novadiag.visibility import Visibility
from novadiag.workloads import Workload

Address = tuple[str, int | None]
"""A host and port to name instead: what a fix puts into the reference."""


@dataclass(frozen=True, slots=True)
class NameVerdict:
    """An edge's verdict before NetworkPolicies: everything a (name, port, resolver) decides.

    Every workload of a namespace with the same DNS settings resolves a name
    the same way, so this part is judged once per distinct (host, port,
    resolver) and shared by all the references that name it. Only the policy
    layer depends on the source pod itself.
    """

    status: Status
    detail: str
    target: ServiceInfo | None = None
    reached: ServiceInfo | None = None
    fix: Address | None = None  # the name and port to use instead; the value to write depends on the reference
    meant: ServiceInfo | None = None  # the Service the name means, for a DNS-egress denial
    hostname: str | None = None  # a pod hostname named in front of the Service, for policy ports


@dataclass(frozen=True, slots=True)
class Source:
    """What the verdicts need of a source workload, worked out once for all its references."""

    config: ResolverConfig
    endpoint: Endpoint | None = None  # as NetworkPolicies see the pod; None when no policy is judged
    dns_blocked: bool = False  # it queries the cluster DNS and its policies deny that


@dataclass
class VerdictContext:
    """Caches shared by all edges of one audit (resolver configs, endpoint checks, name verdicts)."""

    index: ClusterIndex
    node_search: tuple[str, ...] = ()
    cluster_dns_ips: tuple[str, ...] | None = ()  # the cluster DNS Service's address; None: unknown
    policies: PolicyIndex | None = None  # NetworkPolicies; None: not judged (no policy in the snapshot)
    visibility: Visibility = field(default_factory=Visibility)  # what RBAC hid: verdicts resting on it are open
    _resolvers: dict[tuple[object, ...], ResolverConfig] = field(default_factory=dict)
    _has_endpoints: dict[tuple[str, str], bool] = field(default_factory=dict)
    _names: dict[Hashable, NameVerdict] = field(default_factory=dict)
    _sources: dict[ObjectRef, Source] = field(default_factory=dict)

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

    def source_for(self, workload: Workload) -> Source:
        found = self._sources.get(workload.ref)
        if found is None:
            config = self.resolver_for(workload)
            if self.policies is None:
                found = Source(config)
            else:
                endpoint = self.policies.endpoint(workload)
                blocked = config.uses_cluster_dns and not self.policies.dns_allowed(endpoint)
                found = Source(config, endpoint, blocked)
            self._sources[workload.ref] = found
        return found

    def has_endpoints(self, svc: ServiceInfo) -> bool:
        key = (svc.namespace, svc.name)
        known = self._has_endpoints.get(key)
        if known is None:
            known = _has_endpoints(svc, self.index)
            self._has_endpoints[key] = known
        return known

    def name_verdict(self, host: str, port: int | None, namespace: str, config: ResolverConfig) -> NameVerdict:
        """The policy-free verdict of ``host:port`` from ``namespace``, judged once per distinct question.

        Keyed on the config's identity: :meth:`resolver_for` hands out one
        ResolverConfig per (namespace, DNS settings), and this context keeps it alive.
        """
        key = (host, port, id(config))
        found = self._names.get(key)
        if found is None:
            found = remember(self._names, key, judge_name(host, port, namespace, config, self))
        return found


def judge_all(
    references: Iterable[Reference], workloads: Mapping[ObjectRef, Workload], ctx: VerdictContext
) -> list[Edge]:
    """Verdicts for many references; ``workloads`` maps ObjectRef → Workload."""
    return [judge(ref, workloads[ref.workload], ctx) for ref in references]


def judge(ref: Reference, workload: Workload, ctx: VerdictContext) -> Edge:
    """The verdict of one edge: its name's verdict, then the source pod's NetworkPolicies."""
    source = ctx.source_for(workload)
    named = ctx.name_verdict(ref.host, ref.port, ref.namespace, source.config)
    edge: Edge | None = None
    if source.endpoint is not None and ctx.policies is not None:
        edge = _policy_verdict(ref, source.endpoint, source.dns_blocked, named, ctx.policies)
    if edge is None:
        edge = _edge(ref, named.status, named.detail, named.target, named.reached, address=named.fix)
    return _unless_unread(edge, _policy_reads(edge, source.dns_blocked, ctx))


def judge_name(host: str, port: int | None, namespace: str, config: ResolverConfig, ctx: VerdictContext) -> NameVerdict:
    """Every layer but NetworkPolicies, for one name as one resolver sees it."""
    if config.unclassified:
        return _judge_unclassified(host, port, namespace, config, ctx)
    index = ctx.index
    intent = intended_target(host, namespace, index)
    if not intent.in_cluster:
        external = NameVerdict(
            "external", f"{host} is outside the cluster; not checked statically", meant=intent.service
        )
        return _open(external, ctx.visibility.maybe_namespace(_second_label(host)))
    answer = resolve(host, config, index)
    if intent.service is None:
        return _open(_unknown_target(host, intent, answer), ctx.visibility.unknown_target(intent.missing_namespace))
    target = intent.service
    if intent.hostname is not None:
        missing_pod = _missing_pod(host, target, intent.hostname, index)
        if missing_pod is not None:
            return _open(missing_pod, ctx.visibility.stateful_sets(target.namespace))
    if not answer.resolved or answer.service is None:
        tried = _tried_namespaces(answer, namespace, index.cluster_domain)
        return _open(
            _unresolvable(host, port, namespace, intent, answer, config, ctx), ctx.visibility.unresolved(tried)
        )
    reached = answer.service
    if answer.via_alias is not None:
        target = reached  # the alias is a bridge; the Service meant is the one behind it
    via = f" via ExternalName {answer.via_alias.ref.namespace}/{answer.via_alias.name}" if answer.via_alias else ""
    musl = _musl_note(host, config, index, answer)
    port_problem = _port_problem(port, reached, intent, index)
    if port_problem is not None:
        detail, fix_port = port_problem
        fix = _fix(intent, reached, fix_port, config, ctx)
        return NameVerdict("port-mismatch", detail + via + musl, target, reached, fix, intent.service)
    if reached.type != "ExternalName" and not ctx.has_endpoints(reached):
        detail = f"{_label(reached)} selects no ready pod{via}"
        if reached.headless:
            detail += " (a headless Service without ready endpoints answers NXDOMAIN)"
        verdict = NameVerdict("no-endpoints", detail + musl, target, reached, None, intent.service)
        return _open(verdict, ctx.visibility.endpoints(reached.namespace))
    detail = f"{host} resolves to {_label(reached)}{via}"
    if answer.fqdn:
        detail += f" as {answer.fqdn.rstrip('.')}"
    return NameVerdict("ok", detail + musl, target, reached, None, intent.service, intent.hostname)


def _judge_unclassified(
    host: str, port: int | None, namespace: str, config: ResolverConfig, ctx: VerdictContext
) -> NameVerdict:
    """A ``dnsPolicy: None`` pod whose nameservers may or may not be the cluster DNS.

    The name is judged both ways. Where the answer does not depend on it (an
    external host, a name of no Service, a name that fails either way) that verdict stands;
    otherwise it is ``unverified``, saying what would decide it and what the
    verdict is if the nameserver is the cluster DNS.
    """
    as_cluster = judge_name(host, port, namespace, config.as_cluster_dns(), ctx)
    if as_cluster.status == "external":
        return as_cluster
    otherwise = judge_name(host, port, namespace, config.as_other_dns(), ctx)
    servers = ", ".join(config.unclassified)
    missing = (
        f"whether nameserver {servers} is the cluster DNS: no Service kube-system/kube-dns was read "
        "and no --cluster-dns was given"
    )
    if as_cluster.status == otherwise.status == "dns-unresolvable":
        return replace(as_cluster, detail=f"{as_cluster.detail}; no fix offered: unknown {missing}", fix=None)
    if as_cluster.status == otherwise.status:
        return as_cluster
    if_cluster = replace(as_cluster, detail=f"{as_cluster.detail} (if it is)")
    return _open(if_cluster, [missing])


def _ref(svc: ServiceInfo | None) -> ObjectRef | None:
    return None if svc is None else svc.ref


# -- what the audit could not read (novadiag.visibility): a verdict resting on it stays open --


def _unverified_detail(status: Status, detail: str, missing: list[str]) -> str:
    """The missing permissions (the first three: a namespace-scoped role may miss hundreds), then the rest."""
    named = "; ".join(missing[:3]) + (f"; {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"cannot be verified ({named}); from what was read: {status}: {detail}"


def _open(verdict: NameVerdict, missing: list[str]) -> NameVerdict:
    """The name verdict, or ``unverified`` when objects it depends on could not be read."""
    if not missing:
        return verdict
    detail = _unverified_detail(verdict.status, verdict.detail, missing)
    return NameVerdict("unverified", detail, verdict.target, verdict.reached, None, verdict.meant)


def _unless_unread(edge: Edge, missing: list[str]) -> Edge:
    if not missing:
        return edge
    return Edge(
        edge.reference,
        "unverified",
        _unverified_detail(edge.status, edge.detail, missing),
        edge.target,
        edge.resolves_to,
    )


def _second_label(host: str) -> str | None:
    """``ns`` of a two-label host ``svc.ns``: a namespace the audit may not have seen, or a domain."""
    labels = host.rstrip(".").split(".")
    return labels[1] if len(labels) == 2 and not is_ip_literal(host) else None


def _tried_namespaces(answer: Answer, source_namespace: str, zone: str) -> list[str]:
    """The namespaces whose Services the resolver asked about (``svc.NS.svc.<zone>``), the source's first."""
    found = [source_namespace]
    suffix = f".svc.{zone}"
    for name in answer.tried:
        name = name.rstrip(".")
        if name.endswith(suffix):
            labels = name[: -len(suffix)].split(".")
            if len(labels) >= 2:
                found.append(labels[-1])
    return list(dict.fromkeys(found))


def _policy_reads(edge: Edge, dns_blocked: bool, ctx: VerdictContext) -> list[str]:
    """The missing reads an ``ok`` or ``blocked`` edge depends on (other statuses: none at this layer).

    ``ok``: a NetworkPolicy of the source or target namespace that could not be
    read may deny it. ``blocked``: the denial stands on the policies that were
    read, unless they select namespaces by labels and Namespaces could not be
    listed (then every namespace looked unlabelled).
    """
    if edge.status == "ok":
        meant = edge.resolves_to or edge.target
        return ctx.visibility.policies([edge.reference.namespace, meant.namespace if meant else None])
    unlabelled = ctx.visibility.namespace_labels()
    if edge.status == "blocked" and unlabelled and ctx.policies is not None:
        meant = edge.resolves_to or edge.target
        namespaces: list[str | None] = [edge.reference.namespace, meant.namespace if meant else None]
        if dns_blocked:
            namespaces += [pod.namespace for pod in ctx.policies.dns_pods]
        if _selects_namespaces_by_label(ctx.policies, namespaces):
            return unlabelled
    return []


def _selects_namespaces_by_label(policies: PolicyIndex, namespaces: Iterable[str | None]) -> bool:
    """Whether a policy of these namespaces has a namespaceSelector beyond ``kubernetes.io/metadata.name``."""
    for namespace in dict.fromkeys(ns for ns in namespaces if ns is not None):
        for policy in policies.by_namespace.get(namespace, ()):
            for rule in (*policy.ingress, *policy.egress):
                for peer in rule.peers:
                    selector = peer.namespaces
                    if selector is None:
                        continue
                    keys = {k for k, _ in selector.labels} | {k for k, _, _ in selector.expressions}
                    if keys - {NAME_LABEL}:
                        return True
    return False


# -- NetworkPolicy layer (novadiag.netpol.evaluation): DNS egress first, then the connection itself --


def _policy_verdict(
    ref: Reference, source: Endpoint, dns_blocked: bool, named: NameVerdict, policies: PolicyIndex
) -> Edge | None:
    """The ``blocked`` edge when the source's policies (or the target's) stop it; None when they let it through.

    A source whose egress cannot reach the cluster DNS resolves no name, so that
    check comes first and blocks every edge of the source; then an external host,
    then the Service the name reached (only when every other layer is fine).
    """
    if dns_blocked and not is_ip_literal(ref.host):
        decision = evaluate_dns(policies, source)
        return _edge(ref, "blocked", decision.detail, named.meant, None, decision.fix)
    if named.status == "external":
        decision = evaluate_external(policies, source, ref.host, port=ref.port)
        return None if decision.allowed else Edge(ref, "blocked", decision.detail, fix=decision.fix)
    if named.status != "ok" or named.reached is None or named.target is None:
        return None
    reached = named.reached
    if reached.type == "ExternalName":
        external = reached.external_name or reached.name
        found: Decision | None = evaluate_external(policies, source, external, port=ref.port)
    else:
        found = service_denial(policies, source, reached, port=ref.port, hostname=named.hostname)
    if found is None or found.allowed:
        return None
    return _edge(ref, "blocked", found.detail, named.target, reached, found.fix)


def _edge(
    ref: Reference,
    status: Status,
    detail: str,
    target: ServiceInfo | None,
    reached: ServiceInfo | None,
    fix: str | None = None,
    *,
    address: Address | None = None,
) -> Edge:
    """The edge; a name fix (``address``) becomes the value to write into the reference's slot."""
    if address is None:
        return Edge(ref, status, detail, _ref(target), _ref(reached), fix)
    host, port = address
    if ref.port_env is not None and port is not None and port != ref.port:
        detail += f"; set {ref.port_env} to {port}"
    value = fix_value(ref, host, port)
    return Edge(ref, status, detail, _ref(target), _ref(reached), value, fix_host=host, fix_port=port)


def _unknown_target(host: str, intent: Intent, answer: Answer) -> NameVerdict:
    if intent.missing_namespace:
        detail = f"{host} names namespace {intent.missing_namespace}, which does not exist"
    else:
        detail = f"no Service anywhere matches {host}"
    reached = answer.service if answer.resolved else None
    return NameVerdict("unknown-target", detail, None, reached)


def _missing_pod(host: str, svc: ServiceInfo, hostname: str, index: ClusterIndex) -> NameVerdict | None:
    """The verdict of a pod name under a headless Service when no such pod exists; None when it does.

    Judged before DNS, as the target is: the name's pod is its target. An
    ordinal past the StatefulSet's replicas is ``no-endpoints`` (the name is
    right, no pod stands behind it until the set scales up); a pod name that no
    StatefulSet of the Service makes is ``unknown-target``.
    """
    if hostname in index.hostnames(svc.namespace, svc.name):
        return None
    for owner in index.stateful_sets_of(svc):
        if _ordinal(hostname, owner.ref.name) is not None:
            detail = (
                f"{host} names pod {hostname} of StatefulSet {owner.namespace}/{owner.ref.name}, "
                f"which has {_replica_range(owner.ref.name, owner.replicas)}: no such pod answers"
            )
            return NameVerdict("no-endpoints", detail, svc, svc, None, svc, hostname)
    owners = ", ".join(sorted(o.ref.name for o in index.stateful_sets_of(svc)))
    known = f"StatefulSet(s) with serviceName {svc.name}: {owners}" if owners else f"no StatefulSet names {svc.name}"
    detail = f"{host} names pod {hostname} under {_label(svc)}, which has no pod of that name ({known})"
    return NameVerdict("unknown-target", detail, None, None, None, svc)


def _ordinal(hostname: str, stateful_set: str) -> int | None:
    """``3`` for ``kafka-3`` of StatefulSet ``kafka``; None when the name is not one of its pods'."""
    prefix = f"{stateful_set}-"
    rest = hostname[len(prefix) :] if hostname.startswith(prefix) else ""
    return int(rest) if rest.isdigit() and (rest == "0" or not rest.startswith("0")) else None


def _replica_range(name: str, replicas: int) -> str:
    """``3 replicas (kafka-0..kafka-2)``, as a reader checks the ordinal against it."""
    if replicas <= 0:
        return "0 replicas"
    if replicas == 1:
        return f"1 replica ({name}-0)"
    return f"{replicas} replicas ({name}-0..{name}-{replicas - 1})"


def _unresolvable(
    host: str,
    port: int | None,
    namespace: str,
    intent: Intent,
    answer: Answer,
    config: ResolverConfig,
    ctx: VerdictContext,
) -> NameVerdict:
    target = intent.service
    assert target is not None
    broken_alias = _broken_alias(host, target, ctx.index)
    if broken_alias is not None:
        return NameVerdict("dns-unresolvable", broken_alias, target, None, None, target)
    tried = ", ".join(name.rstrip(".") for name in answer.tried[:4])
    more = "" if len(answer.tried) <= 4 else f" (+{len(answer.tried) - 4} more)"
    where = f"{_label(target)} lives in {target.namespace}"
    if not config.uses_cluster_dns:
        detail = (
            f"{host} cannot resolve: the pod's resolver (dnsPolicy {config.policy}) "
            f"does not query the cluster DNS; {where}"
        )
    elif "." not in host.rstrip("."):
        detail = (
            f"{host} does not resolve from {namespace}: a short name only finds Services "
            f"of the pod's own namespace; {where}"
        )
    else:
        detail = f"{host} does not resolve from {namespace} (tried {tried}{more}); {where}"
    if config.notes:
        detail += "; " + "; ".join(config.notes)
    fix = _fix(intent, target, port, config, ctx)
    if fix is None and not config.uses_cluster_dns:
        detail += "; set dnsPolicy ClusterFirstWithHostNet (hostNetwork) or ClusterFirst"
    return NameVerdict("dns-unresolvable", detail, target, None, fix, target)


def _broken_alias(host: str, target: ServiceInfo, index: ClusterIndex) -> str | None:
    """Why a name meaning an ExternalName Service fails when its CNAME chain loops or dangles; None otherwise."""
    chain = follow_aliases(target, index)
    if chain.final is not None:
        return None
    if chain.loop:
        return (
            f"{host} names ExternalName {_label(target)}, whose CNAME chain loops ({chain.describe()}): "
            "the lookup never ends in an address; point one of them at a Service that is not an alias"
        )
    return (
        f"{host} names ExternalName {_label(target)}, whose chain ({chain.describe()}) ends at a Service "
        "that does not exist; point it at an existing Service"
    )


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
) -> Address | None:
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
                return form, port
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
