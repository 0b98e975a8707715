"""novadiag: audit service-to-service connectivity inside Kubernetes clusters.

>>> import novadiag
>>> report = novadiag.audit(lab="nova")          # doctest: +SKIP
>>> [e.reference.env for e in report.broken]    # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from novadiag.errors import (
    BrokenEdgesError,
    ClusterAccessError,
    ClusterUnreachable,
    ConfigError,
    InputFileError,
    LabError,
    ManifestError,
    NovadiagError,
    PermissionDenied,
    PlanError,
    PolicyProofError,
    ProbeError,
    ProbeTimeout,
    ScenarioError,
    Unauthorized,
)
from novadiag.version import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs more than the rest of this module
if TYPE_CHECKING:
    from typing import Any

    from novadiag.least_privilege import GeneratedPolicies, generate_policies
    from novadiag.model import BROKEN_STATUSES, STATUSES, Edge, Finding, Gap, ObjectRef, Reference
    from novadiag.pipeline import audit, audit_snapshot
    from novadiag.planning import Plan, apply_plan, plan, render_plan, verify_plan
    from novadiag.report import Report
    from novadiag.snapshot import Snapshot, load_snapshot_file

# The pipeline pulls in networkx, rich and the kubernetes client; the lab daemon
# and the probe runner import novadiag too and should not pay for that. Even the
# model (dataclasses, typing) waits: the console script installs its Ctrl-C
# handler once this package is imported, and every millisecond here is one more
# in which a Ctrl-C would print a traceback.
_LAZY = {
    **dict.fromkeys(
        ("BROKEN_STATUSES", "STATUSES", "Edge", "Finding", "Gap", "ObjectRef", "Reference"), "novadiag.model"
    ),
    "audit": "novadiag.pipeline",
    "audit_snapshot": "novadiag.pipeline",
    "Report": "novadiag.report",
    "Snapshot": "novadiag.snapshot",
    "load_snapshot_file": "novadiag.snapshot",
    **dict.fromkeys(("GeneratedPolicies", "generate_policies"), "novadiag.least_privilege"),
    **dict.fromkeys(("Plan", "apply_plan", "plan", "render_plan", "verify_plan"), "novadiag.planning"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'novadiag' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BROKEN_STATUSES",
    "BrokenEdgesError",
    "ClusterAccessError",
    "ClusterUnreachable",
    "ConfigError",
    "Edge",
    "Finding",
    "Gap",
    "GeneratedPolicies",
    "InputFileError",
    "LabError",
    "ManifestError",
    "NovadiagError",
    "ObjectRef",
    "PermissionDenied",
    "Plan",
    "PlanError",
    "PolicyProofError",
    "ProbeError",
    "ProbeTimeout",
    "Reference",
    "Report",
    "STATUSES",
    "ScenarioError",
    "Snapshot",
    "Unauthorized",
    "__version__",
    "apply_plan",
    "audit",
    "audit_snapshot",
    "generate_policies",
    "load_snapshot_file",
    "plan",
    "render_plan",
    "verify_plan",
]
