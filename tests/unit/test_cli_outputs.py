"""Output paths: a bad one is refused before any work, in one line; a closed pipe ends quietly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from novadiag.cli import main
from novadiag.errors import ConfigError
from novadiag.outputs import write_output


def _manifests(directory: Path, workloads: int = 1) -> Path:
    docs = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"api-{i}", "namespace": "shop"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": f"api-{i}"}},
                    "spec": {"containers": [{"name": "api", "env": [{"name": "DB_HOST", "value": "db.other:5432"}]}]},
                }
            },
        }
        for i in range(workloads)
    ]
    directory.mkdir()
    (directory / "all.yaml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return directory


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("novadiag: error: "), err
    return err[0]


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "--manifests", "{m}", "-o", "{tmp}/missing/report.json"],
        ["policies", "--manifests", "{m}", "-o", "{tmp}/missing/view.txt"],
        ["plan", "--manifests", "{m}", "-o", "{tmp}/missing/plan.md"],
        ["snapshot", "save", "{tmp}/missing/snap.json", "--manifests", "{m}"],
    ],
    ids=["audit", "policies", "plan", "snapshot"],
)
def test_an_output_in_a_missing_directory_is_one_line_and_exit_2(tmp_path, capsys, command):
    manifests = _manifests(tmp_path / "m")
    argv = [arg.format(m=manifests, tmp=tmp_path) for arg in command]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert f"{tmp_path}/missing" in line and "does not exist" in line
    assert not (tmp_path / "missing").exists()


def test_an_output_that_is_a_directory_is_refused(tmp_path, capsys):
    manifests = _manifests(tmp_path / "m")
    assert main(["audit", "--manifests", str(manifests), "-o", str(tmp_path)]) == 2
    assert "is a directory" in _one_error_line(capsys)


def test_a_failed_write_names_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=rf"^cannot write {blocker}/out.json: Not a directory$"):
        write_output(blocker / "out.json", "{}")


def test_an_output_that_is_a_symbolic_link_is_written_through(tmp_path):
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    write_output(tmp_path / "link.json", "{}")
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "target.json").read_text() == "{}"


def test_rewriting_a_private_report_keeps_it_private(tmp_path):
    report = tmp_path / "report.json"
    report.write_text("old")
    report.chmod(0o600)
    write_output(report, "{}")
    assert report.read_text() == "{}"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


def test_an_output_that_is_a_fifo_is_written_into_not_replaced(tmp_path):
    """``-o /dev/stdout`` and ``-o fifo`` write into the stream: renaming a file over it would replace it."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_output(fifo, "{}")
    reader.join(timeout=10)
    assert received == ["{}"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """``novadiag audit ... | head``: exit 141 like other Unix tools, no BrokenPipeError traceback.

    The read end is closed before the child has imported anything, so its first
    write meets a closed pipe whatever the size of the pipe buffer.
    """
    manifests = _manifests(tmp_path / "m")
    command = [sys.executable, "-m", "novadiag", "audit", "--manifests", str(manifests), "--format", "json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert err == b""
