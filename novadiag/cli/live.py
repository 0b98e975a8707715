"""The live part of ``novadiag audit``: a cluster or a lab, listed and probed, with progress on a terminal.

Apart from :mod:`novadiag.cli.audit` because it needs the probe runner, and
through it the kubernetes client, which an audit of files never uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from novadiag.cli.options import source_options
from novadiag.cli.terminal import progress_bar
from novadiag.pipeline import audit
from novadiag.probing import ProbeSettings

if TYPE_CHECKING:
    from novadiag.report.core import Report


def audit_live(args: argparse.Namespace, probe_options: dict[str, Any], *, progress: bool) -> Report:
    """Audit the cluster the source options name, probing it unless ``--no-probe``."""
    with progress_bar(enabled=progress) as (listing, probing):
        return audit(
            **source_options(args),
            namespaces=args.namespaces,
            cluster_domain=args.cluster_domain,
            cluster_dns=args.cluster_dns,
            ingress_from=args.ingress_from,
            probe=args.probe,
            probe_settings=ProbeSettings(**probe_options),
            progress=listing,
            probe_progress=probing,
        )
