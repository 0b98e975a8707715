"""Live probes: check each edge for real, from its source's namespace and DNS settings.

Three steps, one module each:

- :mod:`~novadiag.probing.groups` (pure): edges → probe groups, one per
  (source namespace, DNS settings), each with its deduplicated checks, and the
  probe Pod/ConfigMap specs — Pod Security "restricted", labelled for cleanup;
- :mod:`~novadiag.probing.runner`: creates the pods (bounded concurrency),
  follows them with a watch, reads their logs, and always deletes what it made;
- :mod:`~novadiag.probing.merge` (pure): folds observations into the edges,
  flags disagreements with the static prediction and explains their likely cause.
"""

from novadiag.probing.groups import ProbeGroup, ProbeSettings, group_edges
from novadiag.probing.merge import merge_observations
from novadiag.probing.runner import ProbeRun, cleanup, run_probes

__all__ = [
    "ProbeGroup",
    "ProbeRun",
    "ProbeSettings",
    "cleanup",
    "group_edges",
    "merge_observations",
    "run_probes",
]
