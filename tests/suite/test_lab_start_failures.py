"""A lab that cannot start fails the tests that need it; it never turns them into skips.

A fixture that caught the start-up error and skipped would let a broken lab pass CI
as a run of skips. Each module that starts a lab runs here in a child pytest on a
machine where the lab truly cannot start: this test holds the lock of every address
block 127.N.0.0/16 in the child's lock directory (``$TMPDIR/novadiag-lab-blocks``),
as 254 running labs would, so each daemon it spawns exits with "no free address block".
The child must report that as an error or failure, and skip nothing.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
LAB_DIRS = ("lab", "emulator", "reliability", "notebooks")
STARTS_A_LAB = (" Lab(", "Lab.private(", "lab=", "nova_lab", "lease_block(")
"""Text that marks a module whose fixtures start a lab daemon or claim an address block."""
ALSO = (
    "notebooks/test_notebooks.py",
    "reliability/test_dns_faults.py",
    "emulator/test_lab_dns.py::test_glibc_walks_the_search_list_against_the_lab_dns",
)
"""Beyond the text search: the notebooks start labs in their own cells; one user of the shared
reliability lab (``tests/reliability/conftest.py``) stands for all; the DNS module's other tests
run servers on high ports of a fixed block, so only its port-53 test is run."""
BLOCKS = range(1, 255)


def _lab_modules() -> list[str]:
    """Test ids relative to tests/: every module whose text starts a lab, and ``ALSO``."""
    found = set(ALSO)
    for directory in LAB_DIRS:
        for path in (TESTS / directory).glob("test_*.py"):
            if any(mark in path.read_text(encoding="utf-8") for mark in STARTS_A_LAB):
                found.add(path.relative_to(TESTS).as_posix())
    return sorted(found)


LAB_MODULES = _lab_modules()


@pytest.fixture
def every_block_taken(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR whose lab lock directory has every block's lock held by this process."""
    tmpdir = tmp_path / "tmp"
    lock_dir = tmpdir / "novadiag-lab-blocks"
    lock_dir.mkdir(parents=True, mode=0o700)
    held = []
    try:
        for block in BLOCKS:
            handle = open(lock_dir / f"block-{block}.lock", "ab")  # held until the test ends
            held.append(handle)
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield tmpdir
    finally:
        for handle in held:
            handle.close()


def _outcomes(junit: Path) -> dict[str, int]:
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None, f"{junit}: no testsuite element"
    return {key: int(suite.get(key, "0")) for key in ("tests", "errors", "failures", "skipped")}


def test_every_lab_module_is_found() -> None:
    assert {"reliability/test_dns_faults.py", "lab/test_plan_apply.py", "lab/test_probes_lab.py",
            "notebooks/test_notebooks.py", "emulator/test_kubelet.py"} <= set(LAB_MODULES)


@pytest.mark.parametrize("module", LAB_MODULES)
def test_a_lab_that_cannot_start_is_an_error_not_a_skip(module: str, every_block_taken: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", f"tests/{module}", "-x", "-q", "-p", "no:cacheprovider",
            f"--junitxml={junit}", f"--basetemp={tmp_path / 'child'}"]
    env = {**os.environ, "TMPDIR": str(every_block_taken)}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    outcomes = _outcomes(junit)
    assert outcomes["skipped"] == 0, f"a lab that cannot start was skipped:\n{done.stdout[-3000:]}"
    assert outcomes["errors"] + outcomes["failures"] >= 1, f"nothing failed:\n{done.stdout[-3000:]}"
    assert "no free address block" in done.stdout, done.stdout[-3000:]
