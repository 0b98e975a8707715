"""Shared lab of the reliability suite.

One Nova lab serves the whole suite (a lab costs seconds to start): faults are
cleared before and after every test that uses it, and tests that change its
objects put them back. Scenario variants (seeded secrets, unpullable images)
start labs of their own in the modules that need them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import novadiag
from novadiag.lab import Lab


@pytest.fixture(scope="session")
def nova_lab() -> Iterator[Lab]:
    """The suite's Nova lab; one that cannot start is an error of every test that uses it, never a skip."""
    with Lab.private("nova", prefix="nd-reliability-") as lab:
        yield lab


@pytest.fixture
def lab(nova_lab: Lab) -> Iterator[Lab]:
    """The shared Nova lab, with every fault cleared afterwards and no probe object left over."""
    nova_lab.clear_faults()
    yield nova_lab
    nova_lab.clear_faults()


@pytest.fixture(scope="session")
def baseline(nova_lab: Lab) -> novadiag.Report:
    """The fault-free static audit every faulted one must equal."""
    return novadiag.audit(kubeconfig=nova_lab.kubeconfig, probe=False)
