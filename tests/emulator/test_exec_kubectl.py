"""``kubectl exec`` into lab pods, with the machine's own ``kubectl`` (WebSocket, v5.channel.k8s.io).

The first things a user debugging DNS types: ``cat /etc/resolv.conf`` must show the
pod's own file and ``getent hosts NAME`` must resolve through the pod's resolver, so
the Nova story (a short cross-namespace name fails, the namespaced one resolves) can
be seen from inside a pod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novadiag.lab import Lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="exec enters the pod's namespaces: root mode only"),
]


@pytest.fixture(scope="module")
def nova_lab() -> Iterator[Lab]:
    with Lab(scenario="nova", state_dir=tempfile.mkdtemp(prefix="nd-exec-")) as lab:
        yield lab


def kubectl(lab: Lab, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    cache = Path(lab.state_dir) / "kubectl-cache"
    return subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "--cache-dir", str(cache), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
    )


def running_pod(lab: Lab, namespace: str, prefix: str) -> str:
    names = kubectl(lab, "get", "pods", "-n", namespace, "--field-selector=status.phase=Running",
                    "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    return next(n for n in names if n.startswith(prefix))


def test_exec_cat_resolv_conf_shows_the_pods_own_file(nova_lab: Lab) -> None:
    pod = running_pod(nova_lab, "nova-backend", "cdn-service")
    done = kubectl(nova_lab, "exec", pod, "-n", "nova-backend", "--", "cat", "/etc/resolv.conf")
    assert done.returncode == 0, done.stderr
    assert f"nameserver {nova_lab.dns_address[0]}" in done.stdout
    assert "search nova-backend.svc.cluster.local svc.cluster.local cluster.local" in done.stdout
    assert done.stdout != Path("/etc/resolv.conf").read_text()


def test_exec_getent_resolves_through_the_pods_search_list(nova_lab: Lab) -> None:
    pod = running_pod(nova_lab, "nova-backend", "cdn-service")
    short = kubectl(nova_lab, "exec", pod, "-n", "nova-backend", "--", "getent", "hosts", "content-service")
    assert short.returncode == 2 and short.stdout == ""  # getent: not found
    assert "command terminated with exit code 2" in short.stderr
    namespaced = kubectl(nova_lab, "exec", pod, "-n", "nova-backend", "--",
                         "getent", "hosts", "content-service.nova-content")
    assert namespaced.returncode == 0, namespaced.stderr
    assert namespaced.stdout.split()[1] == "content-service.nova-content.svc.cluster.local"
    api = kubectl(nova_lab, "exec", pod, "-n", "nova-backend", "--", "getent", "hosts", "kubernetes.default")
    assert api.stdout.split()[0] == f"127.{nova_lab.info.block}.128.1"


def test_exec_streams_stdout_stderr_stdin_and_the_exit_code(nova_lab: Lab) -> None:
    pod = running_pod(nova_lab, "nova-content", "content-service")
    done = kubectl(nova_lab, "exec", pod, "-n", "nova-content", "--",
                   "sh", "-c", "echo out; echo err >&2; hostname; exit 3")
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["out", pod]
    assert done.stderr.splitlines() == ["err", "command terminated with exit code 3"]
    piped = kubectl(nova_lab, "exec", "-i", pod, "-n", "nova-content", "--", "sh", "-c", "tr a-z A-Z",
                    stdin="nova\n")
    assert (piped.returncode, piped.stdout) == (0, "NOVA\n"), piped.stderr


def test_exec_runs_with_the_containers_environment_and_user(nova_lab: Lab) -> None:
    pod = running_pod(nova_lab, "nova-media", "media-service")
    done = kubectl(nova_lab, "exec", pod, "-n", "nova-media", "--", "sh", "-c",
                   "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT $REDIS_ADDR; id -u")
    assert done.returncode == 0, done.stderr
    env_line, uid = done.stdout.splitlines()
    # every pod gets the default/kubernetes Service's variables, whatever its namespace
    assert env_line == f"127.{nova_lab.info.block}.128.1:443 redis:6379"
    assert uid == "0"


def test_exec_refusals_are_one_clear_error(nova_lab: Lab) -> None:
    missing = kubectl(nova_lab, "exec", "nope", "-n", "nova-backend", "--", "true")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    crashing = backing_off(nova_lab, "nova-backend", "user-service")
    refused = kubectl(nova_lab, "exec", crashing, "-n", "nova-backend", "--", "true")
    assert refused.returncode == 1
    assert 'unable to upgrade connection: container not found ("user-service")' in refused.stderr


def backing_off(lab: Lab, namespace: str, prefix: str) -> str:
    """A pod whose container waits in CrashLoopBackOff now: between restarts it runs for a moment,
    and an exec that lands then rightly succeeds, so the refusal is asked for while it waits."""
    query = "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.waiting.reason}{'\\n'}{end}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in kubectl(lab, "get", "pods", "-n", namespace, "-o", query).stdout.splitlines():
            name, _, reason = line.partition(" ")
            if name.startswith(prefix) and reason == "CrashLoopBackOff":
                return name
        time.sleep(0.2)
    raise AssertionError(f"no {namespace}/{prefix} pod waited in CrashLoopBackOff within 30 s")


def test_a_command_dies_with_the_client_that_ran_it(nova_lab: Lab) -> None:
    pod = running_pod(nova_lab, "nova-content", "content-service")
    cache = Path(nova_lab.state_dir) / "kubectl-cache"
    client = subprocess.Popen(
        ["kubectl", "--kubeconfig", nova_lab.kubeconfig, "--cache-dir", str(cache),
         "exec", pod, "-n", "nova-content", "--", "sleep", "4242"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sleepers("4242") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers("4242"), "the command started in the pod"
    client.kill()
    client.wait()
    deadline = time.monotonic() + 5
    while sleepers("4242") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers("4242") == []


def sleepers(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[:2] == [b"sleep", tag.encode()]:
                found.append(int(entry.name))
    return found


DEGRADED_SCENARIO = """\
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{name: http, containerPort: 8080}]
"""


def test_degraded_mode_refuses_exec_and_says_why(tmp_path: Path) -> None:
    scenario = tmp_path / "small"
    scenario.mkdir()
    (scenario / "objects.yaml").write_text(DEGRADED_SCENARIO)
    with Lab(scenario=str(scenario), state_dir=tmp_path / "state", degraded=True) as lab:
        pod = running_pod(lab, "demo", "web-")
        refused = kubectl(lab, "exec", pod, "-n", "demo", "--", "cat", "/etc/resolv.conf")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "Error from server (BadRequest): unable to upgrade connection: lab degraded mode: "
        "pods have no namespaces of their own to exec into (run the lab as root)")
