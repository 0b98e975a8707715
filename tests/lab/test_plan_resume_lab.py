"""``novadiag plan --apply`` stopped before a manual step, then run again on the half-migrated lab.

Done when: the stopped run exits 1 (the migration is not finished), the same
command with ``--ack-manual`` resumes where it stopped (the objects already
created are recognised, none is created twice) and ends with zero broken
edges, and an object changed by hand since the first run stops the second run
with one line naming it and the field, without overwriting it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.pipeline import audit_cluster

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CONSOLIDATE = (
    "--strategy",
    "consolidate",
    "--into",
    "nova-prod",
    "--keep",
    "kafka",
    "--keep",
    "nova-staging",
    "--prefer",
    "nova-backend/postgres",
    "--wait-timeout",
    "120",
    "--apply",
    "--yes",
)
EDITED = "edited-by-hand-7d2f"


def _plan(kubeconfig: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = [sys.executable, "-m", "novadiag", "plan", "--kubeconfig", kubeconfig, *CONSOLIDATE, *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def _step_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("==> ")]


def _step_id(line: str) -> str:
    return line.split()[1]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, subprocess.CompletedProcess[str]]]:
    """A lab after a run that stopped before its first manual step (a data migration)."""
    with Lab(scenario="nova", state_dir=tmp_path_factory.mktemp("lab-resume")) as lab:  # a failed start is an error
        yield lab, _plan(lab.kubeconfig)


def test_a_run_that_stops_before_a_manual_step_exits_1(stopped: tuple[Any, subprocess.CompletedProcess[str]]) -> None:
    _, first = stopped
    assert "stopped before" in first.stderr and "--ack-manual" in first.stderr, first.stderr[-2000:]
    assert first.returncode == 1


def test_an_object_changed_since_the_stop_is_named_and_not_overwritten(
    stopped: tuple[Any, subprocess.CompletedProcess[str]],
) -> None:
    lab, _ = stopped
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        config = client.get("ConfigMap", "nova-prod", "feed-config")
        assert config is not None, "the first run copies feed-config before it stops"
        key, original = sorted(config["data"].items())[0]
        client.patch("ConfigMap", "nova-prod", "feed-config", {"data": {key: EDITED}})
        try:
            again = _plan(lab.kubeconfig, "--ack-manual")
            after = client.get("ConfigMap", "nova-prod", "feed-config")
        finally:
            client.patch("ConfigMap", "nova-prod", "feed-config", {"data": {key: original}})
    assert again.returncode == 2
    errors = [line for line in again.stderr.splitlines() if line.startswith("novadiag: error:")]
    assert len(errors) == 1, again.stderr[-2000:]
    assert "ConfigMap nova-prod/feed-config" in errors[0] and f"data.{key}" in errors[0]
    assert EDITED not in again.stderr + again.stdout
    assert after is not None and after["data"][key] == EDITED
    assert "==>" not in again.stderr  # refused before any step ran


def test_the_same_command_with_ack_manual_resumes_where_it_stopped(
    stopped: tuple[Any, subprocess.CompletedProcess[str]],
) -> None:
    lab, first = stopped
    created_first = [_step_id(line) for line in _step_lines(first.stderr) if "] wait until " not in line]
    again = _plan(lab.kubeconfig, "--ack-manual", "--no-grace", "--allow-delete")
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = [_step_id(line) for line in _step_lines(again.stderr) if line.endswith(": already in place, skipped")]
    assert len(created_first) > 30 and skipped == created_first
    assert again.stderr.rstrip().endswith("done.")
    report = audit_cluster(KubeSettings(kubeconfig=lab.kubeconfig), source_kind="lab", probe=True)
    assert [e.id for e in report.broken] == []
    assert {e.reference.namespace for e in report.edges} == {"nova-prod", "kafka", "nova-staging"}
