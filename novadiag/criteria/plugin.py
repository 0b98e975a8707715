"""The pytest plugin (entry point ``pytest11``): options, hooks and fixtures only.

Collects ``*.novadiag.yaml`` criteria files and gives Python tests the same
session-wide audit::

    def test_nothing_broken(novadiag_report):
        assert not novadiag_report.broken
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novadiag.criteria.context import CheckContext, CriteriaSettings
from novadiag.criteria.items import CONTEXT_KEY, CriteriaFile
from novadiag.report.core import Report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("novadiag", "novadiag connectivity criteria")
    group.addoption("--novadiag-kubeconfig", metavar="FILE", help="kubeconfig of the cluster under test")
    group.addoption("--novadiag-context", metavar="NAME", help="kubeconfig context")
    group.addoption(
        "--novadiag-manifests",
        action="append",
        default=[],
        metavar="PATH",
        help="audit manifest files instead of a cluster (repeatable)",
    )
    group.addoption("--novadiag-lab", metavar="SCENARIO", help="start a lab scenario for the session")
    group.addoption("--novadiag-baseline", metavar="FILE", help="an earlier audit JSON or snapshot to compare with")
    group.addoption("--novadiag-no-probe", action="store_true", help="audit without probe pods")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "novadiag: a connectivity criterion checked by novadiag")
    opt = config.option
    config.stash[CONTEXT_KEY] = CheckContext(
        CriteriaSettings(
            kubeconfig=opt.novadiag_kubeconfig,
            context=opt.novadiag_context,
            manifests=tuple(opt.novadiag_manifests or ()),
            lab=opt.novadiag_lab,
            baseline=opt.novadiag_baseline,
            probe=not opt.novadiag_no_probe,
        )
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    context = config.stash.get(CONTEXT_KEY, None)
    if context is not None:
        context.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CriteriaFile | None:
    if file_path.name.endswith(".novadiag.yaml"):
        return CriteriaFile.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def novadiag_cluster(pytestconfig: pytest.Config) -> Iterator[CheckContext]:
    """The session's cluster context: kubeconfig, one shared audit, requests from probe pods."""
    yield pytestconfig.stash[CONTEXT_KEY]


@pytest.fixture(scope="session")
def novadiag_report(novadiag_cluster: CheckContext) -> Report:
    """One audit per session, shared by every check."""
    return novadiag_cluster.report()


@pytest.fixture(scope="session")
def novadiag_baseline(novadiag_cluster: CheckContext) -> list[dict[str, Any]] | None:
    """The baseline audit's edges (``--novadiag-baseline``), or None."""
    return novadiag_cluster.baseline()
