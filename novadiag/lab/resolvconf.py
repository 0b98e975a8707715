"""A pod's ``/etc/resolv.conf`` and ``/etc/hosts``, rendered the way a kubelet renders them.

Why this matters: novadiag's whole claim is that a short name such as
``content-service`` fails from ``nova-backend`` *because of the search list the
kubelet writes*. The lab therefore writes that file with the kubelet's own rules
(``pkg/kubelet/network/dns/dns.go``) and lets glibc walk it for real:

- ``ClusterFirst`` (and ``ClusterFirstWithHostNet``): the cluster DNS as the only
  nameserver, ``search <ns>.svc.<zone> svc.<zone> <zone>`` followed by the node's
  search domains, and ``options ndots:5`` (the node's options are replaced).
- ``ClusterFirst`` on a ``hostNetwork`` pod silently falls back to ``Default``.
- ``Default``: the node's resolv.conf. The lab's node is synthetic: the lab DNS as
  its only nameserver and no search list, never the machine's own file (that
  would send lab queries to a real resolver outside 127.0.0.0/8).
- ``None``: only what ``dnsConfig`` says.
- ``dnsConfig`` is then appended: nameservers and searches merged without
  duplicates, options overriding by name (``ndots:2`` replaces ``ndots:5``).
  Nameservers it names are *mapped to the lab DNS*: a lab pod never queries an
  address it was given, only the lab's own server (the rendered file says so in a
  comment).
- Limits as the kubelet enforces them: 3 nameservers, 32 search domains, 2048
  characters of search list.

Everything here is pure: no file or network access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_CLUSTER_OPTIONS = ("ndots:5",)
NODE_NAME = "lab-node"

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class ResolverConfig:
    """The three things a stub resolver reads from resolv.conf, plus lab notes."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def ndots(self) -> int:
        """The effective ``ndots`` (glibc's default is 1, capped at 15)."""
        value = 1
        for option in self.options:
            name, _, raw = option.partition(":")
            if name == "ndots" and raw.isdigit():
                value = min(int(raw), 15)
        return value

    def render(self) -> str:
        lines = [f"# lab: {note}" for note in self.notes]
        lines += [f"nameserver {server}" for server in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "nameservers": list(self.nameservers),
            "search": list(self.searches),
            "options": list(self.options),
            "ndots": self.ndots,
        }


def node_resolver_config(dns_ip: str) -> ResolverConfig:
    """The lab node's own resolv.conf: the lab DNS, no search list, no options."""
    return ResolverConfig(nameservers=(dns_ip,))


def dns_type(pod: Obj) -> str:
    """``cluster``, ``host`` or ``none``: which base config a pod's dnsPolicy picks."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst" and not spec.get("hostNetwork"):
        return "cluster"
    return "host"


def cluster_searches(namespace: str, cluster_domain: str) -> tuple[str, ...]:
    return (f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain)


def pod_resolver_config(
    pod: Obj, *, dns_ip: str, cluster_domain: str, node: ResolverConfig | None = None
) -> ResolverConfig:
    """What the kubelet would write into this pod's resolv.conf, with lab mapping applied."""
    node = node or node_resolver_config(dns_ip)
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    kind = dns_type(pod)
    if kind == "cluster":
        base = ResolverConfig(
            nameservers=(dns_ip,),
            searches=cluster_searches(namespace, cluster_domain) + node.searches,
            options=DEFAULT_CLUSTER_OPTIONS,
        )
    elif kind == "host":
        base = node
    else:
        base = ResolverConfig()
    dns_config = (pod.get("spec") or {}).get("dnsConfig")
    if dns_config:
        base = append_dns_config(base, dns_config, dns_ip=dns_ip)
    return fit_limits(base)


def append_dns_config(base: ResolverConfig, dns_config: Obj, *, dns_ip: str) -> ResolverConfig:
    """Merge ``spec.dnsConfig`` into a base config as the kubelet's appendDNSConfig does."""
    given = [str(s) for s in dns_config.get("nameservers") or []]
    mapped = [dns_ip for _ in given]
    notes = tuple(
        f"dnsConfig nameserver {server} is served by the lab DNS {dns_ip}"
        for server in given
        if server != dns_ip
    )
    searches = [str(s) for s in dns_config.get("searches") or []]
    return ResolverConfig(
        nameservers=_unique(base.nameservers + tuple(mapped)),
        searches=_unique(base.searches + tuple(searches)),
        options=merge_options(base.options, dns_config.get("options") or []),
        notes=base.notes + notes,
    )


def merge_options(base: Iterable[str], overrides: Iterable[Obj]) -> tuple[str, ...]:
    """Options by name; a later option with the same name replaces the earlier one."""
    merged: dict[str, str] = {}
    for text in base:
        merged[text.partition(":")[0]] = text
    for option in overrides:
        name = str(option.get("name") or "")
        if not name:
            continue
        value = option.get("value")
        merged[name] = name if value in (None, "") else f"{name}:{value}"
    return tuple(merged.values())


def fit_limits(config: ResolverConfig) -> ResolverConfig:
    """Trim to the kubelet's limits (it trims and reports an event; the lab trims)."""
    searches = list(config.searches[:MAX_SEARCHES])
    while searches and len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches.pop()
    return ResolverConfig(
        nameservers=config.nameservers[:MAX_NAMESERVERS],
        searches=tuple(searches),
        options=config.options,
        notes=config.notes,
    )


def render_resolv_conf(
    pod: Obj, *, dns_ip: str, cluster_domain: str, node: ResolverConfig | None = None
) -> str:
    return pod_resolver_config(
        pod, dns_ip=dns_ip, cluster_domain=cluster_domain, node=node
    ).render()


def pod_hostname(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    name = spec.get("hostname") or (pod.get("metadata") or {}).get("name") or "pod"
    return str(name)[:63].rstrip("-.")


def render_hosts(pod: Obj, *, pod_ip: str, cluster_domain: str, node_ip: str) -> str:
    """The kubelet-managed /etc/hosts (``managedHostsFileContent``)."""
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return render_node_hosts(node_ip) + _host_aliases(spec)
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    hostname = pod_hostname(pod)
    subdomain = spec.get("subdomain")
    if subdomain:
        fqdn = f"{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}"
        own = f"{pod_ip}\t{fqdn}\t{hostname}\n"
    else:
        own = f"{pod_ip}\t{hostname}\n"
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n" + own + _host_aliases(spec)
    )


def render_node_hosts(node_ip: str) -> str:
    """The synthetic node's /etc/hosts (host-network pods get this one)."""
    return (
        "# Kubernetes-managed hosts file (host network).\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{node_ip}\t{NODE_NAME}\n"
    )


def _host_aliases(spec: Obj) -> str:
    aliases = spec.get("hostAliases") or []
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    for alias in aliases:
        names = "\t".join(str(h) for h in alias.get("hostnames") or [])
        lines.append(f"{alias.get('ip')}\t{names}")
    return "\n".join(lines) + "\n"


NSSWITCH_CONF = """\
# lab pod: names come from the pod's /etc/hosts, then its resolv.conf, nothing else
passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
netgroup:       files
"""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return tuple(seen)
