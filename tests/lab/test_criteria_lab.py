"""``novadiag check`` against the Nova lab: criteria that need probes, counts, and masked URLs.

Runs the command as a user would (a child process, the lab's kubeconfig) and
looks at the cluster through the real client: a run without probes must create
no probe pod, and a criterion it cannot check must not pass.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch

import novadiag
from novadiag.kube import KubeClient, KubeSettings
from novadiag.lab import Lab
from novadiag.probing.groups import MANAGED_BY

pytestmark = pytest.mark.lab

SECRETS = ("s3cret", "t0ken", "acc3ss", "k3y", "p4ss")
CREDENTIAL_URL = (
    "http://user:s3cret@no-such-service:4000/graphql?token=t0ken&access_token=acc3ss&key=k3y&password=p4ss"
)
CRITERIA = f"""
- name: gateway answers
  check: endpoint-responds
  namespace: nova-gateway
  url: "{CREDENTIAL_URL}"
- name: backend short names
  check: short-names-resolve
  namespaces: [nova-backend]
"""


@pytest.fixture(scope="module")
def nova_lab() -> Iterator[Lab]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-criteria-")) as lab:
        yield lab


def check(lab: Lab, tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``novadiag check`` of :data:`CRITERIA` on the lab: the process and its JUnit XML."""
    criteria = tmp / "gate.novadiag.yaml"
    criteria.write_text(CRITERIA)
    junit = tmp / "junit.xml"
    command = [sys.executable, "-m", "novadiag", "check", str(criteria), "--kubeconfig", lab.kubeconfig]
    done = subprocess.run(
        [*command, "--junitxml", str(junit), *args], cwd=tmp, capture_output=True, text=True, timeout=300
    )
    return done, junit.read_text()


def probe_pods_created_since(lab: Lab, resource_version: str) -> list[str]:
    """Names of probe pods created after ``resource_version`` (the API server replays its event log)."""
    api = client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))
    events = watch.Watch().stream(
        api.list_pod_for_all_namespaces,
        label_selector=f"{MANAGED_BY}=novadiag",
        resource_version=resource_version,
        timeout_seconds=2,
    )
    return [event["object"].metadata.name for event in events if event["type"] == "ADDED"]


def pods_resource_version(lab: Lab) -> str:
    api = client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))
    return str(api.list_pod_for_all_namespaces(limit=1).metadata.resource_version)


def leftovers(lab: Lab) -> list[str]:
    with KubeClient(KubeSettings(kubeconfig=lab.kubeconfig)) as kube:
        return [o["metadata"]["name"] for o in kube.list_raw("Pod", label_selector=f"{MANAGED_BY}=novadiag")]


def test_without_probes_the_probe_criteria_fail_as_unchecked_and_start_no_pod(nova_lab, tmp_path):
    before = pods_resource_version(nova_lab)
    done, junit = check(nova_lab, tmp_path, "--no-probe")
    assert done.returncode == 1, done.stdout + done.stderr
    unchecked = "could not be checked: cannot be checked without probes (probes are turned off)"
    for name in ("endpoint-responds", "short-names-resolve"):  # each says so (pytest repeats it in CI's summary)
        assert f"{name} {unchecked}" in done.stdout, done.stdout
    assert "2 failed" in done.stdout
    assert "not probed" not in done.stdout
    assert probe_pods_created_since(nova_lab, before) == []
    assert junit.count("cannot be checked without probes") >= 2


def test_with_probes_counts_and_urls_tell_the_truth(nova_lab, tmp_path):
    done, junit = check(nova_lab, tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert leftovers(nova_lab) == []
    for text in (out, junit):
        assert not [secret for secret in SECRETS if secret in text], text
    assert "http://user:***@no-such-service:4000/graphql?token=***" in out

    counted = re.search(r"short-names-resolve failed: (\d+) of (\d+) service reference\(s\) fail", out)
    assert counted, out
    failing, considered = map(int, counted.groups())
    backend = [
        e
        for e in novadiag.audit(kubeconfig=nova_lab.kubeconfig).edges
        if e.reference.namespace == "nova-backend" and e.status != "external"
    ]
    assert considered == len(backend) and 0 < failing <= considered
    following = out[counted.end() :].splitlines()[1:]
    listed = list(itertools.takewhile(lambda line: line.startswith("  - "), following))
    assert len(listed) == failing, out
