"""The one place that wires the pipeline: snapshot → references → DNS → verdicts → probes.

``novadiag.audit(...)`` is the notebook one-liner and what the CLI and the
pytest plugin call. (The module is not named ``audit``: a submodule of that name
would replace the ``novadiag.audit`` function on the package once imported.)
Exactly one source is read: manifests, a saved snapshot, a lab scenario
(started and stopped around the audit), or the cluster of a kubeconfig (the
default, like kubectl). Live sources are probed by default; files cannot be.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from novadiag.errors import ConfigError
from novadiag.findings import derive_findings
from novadiag.index import build_index
from novadiag.kubesettings import KubeSettings
from novadiag.manifests import load_manifests
from novadiag.model import OPTIONAL_KINDS, Edge, Finding, Gap, SourceInfo, SourceKind
from novadiag.netpol.evaluation import build_policy_index
from novadiag.references import discover_references
from novadiag.report.core import Report
from novadiag.resolver import cluster_dns_addresses
from novadiag.snapshot import Snapshot, load_snapshot_file, paused_gc
from novadiag.source import Cluster, Manifests, Opened, SnapshotFile, is_live, open_source, source_from
from novadiag.verdicts import VerdictContext, judge_all
from novadiag.visibility import Visibility

if TYPE_CHECKING:
    from novadiag.kube import KubeClient
    from novadiag.listing import Progress
    from novadiag.probing import ProbeSettings
    from novadiag.probing.runner import GroupOutcome, ProbeProgress


def audit(
    *,
    manifests: Sequence[str | Path] | None = None,
    snapshot: str | Path | Snapshot | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    request_timeout: float | None = None,
    lab: str | None = None,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
    cluster_dns: str | None = None,
    ingress_from: Sequence[str] = (),
    probe: bool | None = None,
    probe_settings: ProbeSettings | None = None,
    progress: Progress | None = None,
    probe_progress: ProbeProgress | None = None,
) -> Report:
    """Audit one source and return the :class:`~novadiag.report.Report`.

    Args:
        manifests: files or directories of YAML/JSON manifests.
        snapshot: a saved snapshot file (``novadiag snapshot save``) or a Snapshot.
        kubeconfig, context, in_cluster: how to reach a live cluster (default source).
        request_timeout: seconds to wait for each API answer before retrying it (default 30).
        lab: name of a bundled lab scenario: start it, audit it, stop it.
        namespaces: only edges whose source is in these namespaces.
        cluster_domain: the cluster DNS domain (default ``cluster.local``; probes detect it).
        cluster_dns: the cluster DNS Service's IP, for pods with ``dnsPolicy: None`` that name
            nameservers (default: the ClusterIP of ``kube-system/kube-dns`` when it was read).
        ingress_from: namespaces the ingress controllers / Gateway data planes run in: routing
            edges are probed from there (default: found from the snapshot, see
            :mod:`novadiag.routing.dataplane`; unknown means not probed).
        probe: run probe pods (default: yes for live clusters and labs, impossible for files).
        probe_settings: image, timeouts and concurrency of the probe pods.
    """
    source = source_from(
        manifests=manifests,
        snapshot=snapshot,
        lab=lab,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        request_timeout=request_timeout,
    )
    if probe and not is_live(source):
        raise ConfigError("probes need a live cluster: manifests and snapshot files cannot be probed")
    with open_source(source) as opened:
        if isinstance(opened, Cluster):
            return audit_cluster(
                opened.settings,
                namespaces=namespaces,
                cluster_domain=cluster_domain,
                cluster_dns=cluster_dns,
                ingress_from=ingress_from,
                probe=probe is not False,
                probe_settings=probe_settings,
                progress=progress,
                probe_progress=probe_progress,
                source_kind=opened.kind,
            )
        snap = read_snapshot(opened, cluster_domain=cluster_domain)
    return audit_snapshot(snap, namespaces=namespaces, cluster_domain=cluster_domain, cluster_dns=cluster_dns)


def read_snapshot(
    source: Opened,
    *,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
) -> Snapshot:
    """Read an opened source (see :func:`novadiag.source.open_source`) into a Snapshot."""
    domain = cluster_domain or "cluster.local"
    if isinstance(source, Manifests):
        return load_manifests(source.paths, cluster_domain=domain)
    if isinstance(source, SnapshotFile):
        return source.path if isinstance(source.path, Snapshot) else load_snapshot_file(source.path)
    # deferred: the kubernetes client (its import alone outlasts a manifest audit) loads only for a live cluster
    from novadiag.kube import KubeClient
    from novadiag.listing import load_cluster_snapshot

    with KubeClient(source.settings) as client:
        return load_cluster_snapshot(client, namespaces=namespaces, cluster_domain=domain, source_kind=source.kind)


def audit_cluster(
    settings: KubeSettings,
    *,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
    cluster_dns: str | None = None,
    ingress_from: Sequence[str] = (),
    probe: bool = True,
    probe_settings: ProbeSettings | None = None,
    progress: Progress | None = None,
    probe_progress: ProbeProgress | None = None,
    source_kind: SourceKind = "cluster",
) -> Report:
    """List the cluster once, judge every edge, then (optionally) probe them."""
    # deferred: the kubernetes client loads only for a live cluster (see read_snapshot)
    from novadiag.kube import KubeClient
    from novadiag.listing import load_cluster_snapshot

    with KubeClient(settings) as client:
        snap = load_cluster_snapshot(
            client,
            namespaces=namespaces,
            cluster_domain=cluster_domain or "cluster.local",
            source_kind=source_kind,
            progress=progress,
        )
        report = audit_snapshot(snap, namespaces=namespaces, cluster_domain=cluster_domain, cluster_dns=cluster_dns)
        if probe:
            report = probe_report(
                client,
                report,
                probe_settings,
                progress=probe_progress,
                cluster_dns=cluster_dns,
                ingress_from=ingress_from,
            )
    return report


def audit_snapshot(
    snapshot: Snapshot,
    *,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
    cluster_dns: str | None = None,
) -> Report:
    """The static audit of a Snapshot: pure, no I/O.

    ``cluster_dns``: the cluster DNS Service's IP (see :func:`~novadiag.resolver.cluster_dns_addresses`).

    Runs with the cyclic garbage collector paused (see :func:`paused_gc`): the
    audit builds hundreds of thousands of small acyclic objects, and the
    collector's rescans of the growing heap were a third of its time on a large
    cluster (benchmarks/, size L). Collection resumes when the audit returns.
    """
    with paused_gc():
        return _audit_snapshot(snapshot, namespaces=namespaces, cluster_domain=cluster_domain, cluster_dns=cluster_dns)


def _audit_snapshot(
    snapshot: Snapshot,
    *,
    namespaces: Sequence[str] | None,
    cluster_domain: str | None,
    cluster_dns: str | None,
) -> Report:
    if namespaces:
        _check_namespaces_exist(snapshot, namespaces)
    index = build_index(snapshot, cluster_domain=cluster_domain)
    references, reference_findings = discover_references(snapshot)
    if namespaces:
        wanted = set(namespaces)
        references = [r for r in references if r.namespace in wanted]
    workloads = {w.ref: w for w in snapshot.workloads}
    policies = build_policy_index(snapshot, index) if snapshot.of("NetworkPolicy") else None
    context = VerdictContext(
        index,
        cluster_dns_ips=cluster_dns_addresses(index, cluster_dns),
        policies=policies,
        visibility=Visibility.of(snapshot.gaps),
    )
    edges = judge_all(references, workloads, context)
    route_edges, route_findings = _judge_routing_objects(snapshot, context, namespaces)
    edges += route_edges
    findings = (
        *snapshot.findings,
        *reference_findings,
        *route_findings,
        *derive_findings(snapshot, index, edges),
    )
    if namespaces:
        findings = _findings_about(findings, set(namespaces), edges)
    return Report(
        source=replace(snapshot.source, cluster_domain=index.cluster_domain, cluster_dns=cluster_dns),
        edges=tuple(edges),
        findings=tuple(findings),
        gaps=snapshot.gaps,
        snapshot=snapshot,
        index=index,
    )


def _judge_routing_objects(
    snapshot: Snapshot, context: VerdictContext, namespaces: Sequence[str] | None
) -> tuple[list[Edge], list[Finding]]:
    """The edges and findings of Ingresses, Gateway API routes and Istio rules; none without such objects."""
    if not any(snapshot.of(kind) for kind in OPTIONAL_KINDS):
        return [], []
    # deferred: the routing judges (Gateway API, Istio) load only for a snapshot that holds routing objects
    from novadiag.routing import judge_routes

    return judge_routes(snapshot, context, namespaces=namespaces or None)


def _check_namespaces_exist(snapshot: Snapshot, namespaces: Sequence[str]) -> None:
    """A misspelt ``-n`` would audit nothing and report OK: a CI gate passing on nothing."""
    for name in snapshot.missing_namespaces(namespaces)[:1]:
        known = sorted(snapshot.namespaces)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.8)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {len(known)} namespaces"
        raise ConfigError(f"namespace {name}: not found in {_describe(snapshot.source)}{hint}")


def _describe(source: SourceInfo) -> str:
    if source.kind == "snapshot" and source.locations:
        return f"snapshot {source.locations[0]}"
    if source.kind == "manifests":
        return "the manifests"
    return f"context {source.context}" if source.context else f"the {source.kind}"


def _findings_about(findings: Sequence[Finding], namespaces: set[str], edges: Sequence[Edge]) -> tuple[Finding, ...]:
    """The findings an audit of some namespaces should show.

    The whole cluster was read (an edge's target may live anywhere), so findings
    cover every namespace; keep those about the audited namespaces, about the
    objects their edges lead to, and about nothing in particular.
    """
    reached = {(ref.namespace, ref.name) for e in edges for ref in (e.target, e.resolves_to) if ref is not None}
    return tuple(
        f
        for f in findings
        if f.object is None
        or f.object.namespace is None
        or f.object.namespace in namespaces
        or (f.object.namespace, f.object.name) in reached
    )


def _forbidden_probes(outcomes: Sequence[GroupOutcome]) -> tuple[Gap, ...]:
    """One gap per namespace where RBAC refused the probe pods: their edges keep their static verdicts."""
    reasons = {o.group.namespace: o.error or "forbidden" for o in outcomes if o.forbidden}
    return tuple(Gap("Pod", ns, reason, verb="create") for ns, reason in sorted(reasons.items()))


def probe_report(
    client: KubeClient,
    report: Report,
    settings: ProbeSettings | None = None,
    *,
    progress: ProbeProgress | None = None,
    cluster_dns: str | None = None,
    ingress_from: Sequence[str] = (),
) -> Report:
    """Run probe pods for the report's edges and fold what they saw into it.

    Routing edges are probed from their controller's namespace (``ingress_from``,
    else what :func:`~novadiag.routing.dataplane.route_probes` finds).
    The cluster domain a probe pod's resolv.conf shows replaces the assumed one
    (and the static verdicts are recomputed with it) before merging.
    """
    # deferred: the probe runner imports the kubernetes client, needed only for a live cluster
    from novadiag.probing import ProbeSettings, group_edges, merge_observations, run_probes
    from novadiag.routing.dataplane import route_probes  # deferred with the routing judges (see above)

    assert report.snapshot is not None
    snap = report.snapshot
    settings = settings or ProbeSettings()
    index = build_index(snap, cluster_domain=report.source.cluster_domain)
    routes, unprobed = route_probes(report.edges, snap, index, ingress_from)
    groups = group_edges(report.edges, {w.ref: w for w in snap.workloads}, index, settings, routes)
    run = run_probes(client, groups, settings, progress=progress)
    detected = next(
        (o.document.get("cluster_domain") for o in run.outcomes if o.document and o.document.get("cluster_domain")),
        None,
    )
    if detected and detected != report.source.cluster_domain:
        namespaces = sorted({e.reference.namespace for e in report.edges})
        report = audit_snapshot(snap, namespaces=namespaces or None, cluster_domain=detected, cluster_dns=cluster_dns)
        index = build_index(snap, cluster_domain=detected)
    policies = build_policy_index(snap, index) if snap.of("NetworkPolicy") else None
    edges, findings = merge_observations(
        report.edges, run.outcomes, index, policies=policies, route_reasons=unprobed
    )
    return replace(
        report,
        edges=tuple(edges),
        findings=report.findings + tuple(findings),
        gaps=report.gaps + _forbidden_probes(run.outcomes),
        index=index,
        probes={**run.to_dict(), "detected_cluster_domain": detected},
    )
