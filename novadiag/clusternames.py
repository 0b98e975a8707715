"""Which bare host words in free text name something inside the cluster.

An env var called ``CONTENT_SERVICE_URL`` says by its name that it holds an
address, so its value is read generously. Command arguments, shell scripts and
mounted config files carry far more words that only look like hosts (``app``,
``main``, ``worker``), so there precision matters more than recall: a word in a
host position counts as a reference only when it names a Service somewhere in
the cluster (``content-service``, ``content-service.nova-content``,
``kafka-0.kafka-headless``) or carries an in-cluster suffix (``.svc``,
``.svc.cluster.local``). ``kubernetes.default.svc`` always exists, even when
the manifests do not declare it.

Pure: built once per audit from the Service names of a snapshot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass

_PLACEHOLDER_MARKS = ("${", "$(", "{{", "%{", "%(", "<", ">")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_ALWAYS_THERE = frozenset({"kubernetes"})
"""The API server's Service: every cluster has ``default/kubernetes``."""


@dataclass(frozen=True)
class ClusterNames:
    """The Service names of a cluster, for telling cluster hosts from look-alike words.

    >>> names = ClusterNames.of(["content-service", "kafka-headless"])
    >>> [names.names_cluster_host(h) for h in ("content-service", "content-service.nova-content", "main")]
    [True, True, False]
    >>> hosts = ("kafka-0.kafka-headless", "kafka-0.kafka-headless.data", "db.data.svc", "api.github.com")
    >>> [names.names_cluster_host(h) for h in hosts]
    [True, True, True, False]
    >>> [names.names_cluster_host(h) for h in ("localhost", "127.0.0.1", "${env:MY_POD_IP}", "kubernetes.default.svc")]
    [False, False, False, True]
    >>> names.names_cluster_host("content-service", own_names=["content-service"])
    False
    """

    services: frozenset[str]
    cluster_domain: str = "cluster.local"

    @classmethod
    def of(cls, service_names: Iterable[str], cluster_domain: str = "cluster.local") -> ClusterNames:
        return cls(frozenset(name.lower() for name in service_names) | _ALWAYS_THERE, cluster_domain.lower())

    def names_cluster_host(self, host: str, *, own_names: Collection[str] = ()) -> bool:
        """Whether ``host``, found in a host position of free text, is a reference worth judging.

        ``own_names`` are names the pod calls itself (its own name, its workload's):
        a process that names itself is not calling another service.
        """
        host = host.strip().rstrip(".").lower()
        if not host or any(mark in host for mark in _PLACEHOLDER_MARKS) or "/" in host:
            return False
        if host in _LOOPBACK_NAMES or _is_ip(host) or host in {n.lower() for n in own_names}:
            return False
        if self.has_cluster_suffix(host):
            return True
        labels = host.split(".")
        if len(labels) <= 2 and labels[0] in self.services:
            return True  # SVC, SVC.NS
        return len(labels) in (2, 3) and labels[1] in self.services  # POD.SVC, POD.SVC.NS

    def has_cluster_suffix(self, host: str) -> bool:
        """``x.ns.svc``, ``x.ns.svc.cluster.local`` (or the cluster's own domain).

        >>> ClusterNames.of([], "corp.internal").has_cluster_suffix("db.data.svc.corp.internal")
        True
        """
        host = host.rstrip(".").lower()
        labels = host.split(".")
        if len(labels) >= 3 and labels[-1] == "svc":
            return True
        for domain in {self.cluster_domain, "cluster.local"}:
            suffix = f".svc.{domain}"
            if host.endswith(suffix) and host.count(".") > suffix.count("."):
                return True
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
