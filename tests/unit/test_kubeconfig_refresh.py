"""Credential refresh from several listing threads runs an exec plugin one at a time.

The kubeconfig loader refreshes an expired token before every request; listing
kinds from four threads must not start four ``kubelogin`` prompts at once.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from novadiag.kube import KubeSettings, _load_configuration

PLUGIN = """
import json, sys, time
log = sys.argv[1]
with open(log, "a") as fh:
    fh.write(f"start {time.monotonic()}\\n")
time.sleep(0.3)
with open(log, "a") as fh:
    fh.write(f"end {time.monotonic()}\\n")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": "t-1", "expirationTimestamp": "2000-01-01T00:00:00Z"}}))
"""


def _kubeconfig(tmp_path: Path, log: Path) -> Path:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": sys.executable,
                        "args": [str(plugin), str(log)],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _request(configuration: Any) -> None:
    """What the official client does before each request: read the hook now, and call it."""
    configuration.refresh_api_key_hook(configuration)


def test_an_expired_exec_token_is_refreshed_by_one_thread_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "plugin.log"
    _, configuration = _load_configuration(KubeSettings(kubeconfig=str(_kubeconfig(tmp_path, log))))
    log.write_text("")  # forget the run at load time
    for _round in range(2):  # the loader replaces the hook as it refreshes: the second round uses that one
        threads = [threading.Thread(target=_request, args=(configuration,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 16, "the token is always expired: each refresh runs the plugin once"
    running = 0
    for kind, _at in sorted(events, key=lambda e: float(e[1])):
        running += 1 if kind == "start" else -1
        assert running <= 1, "two plugin runs overlapped"
    assert configuration.api_key["BearerToken"] == "Bearer t-1"
