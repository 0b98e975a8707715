"""``--lab NAME`` with a name that is not a scenario: one line, and no state directory left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "command",
    [["audit", "--lab", "nope"], ["snapshot", "save", "{tmp}/x.json", "--lab", "nope"], ["plan", "--lab", "nope"]],
    ids=["audit", "snapshot", "plan"],
)
def test_an_unknown_scenario_leaves_no_temporary_directory(tmp_path: Path, command: list[str]) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    argv = [arg.format(tmp=tmp_path) for arg in command]
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "novadiag", *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("novadiag: error: unknown scenario 'nope'") and done.stderr.count("\n") == 1
    assert list(temp.iterdir()) == []
