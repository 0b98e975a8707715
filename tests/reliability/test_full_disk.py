"""A full disk: one line naming what could not be written, exit 2, and no half-written file.

The disk is real: a 64 KiB tmpfs mounted for the test (root only), and
``/dev/full`` for standard output. The report and the snapshot written are
well over 64 KiB, so the write fails part way, as on a disk that fills up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import REPO, cli_env

from novadiag.cli import main

NO_SPACE = os.strerror(28)  # ENOSPC: "No space left on device"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 64 KiB filesystem of its own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def big_manifests(tmp_path: Path) -> Path:
    """One Deployment with 2,000 references: a report and a snapshot of several hundred KiB."""
    env = [{"name": f"SVC_{i}_URL", "value": f"http://service-{i}.default:80/path"} for i in range(2_000)]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "app", "image": "x", "env": env}]},
            },
        },
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(deployment))
    return path


def audit_to_dev_full(manifests: Path, fmt: str) -> tuple[int, list[str]]:
    """``novadiag audit ... > /dev/full``: its exit code and stderr lines."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "novadiag", "audit", "--manifests", str(manifests), "--format", fmt],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=cli_env(),
            cwd=REPO,
            check=False,
        )
    return done.returncode, done.stderr.splitlines()


def only_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_report_on_a_full_disk_is_one_line_and_the_previous_report_survives(full_disk, big_manifests, capsys):
    report = full_disk / "report.json"
    report.write_text('{"previous": "report"}')
    code = main(["audit", "--manifests", str(big_manifests), "--format", "json", "-o", str(report)])
    assert code == 2
    assert only_error_line(capsys) == f"novadiag: error: cannot write {report}: {NO_SPACE}"
    assert report.read_text() == '{"previous": "report"}', "no half-written report in its place"
    assert sorted(p.name for p in full_disk.iterdir()) == ["report.json"], "no temporary file left"


def test_a_snapshot_save_on_a_full_disk_is_one_line_and_leaves_no_file(full_disk, big_manifests, capsys):
    target = full_disk / "snap.json"
    assert main(["snapshot", "save", str(target), "--manifests", str(big_manifests)]) == 2
    assert only_error_line(capsys) == f"novadiag: error: cannot write {target}: {NO_SPACE}"
    assert list(full_disk.iterdir()) == []


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "sarif", "table"])
def test_standard_output_on_a_full_device_is_one_line(big_manifests, fmt):
    assert audit_to_dev_full(big_manifests, fmt) == (2, [f"novadiag: error: cannot write standard output: {NO_SPACE}"])


def test_a_short_report_on_a_full_device_fails_at_the_final_flush_not_at_exit(tmp_path):
    """Output smaller than the stream's buffer is written only by the last flush: it must fail in novadiag, too."""
    manifest = tmp_path / "one.yaml"
    manifest.write_text("kind: ConfigMap\napiVersion: v1\nmetadata: {name: c, namespace: default}\ndata: {A: b}\n")
    assert audit_to_dev_full(manifest, "json") == (2, [f"novadiag: error: cannot write standard output: {NO_SPACE}"])
