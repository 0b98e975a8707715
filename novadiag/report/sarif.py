"""SARIF 2.1.0: the report as code-scanning tools read it.

One result per broken edge, ``ruleId`` its status, so GitHub code scanning
(or any SARIF viewer) groups them by kind of breakage and, for an audit of
manifests, annotates the exact line that wrote the reference: the env entry,
or the ConfigMap/Secret key it reads (:mod:`novadiag.sourcelines`). Edges
read from a cluster have no file; their result names the workload as a
logical location instead. File paths are written relative to the current
directory when they are under it, as code scanning resolves them against the
repository root the workflow runs in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novadiag.model import BROKEN_STATUSES
from novadiag.version import __version__

if TYPE_CHECKING:
    from novadiag.model import Edge
    from novadiag.report.core import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

RULES: dict[str, str] = {
    "dns-unresolvable": "The name does not resolve from the source pod's DNS settings; the Service exists elsewhere.",
    "unknown-target": "The name looks in-cluster but no Service anywhere matches it.",
    "port-mismatch": "The Service the name resolves to does not expose that port.",
    "no-endpoints": "The Service the name resolves to selects no ready pod.",
    "blocked": "A NetworkPolicy denies the traffic.",
}
assert set(RULES) == set(BROKEN_STATUSES)


def render_sarif(report: Report, **_: Any) -> str:
    return json.dumps(sarif_document(report), indent=2) + "\n"


def sarif_document(report: Report) -> dict[str, Any]:
    driver = {
        "name": "novadiag",
        "version": __version__,
        "rules": [_rule(status) for status in RULES],
    }
    results = [_result(report, edge) for edge in report.edges if edge.broken]
    run = {"tool": {"driver": driver}, "results": results}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule(status: str) -> dict[str, Any]:
    return {
        "id": status,
        "name": "".join(part.capitalize() for part in status.split("-")),
        "shortDescription": {"text": RULES[status]},
        "defaultConfiguration": {"level": "error"},
    }


def _result(report: Report, edge: Edge) -> dict[str, Any]:
    message = f"{edge.source} container {edge.reference.container}, {edge.reference.slot}: {edge.detail}"
    if edge.fix:
        message += f" Fix: {edge.fix}"
    result: dict[str, Any] = {
        "ruleId": edge.status,
        "level": "error",
        "message": {"text": message},
        "partialFingerprints": {"novadiagEdge/v1": edge.id},
        "properties": {"edge": edge.id, "reference": edge.reference.reference, "fix": edge.fix},
    }
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": str(edge.source), "kind": "resource"}],
    }
    where = report.source_line(edge)
    if where is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(where.file)}}
        if where.line is not None:
            physical["region"] = {"startLine": where.line}
        location["physicalLocation"] = physical
    result["locations"] = [location]
    return result


def artifact_uri(file: str) -> str:
    """A repository-relative URI when the file is under the working directory, else an absolute ``file://`` one."""
    path = Path(file)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_uri()
