"""Where the cluster data comes from: one tagged value, one context manager that opens it.

A source is manifest files, a saved snapshot file, a live cluster reached
through a kubeconfig, or a bundled lab scenario. The pipeline, the CLI, the
planner's CLI and the pytest plugin all build a :data:`Source` with
:func:`source_from` (which refuses two at once, with one line) and open it
with :func:`open_source`. Opening a :class:`Lab` starts a private lab and
yields the :class:`Cluster` that reaches it, stopping the lab on the way out,
so nothing but this module imports :mod:`novadiag.lab` to run a scenario, and
everything after the opening sees only files or a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from novadiag.errors import ConfigError
from novadiag.kubesettings import KubeSettings
from novadiag.snapshot import Snapshot


@dataclass(frozen=True)
class Manifests:
    """Manifest files or directories (YAML/JSON)."""

    paths: tuple[str | Path, ...]


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot saved with ``novadiag snapshot save`` (or a Snapshot value already in memory)."""

    path: str | Path | Snapshot


@dataclass(frozen=True)
class Cluster:
    """A live cluster; ``kind`` says whether it is a lab this run started (the report's source kind)."""

    settings: KubeSettings = field(default_factory=KubeSettings)
    kind: Literal["cluster", "lab"] = "cluster"


@dataclass(frozen=True)
class Lab:
    """A bundled lab scenario, started in a private state dir for the run and stopped after it."""

    scenario: str
    request_timeout: float | None = None
    state_prefix: str = "novadiag-lab-"


Source = Manifests | SnapshotFile | Cluster | Lab
Opened = Manifests | SnapshotFile | Cluster


def source_from(
    *,
    manifests: Sequence[str | Path] | None = None,
    snapshot: str | Path | Snapshot | None = None,
    lab: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    request_timeout: float | None = None,
) -> Source:
    """The one source the options name; the current kubeconfig context when they name none."""
    if sum(1 for s in (manifests, snapshot, lab) if s) > 1:
        raise ConfigError("choose one source: manifests, a snapshot file, or a lab scenario")
    if manifests:
        return Manifests(tuple(manifests))
    if snapshot:
        return SnapshotFile(snapshot)
    if lab:
        return Lab(lab, request_timeout=request_timeout)
    settings = KubeSettings(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)
    return Cluster(settings if request_timeout is None else replace(settings, request_timeout=request_timeout))


def is_live(source: Source) -> bool:
    """Whether the source is a running cluster (probes possible), not files."""
    return isinstance(source, Cluster | Lab)


@contextmanager
def open_source(source: Source) -> Iterator[Opened]:
    """The source ready to read: a lab is started (and stopped on exit) and given as its Cluster."""
    if not isinstance(source, Lab):
        yield source
        return
    # deferred: the lab (its servers, scenario loader and their dependencies) loads only to run a scenario
    from novadiag.lab import Lab as RunningLab

    with RunningLab.private(source.scenario, prefix=source.state_prefix) as running:  # a `lab up` lab is left alone
        settings = KubeSettings(kubeconfig=running.kubeconfig)
        if source.request_timeout is not None:
            settings = replace(settings, request_timeout=source.request_timeout)
        yield Cluster(settings, kind="lab")
