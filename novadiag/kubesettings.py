"""How to reach a cluster: the settings value, apart from the client that uses it.

:mod:`novadiag.kube` imports the ``kubernetes`` client, which takes longer to
import than an audit of a few manifests takes to run. Sources, the CLI and the
pipeline name a cluster with these settings before (and whether or not) one is
contacted, so the value lives here and :mod:`novadiag.kube` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubeSettings:
    """How to reach the cluster; all optional, like kubectl's flags."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    request_timeout: float = 30.0
    page_size: int = 500
    max_retries: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
