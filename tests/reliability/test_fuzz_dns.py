"""Property-based: the DNS model (names, search lists, ndots, libc) against the rules it encodes.

For random clusters (Services in random namespaces), random source
namespaces, ndots settings, extra search domains and both C libraries, the
model must agree with the Kubernetes DNS facts in DESIGN.md: a short name
resolves only in its own namespace, ``svc.ns`` and ``svc.ns.svc`` from
anywhere through glibc's search list, the FQDN always, a trailing dot never
consults the search list, and malformed dnsConfig never crashes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from novadiag.index import ClusterIndex, build_index
from novadiag.model import SourceInfo
from novadiag.resolver import MAX_SEARCH_DOMAINS, ResolverConfig, candidate_names, resolve, resolver_config
from novadiag.snapshot import build_snapshot

PROPERTY = settings(max_examples=200, deadline=None, database=None)

labels = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(lambda s: s not in ("svc", "pod"))
services = st.sets(st.tuples(labels, labels), min_size=1, max_size=6)
domains = st.lists(labels, min_size=1, max_size=3).map(".".join)
zones = st.sampled_from(["cluster.local", "corp.internal", "k8s.example.org"])


def index_of(found: set[tuple[str, str]], zone: str) -> ClusterIndex:
    objects: list[Any] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], "clusterIP": "10.0.0.1"},
        }
        for ns, name in found
    ]
    objects += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns, _ in found]
    return build_index(build_snapshot(objects, SourceInfo("manifests", cluster_domain=zone)))


def cluster_first(
    namespace: str, zone: str, *, ndots: int | None = None, search: list[str] | None = None
) -> ResolverConfig:
    spec: dict[str, Any] = {"dnsConfig": {"searches": search or []}}
    if ndots is not None:
        spec["dnsConfig"]["options"] = [{"name": "ndots", "value": str(ndots)}]
    return resolver_config(spec, namespace, zone)


@PROPERTY
@given(services, labels, zones, st.integers(0, 15), st.lists(domains, max_size=3))
def test_a_short_name_resolves_only_to_a_service_of_the_own_namespace(found, source, zone, ndots, search):
    index = index_of(found, zone)
    config = cluster_first(source, zone, ndots=ndots, search=search)
    for _, name in found:
        answer = resolve(name, config, index)
        if (source, name) in found and ndots >= 1:
            assert answer.service_ref is not None and answer.service_ref.namespace == source
        elif answer.service_ref is not None:
            assert answer.service_ref.namespace == source  # never another namespace's Service


@PROPERTY
@given(services, labels, zones, st.integers(2, 15))
def test_name_dot_namespace_resolves_from_anywhere_with_glibc(found, source, zone, ndots):
    index = index_of(found, zone)
    config = cluster_first(source, zone, ndots=ndots)
    for ns, name in found:
        for written in (f"{name}.{ns}", f"{name}.{ns}.svc"):
            answer = resolve(written, config, index)
            assert answer.service_ref is not None, (written, answer.tried)
            assert (answer.service_ref.namespace, answer.service_ref.name) == (ns, name)


@PROPERTY
@given(services, labels, zones, st.integers(0, 15), st.sampled_from(["glibc", "musl"]), st.booleans())
def test_the_fqdn_always_resolves(found, source, zone, ndots, libc, trailing_dot):
    index = index_of(found, zone)
    config = cluster_first(source, zone, ndots=ndots)
    for ns, name in found:
        fqdn = f"{name}.{ns}.svc.{zone}" + ("." if trailing_dot else "")
        answer = resolve(fqdn.upper() if ndots % 2 else fqdn, config, index, libc=libc)
        assert answer.service_ref is not None
        assert (answer.service_ref.namespace, answer.service_ref.name) == (ns, name)


@PROPERTY
@given(st.text(min_size=1, max_size=40), labels, zones, st.integers(0, 15), st.lists(domains, max_size=4))
@example("a.b.c.", "ns", "cluster.local", 5, [])
def test_candidates_follow_the_ndots_rule(name, namespace, zone, ndots, search):
    config = cluster_first(namespace, zone, ndots=ndots, search=search)
    glibc = candidate_names(name, config)
    musl = candidate_names(name, config, libc="musl")
    lowered = name.lower()
    assert all(c.endswith(".") for c in glibc + musl)
    if lowered.endswith("."):
        assert glibc == musl == (lowered,)
        return
    searched = tuple(f"{lowered}.{d}." for d in config.search)
    if lowered.count(".") >= config.ndots:
        assert glibc == (f"{lowered}.", *searched)
        assert musl == (f"{lowered}.",)
    else:
        assert glibc == musl == (*searched, f"{lowered}.")


@PROPERTY
@given(
    labels,
    st.sampled_from(["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None", "Bogus", None]),
    st.booleans(),
    st.lists(st.one_of(domains, st.text(max_size=10), st.integers()), max_size=40),
    st.one_of(st.none(), st.integers(-5, 50), st.text(max_size=4)),
)
def test_resolver_config_is_well_formed_for_any_dns_config(namespace, policy, host_network, searches, ndots):
    spec: dict[str, Any] = {
        "dnsPolicy": policy,
        "hostNetwork": host_network,
        "dnsConfig": {"searches": searches, "options": [{"name": "ndots", "value": ndots}]},
    }
    config = resolver_config(spec, namespace, "cluster.local")
    assert 0 <= config.ndots <= 15
    assert len(config.search) <= MAX_SEARCH_DOMAINS
    assert len(set(config.search)) == len(config.search)
    if policy in (None, "ClusterFirst") and not host_network or policy == "ClusterFirstWithHostNet":
        assert config.search[:3] == (f"{namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local")
    if policy in (None, "ClusterFirst") and host_network:
        assert config.policy == "Default" and config.notes
