"""Helpers of the reliability suite: tokens, kubeconfigs, leftovers, the CLI in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.probing.groups import MANAGED_BY

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova"
REPO = Path(__file__).resolve().parents[2]

FULL_ACCESS = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


def leftovers(kubeconfig: str) -> list[str]:
    """Every novadiag probe object still in the cluster, read with the lab admin's token."""
    with KubeClient(KubeSettings(kubeconfig=kubeconfig)) as client:
        return [
            f"{kind} {o['metadata']['namespace']}/{o['metadata']['name']}"
            for kind in ("Pod", "ConfigMap")
            for o in client.list_raw(kind, label_selector=f"{MANAGED_BY}=novadiag")
        ]


def mint_kubeconfig(lab: Lab, directory: Path, rules: Sequence[dict[str, Any]], *, user: str = "tester") -> str:
    """A kubeconfig for a new token of ``user`` that RBAC limits to ``rules``."""
    answer = lab._admin("POST", "/lab/v1/tokens", {"user": user, "rules": list(rules)})
    return kubeconfig_with(lab, directory, token=answer["token"], name=f"{user}.kubeconfig")


def kubeconfig_with(lab: Lab, directory: Path, *, name: str, token: str | None = None, **cluster: Any) -> str:
    """The lab's kubeconfig with another token and/or cluster fields (``server``, ``insecure-skip-tls-verify``)."""
    config = yaml.safe_load(Path(lab.kubeconfig).read_text())
    if token is not None:
        config["users"][0]["user"]["token"] = token
    config["clusters"][0]["cluster"].update(cluster)
    for key in [k for k, v in cluster.items() if v is None]:
        del config["clusters"][0]["cluster"][key]
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def admin_token(lab: Lab) -> str:
    return str(yaml.safe_load(Path(lab.kubeconfig).read_text())["users"][0]["user"]["token"])


def metrics(lab: Lab) -> dict[str, int]:
    return dict(lab._admin("GET", "/lab/v1/metrics")["requests"])


def reset_metrics(lab: Lab) -> None:
    lab._admin("DELETE", "/lab/v1/metrics")


@dataclass
class Cli:
    code: int
    out: str
    err: str


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "NOVADIAG"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def run_cli(*args: str, timeout: float = 120) -> Cli:
    """``novadiag ARGS`` in a child process, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "novadiag", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=REPO,
        check=False,
    )
    return Cli(done.returncode, done.stdout, done.stderr)


def variant(tmp: Path, **changes: object) -> Path:
    """A copy of the Nova scenario with scenario.yaml fields changed."""
    import shutil

    target = tmp / "nova-variant"
    shutil.copytree(NOVA, target)
    scenario = yaml.safe_load((target / "scenario.yaml").read_text())
    scenario.update(changes)
    scenario["name"] = "nova-variant"
    (target / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    return target


def edge_summary(report: novadiag.Report) -> list[tuple[str, str]]:
    return sorted((e.id, e.status) for e in report.edges)
