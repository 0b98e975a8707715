"""Ctrl-C and SIGTERM during ``novadiag plan --apply``: exit 130, one line, no probe pod left.

The rewrite plan of Nova patches two ConfigMaps and a Deployment, waits for
the Deployment, then verifies with a probed re-audit. Each test holds the run
at one of those stages (an injected delay, or slow DNS for the probes), sends
the signal once the lab has seen that stage's request, and checks what the
user sees and what is left. The migration's own changes are the user's to
keep or roll back, so each test puts the scenario's objects back afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_support import REPO, cli_env, leftovers, metrics, reset_metrics

from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab

pytestmark = pytest.mark.lab

SIGNALS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
Ready = Callable[[Lab], bool]


@pytest.fixture(scope="module")
def apply_lab() -> Iterator[tuple[Lab, dict[tuple[str, str], Any]]]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-apply-")) as lab:
        with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
            originals = {
                ("ConfigMap", o["metadata"]["name"]): {"data": o.get("data") or {}}
                for o in client.list_raw("ConfigMap", namespace="nova-backend")
            }
            originals.update(
                {
                    ("Deployment", o["metadata"]["name"]): {"spec": {"template": o["spec"]["template"]}}
                    for o in client.list_raw("Deployment", namespace="nova-backend")
                }
            )
        yield lab, originals


@pytest.fixture
def lab(apply_lab: tuple[Lab, dict[tuple[str, str], Any]]) -> Iterator[Lab]:
    """The apply lab with its nova-backend objects as the scenario made them (merge patches replace lists)."""
    lab, originals = apply_lab
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as client:
        for (kind, name), body in originals.items():
            client.patch(kind, "nova-backend", name, body)
    lab.clear_faults()
    yield lab
    lab.clear_faults()


def seen(request: str) -> Ready:
    return lambda lab: metrics(lab).get(request, 0) > 0


def probe_pods_exist(lab: Lab) -> bool:
    return any(item.startswith("Pod ") for item in leftovers(lab.kubeconfig))


def interrupt_apply(lab: Lab, ready: Ready, signum: int) -> tuple[int, str]:
    reset_metrics(lab)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "novadiag",
            "plan",
            "--kubeconfig",
            lab.kubeconfig,
            "--strategy",
            "rewrite",
            "--apply",
            "--yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 40
        while not ready(lab):
            assert child.poll() is None, f"the run ended before the stage: {child.communicate()}"
            assert time.monotonic() < deadline, "the stage was never reached"
            time.sleep(0.05)
        child.send_signal(signum)
        _, err = child.communicate(timeout=40)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return child.returncode, err


def assert_interrupted(lab: Lab, code: int, err: str) -> None:
    assert code == 130, err
    assert err.splitlines()[-1] == "novadiag: interrupted"
    assert "Traceback" not in err
    assert leftovers(lab.kubeconfig) == []


@SIGNALS
def test_while_patching(lab, signum):
    lab.inject_fault(verb="patch", resource="configmaps", latency_ms=4000, times=1)
    code, err = interrupt_apply(lab, seen("patch configmaps"), signum)
    assert_interrupted(lab, code, err)
    assert "==> s001 [fix] rewrite ConfigMap" in err  # the user sees where it stopped
    assert "interrupted during s001; it may be half done" in err and "rollback, newest first:" in err


def test_while_waiting_for_the_rollout(lab):
    lab.inject_fault(verb="get", resource="deployments.apps", latency_ms=4000, times=1)
    code, err = interrupt_apply(lab, seen("get deployments.apps"), signal.SIGTERM)
    assert_interrupted(lab, code, err)
    assert "[fix] wait until Deployment nova-backend/user-service is ready" in err


@SIGNALS
def test_while_verifying_with_probe_pods(lab, signum):
    lab.set_dns_faults(delay_ms=800)
    patched = seen("patch deployments.apps")  # the plan's own audit probes too: wait for the verify step's pods
    code, err = interrupt_apply(lab, lambda lab: patched(lab) and probe_pods_exist(lab), signum)
    assert_interrupted(lab, code, err)
    assert "[verify] re-audit with probes" in err
