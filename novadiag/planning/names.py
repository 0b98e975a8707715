"""The name a reference should use after a change: kept when it still works, else the shortest that does.

The same rule the verdicts use for ``Edge.fix_host`` — try ``svc``, ``svc.ns``,
``svc.ns.svc``, then the FQDN, and take the first one that the *source pod's
own resolver* maps to the target, with glibc and with musl — applied to the
layout after the plan. A name that still reaches its Service from the new
place is left alone: the fewer values the plan touches, the less there is to
review (``kafka.kafka:9092`` keeps working from ``nova-prod``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novadiag.index import ClusterIndex, ServiceInfo
from novadiag.resolver import Libc, cluster_dns_addresses, resolve, resolver_config


def reaches(
    host: str,
    target: ServiceInfo,
    pod_spec: Mapping[str, Any],
    namespace: str,
    index: ClusterIndex,
    *,
    cluster_dns: str | None = None,
) -> bool:
    """True when ``host`` resolves to ``target`` from a pod of this spec in ``namespace`` (glibc and musl).

    ``cluster_dns``: the address the audit was given for the cluster DNS (a ``dnsPolicy: None`` pod
    resolves cluster names only through it).
    """
    dns_ips = cluster_dns_addresses(index, cluster_dns)
    config = resolver_config(pod_spec, namespace, index.cluster_domain, cluster_dns_ips=dns_ips)
    libcs: tuple[Libc, ...] = ("glibc", "musl")
    for libc in libcs:
        answer = resolve(host, config, index, libc=libc)
        if answer.service is None or answer.service.ref != target.ref:
            return False
    return True


def shortest_name(
    target: ServiceInfo,
    pod_spec: Mapping[str, Any],
    namespace: str,
    index: ClusterIndex,
    *,
    hostname: str | None = None,
    cluster_dns: str | None = None,
) -> str | None:
    """The shortest name that reaches ``target`` (or one of its pods, by ``hostname``); None when none does."""
    base = target.name if hostname is None else f"{hostname}.{target.name}"
    forms = [base, f"{base}.{target.namespace}", f"{base}.{target.namespace}.svc"]
    forms.append(f"{forms[-1]}.{index.cluster_domain}")
    for form in forms:
        if reaches(form, target, pod_spec, namespace, index, cluster_dns=cluster_dns):
            return form
    return None


def next_name(
    current: str,
    target: ServiceInfo,
    pod_spec: Mapping[str, Any],
    namespace: str,
    index: ClusterIndex,
    *,
    hostname: str | None = None,
    cluster_dns: str | None = None,
) -> tuple[str | None, str]:
    """(name to use, why): ``current`` when it still reaches ``target``, else the shortest that does."""
    if reaches(current, target, pod_spec, namespace, index, cluster_dns=cluster_dns):
        return current, f"still resolves to {target.namespace}/{target.name} from {namespace}"
    name = shortest_name(target, pod_spec, namespace, index, hostname=hostname, cluster_dns=cluster_dns)
    if name is None:
        return None, f"no name reaches {target.namespace}/{target.name} from {namespace} with this pod's resolver"
    return name, f"{current} would not reach {target.namespace}/{target.name} from {namespace}"
