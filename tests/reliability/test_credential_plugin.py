"""An exec credential plugin that never answers: bounded by ``--request-timeout``, then one clear line.

The official client waits for the plugin without a timeout; a login prompt
nobody sees or a hung cloud CLI would hold novadiag forever. The plugin here
is a real process that records its pid and sleeps far past the test's patience.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.config import exec_provider
from reliability_support import run_cli

import novadiag.kube  # noqa: F401 - installs the plugin process class in the client's exec provider
from novadiag.lab import Lab

pytestmark = pytest.mark.lab

SILENT_PLUGIN = """
import os, sys, time
with open(sys.argv[1], "w") as pid_file:
    pid_file.write(str(os.getpid()))
time.sleep(600)
"""


def kubeconfig_with_plugin(lab: Lab, directory: Path, plugin: Path, pid_file: Path) -> Path:
    """The lab's kubeconfig, its user authenticated by ``plugin`` instead of a token."""
    config = yaml.safe_load(Path(lab.kubeconfig).read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin), str(pid_file)],
            "interactiveMode": "Never",
        }
    }
    path = directory / "plugin.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_plugin_that_never_answers_is_killed_after_the_request_timeout(lab, tmp_path):
    plugin, pid_file = tmp_path / "silent.py", tmp_path / "plugin.pid"
    plugin.write_text(SILENT_PLUGIN)
    kubeconfig = kubeconfig_with_plugin(lab, tmp_path, plugin, pid_file)

    started = time.monotonic()
    done = run_cli("audit", "--kubeconfig", str(kubeconfig), "--request-timeout", "2", "--no-probe", timeout=60)
    took = time.monotonic() - started

    assert done.code == 2, done.err
    assert done.err.splitlines()[-1] == (
        f"novadiag: error: kubeconfig {kubeconfig}: the exec credential plugin {sys.executable} "
        "did not answer within 2s (--request-timeout)"
    )
    assert "Traceback" not in done.err
    assert took < 15, f"{took:.1f} s for a 2 s timeout"
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left sleeping


def test_a_plugin_another_client_starts_in_the_same_process_gets_no_deadline(monkeypatch):
    """The deadline is novadiag's own: a notebook's own kubernetes client keeps the client's behaviour."""
    timeouts: list[float | None] = []

    def recording(self, input=None, timeout=None):  # the stdlib's method, observed: not novadiag's code
        timeouts.append(timeout)
        return "", ""

    monkeypatch.setattr(subprocess.Popen, "communicate", recording)
    process = exec_provider.subprocess.Popen(["true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.communicate()
    process.wait()
    for stream in (process.stdout, process.stderr):
        stream.close()
    assert timeouts == [None]
