"""The whole exception tree of novadiag, with one root.

Everything novadiag raises on purpose derives from :class:`NovadiagError`, so a
caller can catch one class. Third-party exceptions (the ``kubernetes`` client,
urllib3, PyYAML, dnspython) are wrapped where they enter (``raise ... from exc``)
and never leak from the public API. Broken edges are *data*, not exceptions:
``Report.raise_for_broken()`` is the opt-in way to turn them into one.

::

    NovadiagError
    ├── ConfigError              bad options, unreadable/invalid manifests, bad kubeconfig
    │   └── InputFileError       a file the user named: unreadable, too large, not a regular file
    │       └── ManifestError    one manifest file: names the file and the line
    ├── ClusterAccessError       the cluster could not be read
    │   ├── ClusterUnreachable   connection refused, DNS, TLS, timeouts
    │   ├── Unauthorized         401: token missing or expired
    │   └── PermissionDenied     403 on something the run cannot do without
    ├── ProbeError               probe pods could not run at all
    │   └── ProbeTimeout
    ├── PlanError                a plan cannot be built, verified or applied
    ├── PolicyProofError         generated NetworkPolicies would deny a working edge or admit more
    ├── ScenarioError            a lab scenario is invalid
    ├── LabError                 the lab could not start, or is not running
    └── BrokenEdgesError         raised only by Report.raise_for_broken()

Every message is one line that names the object and the problem, because the
CLI prints it as it is.
"""

from __future__ import annotations


class NovadiagError(Exception):
    """Root of every error novadiag raises on purpose."""


class ConfigError(NovadiagError):
    """Options, files or kubeconfig that novadiag cannot use."""


class InputFileError(ConfigError):
    """A file the user named (manifest, snapshot, baseline) that cannot be read at a bounded cost.

    The message names the file and, where a parser knows it, the line.
    """

    def __init__(self, path: str, problem: str, *, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class ManifestError(InputFileError):
    """A manifest file that cannot be read or parsed."""


class ClusterAccessError(NovadiagError):
    """The cluster's API could not be read."""


class ClusterUnreachable(ClusterAccessError):
    """No answer from the API server: connection, TLS or timeout."""


class Unauthorized(ClusterAccessError):
    """The API server rejected the credentials (HTTP 401)."""


class PermissionDenied(ClusterAccessError):
    """The API server forbade something the run cannot do without (HTTP 403)."""


class ProbeError(NovadiagError):
    """Probe pods could not be run at all."""


class ProbeTimeout(ProbeError):
    """Probe pods did not finish within the probe timeout."""


class PlanError(NovadiagError):
    """A migration plan cannot be built, verified or applied."""


class PolicyProofError(NovadiagError):
    """Generated NetworkPolicies failed their proof: the message names the edge or pod pair."""


class ScenarioError(NovadiagError):
    """A lab scenario is missing or invalid."""


class LabError(NovadiagError):
    """The lab could not be started, reached or stopped."""


class BrokenEdgesError(NovadiagError):
    """Raised by ``Report.raise_for_broken()`` when the audit found broken edges."""

    def __init__(self, message: str, *, edges: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.edges = edges
