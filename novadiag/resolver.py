"""What a pod's resolver does with a name, and which object answers.

This is the heart of novadiag: a short name only resolves inside the caller's
own namespace because of the search list the kubelet writes into every pod's
resolv.conf, and the order in which the C library walks it. The rules modelled
here (sources: kubernetes/dns docs/specification.md, the Kubernetes pages "DNS
for Services and Pods" and "Debugging DNS Resolution", resolv.conf(5), musl's
resolver notes):

- ``ClusterFirst`` (the default when dnsPolicy is unset) and
  ``ClusterFirstWithHostNet``: cluster DNS, ``search <ns>.svc.<zone> svc.<zone>
  <zone>`` then the node's search domains, ``ndots:5``.
- ``hostNetwork: true`` with ``ClusterFirst`` silently falls back to ``Default``.
- ``Default``: the node's resolv.conf — no cluster search list, and (as on most
  clusters) a nameserver that does not serve the cluster zone.
- ``None``: only what ``dnsConfig`` gives. A nameserver that is the cluster DNS
  Service's address makes it a cluster resolver with the pod's own searches and
  options; any other is not the cluster DNS; when that address is not known
  the nameservers stay ``unclassified`` and verdicts resting on them stay open.
- ``dnsConfig`` nameservers and searches are appended (deduplicated); its
  options override by name.
- glibc: a name with fewer dots than ndots tries the search list first and the
  name as is last; with ndots or more dots, the name first then the search
  list. musl never walks the search list for such names. A trailing dot means
  absolute: no search list at all.

The model is pure: it takes a pod spec and a :class:`ClusterIndex` and never
touches the network, so it is the same for manifests, snapshots and live runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from novadiag.addresses import is_ip_literal
from novadiag.index import ClusterIndex, ServiceInfo, remember
from novadiag.model import ObjectRef

CLUSTER_DNS = "cluster-dns"
NODE_DNS = "node-dns"
MAX_SEARCH_DOMAINS = 32
# Last labels no upstream resolver answers for: "svc" (a cluster name missing its
# zone) and "local" (mDNS, and the usual cluster zone of some other cluster).
_NOT_UPSTREAM = frozenset({"svc", "local"})

Libc = Literal["glibc", "musl"]
AnswerKind = Literal["service", "pod-hostname", "pod", "external", "nxdomain"]


@dataclass(frozen=True)
class ResolverConfig:
    """The resolv.conf a pod gets, with the policy that produced it."""

    policy: str
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    ndots: int
    notes: tuple[str, ...] = ()
    unclassified: tuple[str, ...] = ()
    """``dnsPolicy: None`` nameservers that may be the cluster DNS: its address was not known."""

    @property
    def uses_cluster_dns(self) -> bool:
        return CLUSTER_DNS in self.nameservers

    def as_cluster_dns(self) -> ResolverConfig:
        """This resolver if its unclassified nameservers are the cluster DNS."""
        kept = tuple(ns for ns in self.nameservers if ns not in self.unclassified)
        return replace(self, nameservers=(CLUSTER_DNS, *kept), unclassified=())

    def as_other_dns(self) -> ResolverConfig:
        """This resolver if its unclassified nameservers are not the cluster DNS."""
        return replace(self, unclassified=())

    @property
    def key(self) -> tuple[Any, ...]:
        """Pods with equal keys resolve every name the same way (one probe pod each)."""
        return (self.nameservers, self.search, self.ndots)


@dataclass(frozen=True)
class Answer:
    """What answered one lookup: the FQDN that matched and the object behind it."""

    kind: AnswerKind
    fqdn: str | None
    service: ServiceInfo | None = None
    tried: tuple[str, ...] = ()
    via_alias: ServiceInfo | None = None

    @property
    def resolved(self) -> bool:
        return self.kind != "nxdomain"

    @property
    def service_ref(self) -> ObjectRef | None:
        return None if self.service is None else self.service.ref


def cluster_dns_addresses(index: ClusterIndex, given: str | None) -> tuple[str, ...] | None:
    """The cluster DNS Service's address: as given, else the ClusterIP of kube-system/kube-dns; None: unknown.

    Only ``dnsPolicy: None`` pods need it: their ``dnsConfig.nameservers`` are
    addresses, and only this one makes them resolve cluster names.
    """
    if given:
        return (given,)
    kube_dns = index.service("kube-system", "kube-dns")
    if kube_dns is None or kube_dns.headless or not kube_dns.cluster_ip:
        return None
    return (kube_dns.cluster_ip,)


def resolver_config(
    pod_spec: Mapping[str, Any],
    namespace: str,
    cluster_domain: str,
    *,
    node_search: Iterable[str] = (),
    cluster_dns_ips: Iterable[str] | None = (),
) -> ResolverConfig:
    """The resolver a pod of this spec gets in ``namespace``, as the kubelet builds it.

    ``cluster_dns_ips``: the cluster DNS Service's addresses; None when unknown,
    which leaves a ``dnsPolicy: None`` pod's nameservers unclassified.
    """
    declared = str(pod_spec.get("dnsPolicy") or "ClusterFirst")
    host_network = bool(pod_spec.get("hostNetwork"))
    notes: list[str] = []
    policy = declared
    if declared == "ClusterFirst" and host_network:
        policy = "Default"
        notes.append("hostNetwork with dnsPolicy ClusterFirst falls back to the node's resolver")
    zone = cluster_domain.strip(".")
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = [CLUSTER_DNS]
        search = [f"{namespace}.svc.{zone}", f"svc.{zone}", zone, *node_search]
        ndots = 5
    elif policy == "None":
        nameservers, search, ndots = [], [], 1
    else:
        nameservers, search, ndots = [NODE_DNS], list(node_search), 1
    config = pod_spec.get("dnsConfig") or {}
    cluster_ips = set(cluster_dns_ips or ())
    for ns in config.get("nameservers") or ():
        mapped = CLUSTER_DNS if ns in cluster_ips else str(ns)
        if mapped not in nameservers:
            nameservers.append(mapped)
    unclassified: tuple[str, ...] = ()
    if cluster_dns_ips is None and policy == "None" and CLUSTER_DNS not in nameservers:
        unclassified = tuple(nameservers)
    for domain in config.get("searches") or ():
        domain = str(domain).strip(".").lower()
        if domain and domain not in search:
            search.append(domain)
    for option in config.get("options") or ():
        if isinstance(option, Mapping) and option.get("name") == "ndots":
            ndots = _int_option(option.get("value"), ndots)
    if len(search) > MAX_SEARCH_DOMAINS:
        notes.append(f"search list truncated to {MAX_SEARCH_DOMAINS} domains")
        search = search[:MAX_SEARCH_DOMAINS]
    return ResolverConfig(policy, tuple(nameservers), tuple(search), ndots, tuple(notes), unclassified)


def _int_option(value: Any, default: int) -> int:
    try:
        return max(0, min(15, int(str(value))))
    except ValueError:
        return default


def candidate_names(name: str, config: ResolverConfig, *, libc: Libc = "glibc") -> tuple[str, ...]:
    """The absolute names the resolver asks for, in order (each with a trailing dot)."""
    name = name.lower()
    if name.endswith("."):
        return (name,)
    as_is = f"{name}."
    searched = tuple(f"{name}.{domain}." for domain in config.search)
    if name.count(".") >= config.ndots:
        return (as_is,) if libc == "musl" else (as_is, *searched)
    return (*searched, as_is)


def resolve(name: str, config: ResolverConfig, index: ClusterIndex, *, libc: Libc = "glibc") -> Answer:
    """Walk the candidates as the C library would; the first that answers wins.

    Answers are memoized on the index: an audit asks for each name twice (glibc
    and musl, which only differ for names with ndots or more dots) and the
    workloads of a namespace name the same Services over and over.
    """
    if libc == "musl" and (name.endswith(".") or name.count(".") < config.ndots):
        libc = "glibc"  # the same candidates as glibc (see candidate_names), so the same answer
    key = ("resolve", name, config.nameservers, config.search, config.ndots, libc)
    found: Answer | None = index.memo.get(key)
    if found is None:
        found = remember(index.memo, key, _resolve(name, config, index, libc))
    return found


def _resolve(name: str, config: ResolverConfig, index: ClusterIndex, libc: Libc) -> Answer:
    tried: list[str] = []
    for fqdn in candidate_names(name, config, libc=libc):
        tried.append(fqdn)
        answer = answer_for(fqdn, config, index)
        if answer is not None:
            return Answer(answer.kind, fqdn, answer.service, tuple(tried), answer.via_alias)
    return Answer("nxdomain", None, None, tuple(tried))


def answer_for(fqdn: str, config: ResolverConfig, index: ClusterIndex) -> Answer | None:
    """What one absolute name returns, or None for NXDOMAIN."""
    bare = fqdn.rstrip(".")
    zone = index.cluster_domain
    if bare == zone or bare.endswith("." + zone):
        if not config.uses_cluster_dns:
            return None
        return _cluster_answer(bare[: -len(zone)].rstrip("."), index)
    if is_ip_literal(bare):
        return Answer("external", fqdn)
    # Outside the cluster zone the upstream decides. A single label, a name built
    # from a search domain, or one whose last label is a namespace or "svc" is not
    # a name anyone upstream owns: assume NXDOMAIN. Other dotted names are external.
    labels = bare.split(".")
    if len(labels) == 1 or labels[-1] in _NOT_UPSTREAM or labels[-1] in index.namespaces:
        return None
    if any(label == "svc" and labels[i - 1] in index.namespaces for i, label in enumerate(labels) if i):
        return None
    if any(bare.endswith("." + d) for d in config.search):
        return None
    return Answer("external", fqdn)


def _cluster_answer(relative: str, index: ClusterIndex) -> Answer | None:
    labels = relative.split(".") if relative else []
    if len(labels) == 3 and labels[2] == "svc":
        return _service_answer(labels[0], labels[1], index)
    if len(labels) == 4 and labels[3] == "svc":
        svc = index.service(labels[2], labels[1])
        if svc is not None and svc.headless and labels[0] in index.hostnames(labels[2], labels[1]):
            return Answer("pod-hostname", None, svc)
        return None
    if len(labels) == 3 and labels[2] == "pod" and labels[1] in index.namespaces:
        return Answer("pod", None) if _is_dashed_ip(labels[0]) else None
    return None


def _service_answer(name: str, namespace: str, index: ClusterIndex) -> Answer | None:
    svc = index.service(namespace, name)
    if svc is None:
        return None
    chain = follow_aliases(svc, index)
    if chain.final is None:
        return None  # a loop or a dangling in-cluster CNAME: the lookup fails
    return Answer("service", None, chain.final, via_alias=svc if chain.aliases else None)


@dataclass(frozen=True)
class AliasChain:
    """Where an ExternalName Service leads inside the cluster (ExternalName facts, docs/report-contract.md).

    The planner's own aliases are ExternalName Services naming
    ``svc.ns.svc.<zone>``: DNS answers them with a CNAME that the cluster DNS
    answers again, so a chain is followed to the Service at its end. ``aliases``
    are the in-cluster ExternalName Services followed, in order; ``final`` is
    the Service that answers (an ordinary Service, or an ExternalName naming a
    host outside the cluster), None when the chain loops or names a Service
    that does not exist (``dangling``: that name).
    """

    aliases: tuple[ServiceInfo, ...]
    final: ServiceInfo | None
    loop: bool = False
    dangling: str | None = None

    def describe(self) -> str:
        """``a/x -> b/y -> a/x``: the chain as a reader follows it."""
        hops = [f"{s.namespace}/{s.name}" for s in self.aliases]
        if self.loop and self.aliases:
            hops.append(hops[0] if self.final is None else f"{self.final.namespace}/{self.final.name}")
        elif self.dangling:
            hops.append(self.dangling)
        elif self.final is not None and self.final not in self.aliases:
            hops.append(f"{self.final.namespace}/{self.final.name}")
        return " -> ".join(hops)


def follow_aliases(svc: ServiceInfo, index: ClusterIndex) -> AliasChain:
    """Follow ExternalName Services that name in-cluster Services, detecting loops."""
    aliases: list[ServiceInfo] = []
    current = svc
    while True:
        named = _in_cluster_service(current, index)
        if named is None:
            return AliasChain(tuple(aliases), current)
        aliases.append(current)
        following = index.service(named[1], named[0])
        if following is None:
            return AliasChain(tuple(aliases), None, dangling=f"{named[1]}/{named[0]}")
        if following in aliases:
            return AliasChain(tuple(aliases[aliases.index(following) :]), None, loop=True)
        current = following


def _in_cluster_service(svc: ServiceInfo, index: ClusterIndex) -> tuple[str, str] | None:
    """(name, namespace) an ExternalName Service points at when that is ``name.ns.svc.<zone>``."""
    if svc.type != "ExternalName" or not svc.external_name:
        return None
    target = svc.external_name.rstrip(".").lower()
    suffix = ".svc." + index.cluster_domain
    if not target.endswith(suffix):
        return None
    labels = target[: -len(suffix)].split(".")
    return (labels[0], labels[1]) if len(labels) == 2 else None


def _is_dashed_ip(label: str) -> bool:
    return is_ip_literal(label.replace("-", ".")) or is_ip_literal(label.replace("-", ":"))
