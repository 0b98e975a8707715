"""What criteria check against: one audit per session, shared by every criterion.

A criteria run audits the cluster once (with probes, when live) and every
criterion reads that report; only ``endpoint-responds`` makes requests of its
own, from a probe pod in the namespace it names. The baseline — an earlier
audit's JSON or a snapshot file — is loaded once too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from novadiag.boundedio import MAX_INPUT_BYTES, read_bounded_file
from novadiag.errors import ConfigError
from novadiag.report.core import AUDIT_SCHEMA, Report
from novadiag.snapshot import SNAPSHOT_SCHEMA
from novadiag.source import Cluster, Lab, open_source
from novadiag.workloads import Workload


@dataclass(frozen=True)
class CriteriaSettings:
    """Where the criteria look: a cluster (kubeconfig/context), manifests, or a lab scenario."""

    kubeconfig: str | None = None
    context: str | None = None
    manifests: Sequence[str] = ()
    lab: str | None = None
    baseline: str | None = None
    probe: bool = True


@dataclass
class CheckContext:
    """Lazily audits once and answers every criterion's questions from that audit."""

    settings: CriteriaSettings
    _report: Report | None = None
    _baseline: list[dict[str, Any]] | None = None
    _lab: Cluster | None = None
    _lab_stack: ExitStack = field(default_factory=ExitStack)  # holds the opened lab source until close()
    _kubeconfig: str | None = None
    _closed: bool = field(default=False)

    @property
    def live(self) -> bool:
        return not self.settings.manifests

    def why_no_probes(self) -> str | None:
        """Why this run has no probe pods (a phrase for messages), or None when it probes."""
        if not self.live:
            return "this run audits manifests"
        if not self.settings.probe:
            return "probes are turned off"
        return None

    def kubeconfig(self) -> str | None:
        """The kubeconfig of the cluster under test (starting the lab on first use)."""
        if self.settings.lab and self._lab is None:
            lab = Lab(self.settings.lab, state_prefix="novadiag-criteria-")
            opened = self._lab_stack.enter_context(open_source(lab))
            assert isinstance(opened, Cluster)
            self._lab = opened
            self._kubeconfig = opened.settings.kubeconfig
        return self._kubeconfig or self.settings.kubeconfig

    def report(self) -> Report:
        if self._report is None:
            # deferred: loads the kubernetes client, and the plugin loads in every pytest run
            from novadiag.pipeline import audit

            if self.settings.manifests:
                self._report = audit(manifests=list(self.settings.manifests))
            else:
                self._report = audit(
                    kubeconfig=self.kubeconfig(), context=self.settings.context, probe=self.settings.probe
                )
        return self._report

    def refresh(self) -> Report:
        """Audit again (after a change to the cluster)."""
        self._report = None
        return self.report()

    def pods(self) -> tuple[dict[str, Any], ...]:
        snapshot = self.report().snapshot
        return () if snapshot is None else tuple(snapshot.of("Pod"))  # type: ignore[arg-type]

    def workloads(self) -> tuple[Workload, ...]:
        snapshot = self.report().snapshot
        return () if snapshot is None else tuple(w for w in snapshot.workloads if w.replicas > 0)

    def missing_namespaces(self, names: Sequence[str]) -> list[str]:
        """Those of ``names`` the cluster does not have (see :meth:`Snapshot.missing_namespaces`)."""
        snapshot = self.report().snapshot
        return [] if snapshot is None else snapshot.missing_namespaces(names)

    def namespace_labels(self) -> dict[str, Mapping[str, str]]:
        snapshot = self.report().snapshot
        if snapshot is None:
            return {}
        return {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in snapshot.of("Namespace")}

    def baseline(self) -> list[dict[str, Any]] | None:
        """The baseline's edges as contract dicts (from an audit JSON or a snapshot file)."""
        if self._baseline is None and self.settings.baseline:
            self._baseline = load_baseline_edges(self.settings.baseline)
        return self._baseline

    def request_from(
        self,
        namespace: str,
        url: str,
        *,
        method: str = "GET",
        body: str | None = None,
        expect_status: int | None = None,
        expect_body: str | None = None,
    ) -> dict[str, Any]:
        """Make one request from a probe pod in ``namespace``; the probe program's result."""
        if not self.live:
            raise ConfigError("endpoint-responds needs a live cluster or a lab, not manifests")
        # deferred: these load the kubernetes client, and the plugin loads in every pytest run
        from novadiag.kube import KubeClient, KubeSettings
        from novadiag.probing.groups import Check, ProbeGroup
        from novadiag.probing.runner import run_probes

        parts = urlsplit(url)
        protocol = {"http": "http", "grpc": "grpc"}.get(parts.scheme, "tcp")
        if not parts.hostname:
            raise ConfigError(f"endpoint-responds: {url!r} has no host")
        request: dict[str, Any] = {
            "method": method,
            "path": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        }
        if body is not None:
            request["body"] = body
        if expect_status is not None:
            request["expect_status"] = expect_status
        if expect_body is not None:
            request["expect_body"] = expect_body
        port = parts.port or (80 if protocol == "http" else None)
        check = Check("c0", parts.hostname, port, protocol, ("request",), request)
        group = ProbeGroup(namespace, {}, (check,), ())
        with KubeClient(KubeSettings(kubeconfig=self.kubeconfig(), context=self.settings.context)) as client:
            run = run_probes(client, [group])
        outcome = run.outcomes[0]
        if outcome.document is None:
            return {"system": {"status": "error"}, "connect": "skipped", "health": "failed", "detail": outcome.error}
        result: dict[str, Any] = outcome.document["results"][0]
        return result

    def close(self) -> None:
        if not self._closed:
            self._lab_stack.close()  # stops the lab (if one was started) and removes its state dir
        self._closed = True


def load_baseline_edges(path: str) -> list[dict[str, Any]]:
    """Edges of an earlier audit: its JSON report, or a snapshot file audited now."""
    doc = read_baseline(path)
    if doc["schema"] == AUDIT_SCHEMA:
        return list(doc.get("edges") or [])
    from novadiag.pipeline import audit  # deferred: loads the kubernetes client; the plugin loads in every pytest run

    return [e.to_dict() for e in audit(snapshot=Path(path)).edges]


def read_baseline(path: str) -> dict[str, Any]:
    """The baseline file as a JSON document of a schema novadiag reads; one-line ConfigError otherwise.

    Read with the manifest loader's limits (regular files only, at most
    :data:`~novadiag.boundedio.MAX_INPUT_BYTES`): a baseline of ``/dev/zero``
    or a FIFO must end the run with a message, not fill memory or hang it.
    ``novadiag check`` calls this before running the criteria so that a bad
    baseline is a usage error, not a criterion that fails.
    """
    try:
        data = read_bounded_file(path, limit=MAX_INPUT_BYTES, what="baseline")
    except ConfigError as exc:
        raise ConfigError(f"baseline {exc}") from exc
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"baseline {path}: not JSON") from exc
    if not isinstance(doc, dict) or doc.get("schema") not in (AUDIT_SCHEMA, SNAPSHOT_SCHEMA):
        raise ConfigError(f"baseline {path}: neither a novadiag audit JSON nor a snapshot file")
    return doc
