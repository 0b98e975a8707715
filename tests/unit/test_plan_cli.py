"""``novadiag plan`` on the command line: formats, files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_support import NOVA

from novadiag.cli import main

CONSOLIDATE = [
    "plan",
    "--manifests",
    str(NOVA),
    "--strategy",
    "consolidate",
    "--into",
    "nova-prod",
    "--keep",
    "kafka",
    "--keep",
    "nova-staging",
]


def test_verified_plan_exits_zero_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert main([*CONSOLIDATE, "--prefer", "nova-backend/postgres", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["verification"]["broken_after"] == 0


def test_unresolved_conflict_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*CONSOLIDATE, "-o", str(tmp_path / "plan.md")]) == 1
    assert "INCOMPLETE" in capsys.readouterr().err


def test_script_output_is_executable(tmp_path: Path) -> None:
    out = tmp_path / "plan.sh"
    assert main(["plan", "--manifests", str(NOVA), "--strategy", "rewrite", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o111 and out.read_text().startswith("#!/usr/bin/env bash")


def test_manifests_format_writes_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "dir"
    assert main([*CONSOLIDATE, "--prefer", "nova-backend/postgres", "--format", "manifests", "-o", str(out)]) == 0
    assert (out / "README.md").exists() and any(out.glob("s001-*.yaml"))


def test_markdown_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--manifests", str(NOVA)]) == 0
    assert capsys.readouterr().out.startswith("# novadiag plan: `auto` fixes")


def test_apply_needs_a_live_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*CONSOLIDATE, "--apply"]) == 2
    assert "--apply needs a live cluster" in capsys.readouterr().err


def test_consolidation_options_need_the_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--manifests", str(NOVA), "--into", "nova-prod"]) == 2
