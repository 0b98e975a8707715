"""The one place that wires the pipeline: snapshot → references → DNS → verdicts.

``novadiag.audit(...)`` is the notebook one-liner and what the CLI and the
pytest plugin call. Exactly one source is read: manifests, a saved snapshot, a
lab scenario (started and stopped around the audit), or the cluster of a
kubeconfig (the default, like kubectl).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from novadiag.errors import ConfigError
from novadiag.findings import derive_findings
from novadiag.graph import build_graph
from novadiag.index import build_index
from novadiag.listing import Progress, load_cluster_snapshot
from novadiag.manifests import load_manifests
from novadiag.references import discover_references
from novadiag.report.core import Report
from novadiag.snapshot import Snapshot, load_snapshot_file
from novadiag.verdicts import VerdictContext, judge_all


def audit(
    *,
    manifests: Sequence[str | Path] | None = None,
    snapshot: str | Path | Snapshot | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    lab: str | None = None,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Audit one source and return the :class:`~novadiag.report.Report`.

    Args:
        manifests: files or directories of YAML/JSON manifests.
        snapshot: a saved snapshot file (``novadiag snapshot save``) or a Snapshot.
        kubeconfig, context, in_cluster: how to reach a live cluster (default source).
        lab: name of a bundled lab scenario: start it, audit it, stop it.
        namespaces: only edges whose source is in these namespaces.
        cluster_domain: the cluster DNS domain (default ``cluster.local``).
    """
    sources = [s for s in (manifests, snapshot, lab) if s]
    if len(sources) > 1:
        raise ConfigError("choose one source: manifests, a snapshot file, or a lab scenario")
    if lab:
        return _audit_lab(lab, namespaces=namespaces, cluster_domain=cluster_domain, progress=progress)
    snap = load_source(
        manifests=manifests,
        snapshot=snapshot,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        namespaces=namespaces,
        cluster_domain=cluster_domain,
        progress=progress,
    )
    return audit_snapshot(snap, namespaces=namespaces, cluster_domain=cluster_domain)


def load_source(
    *,
    manifests: Sequence[str | Path] | None = None,
    snapshot: str | Path | Snapshot | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
    progress: Progress | None = None,
    source_kind: str = "cluster",
) -> Snapshot:
    """Read the chosen source into a Snapshot."""
    domain = cluster_domain or "cluster.local"
    if manifests:
        return load_manifests(manifests, cluster_domain=domain)
    if isinstance(snapshot, Snapshot):
        return snapshot
    if snapshot:
        return load_snapshot_file(snapshot)
    from novadiag.kube import KubeClient, KubeSettings

    settings = KubeSettings(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)
    with KubeClient(settings) as client:
        return load_cluster_snapshot(
            client,
            namespaces=namespaces,
            cluster_domain=domain,
            source_kind="lab" if source_kind == "lab" else "cluster",
            progress=progress,
        )


def audit_snapshot(
    snapshot: Snapshot,
    *,
    namespaces: Sequence[str] | None = None,
    cluster_domain: str | None = None,
) -> Report:
    """The static audit of a Snapshot: pure, no I/O."""
    index = build_index(snapshot, cluster_domain=cluster_domain)
    references, reference_findings = discover_references(snapshot)
    if namespaces:
        wanted = set(namespaces)
        references = [r for r in references if r.namespace in wanted]
    workloads = {w.ref: w for w in snapshot.workloads}
    edges = judge_all(references, workloads, VerdictContext(index))
    findings = (
        *snapshot.findings,
        *reference_findings,
        *derive_findings(snapshot, index, edges),
    )
    source = snapshot.source
    if cluster_domain and cluster_domain != source.cluster_domain:
        source = type(source)(source.kind, source.context, index.cluster_domain, source.locations)
    return Report(
        source=source,
        edges=tuple(edges),
        findings=tuple(findings),
        gaps=snapshot.gaps,
        graph=build_graph(edges, index),
        snapshot=snapshot,
    )


def _audit_lab(
    scenario: str,
    *,
    namespaces: Sequence[str] | None,
    cluster_domain: str | None,
    progress: Progress | None,
) -> Report:
    from novadiag.lab import Lab

    with Lab(scenario=scenario) as running:
        snap = load_source(
            kubeconfig=running.kubeconfig,
            namespaces=namespaces,
            cluster_domain=cluster_domain,
            progress=progress,
            source_kind="lab",
        )
    return audit_snapshot(snap, namespaces=namespaces, cluster_domain=cluster_domain)
