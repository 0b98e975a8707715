"""Starting and stopping labs for real: the daemon, its process group, its state dir.

These test the lab, not novadiag. Every test checks that no process of a lab it
started survives.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from novadiag.cli import lab as commands
from novadiag.errors import LabError, ScenarioError
from novadiag.lab import Lab, control

pytestmark = pytest.mark.lab

SMALL_SCENARIO = {
    "scenario.yaml": "name: small\ndescription: one namespace, one web Deployment\n",
    "objects.yaml": textwrap.dedent(
        """\
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
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: demo}
        spec:
          selector: {app: web}
          ports: [{name: http, port: 80, targetPort: http}]
        """
    ),
}


@pytest.fixture(scope="module")
def small_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenario") / "small"
    root.mkdir()
    for name, text in SMALL_SCENARIO.items():
        (root / name).write_text(text)
    return root


@pytest.fixture
def make_lab(tmp_path: Path, small_scenario: Path) -> Iterator[Callable[..., Lab]]:
    """Labs in per-test state dirs; all stopped afterwards, and none may leave a process."""
    made: list[Lab] = []

    def make(name: str = "lab", **options: Any) -> Lab:
        options.setdefault("scenario", str(small_scenario))
        lab = Lab(state_dir=tmp_path / name, **options)
        made.append(lab)
        return lab

    yield make
    groups = []
    for lab in made:
        groups.append(lab._proc.pid if lab._proc is not None else control.read_daemon_pid(lab.state_dir))
        lab.stop()
    for lab in made:
        assert processes_naming(lab.state_dir) == [], f"processes of {lab.state_dir} survived"
    for pgid in groups:
        assert pgid is None or control.group_members(pgid) == [], f"processes of group {pgid} survived"


def ask(address: tuple[str, int], name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), address[0], port=address[1], timeout=2)


def processes_naming(state_dir: Path) -> list[int]:
    """Live processes whose command line names the state dir (the daemon and root-mode pods)."""
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and control.pid_alive(int(p.name))
        and control._names_state_dir(int(p.name), state_dir)
        and int(p.name) != os.getpid()
    ]


def group_of(lab: Lab) -> list[int]:
    return control.group_members(lab.pid)


# -- the happy path ----------------------------------------------------------------------------


def test_lab_starts_serves_and_stops_without_leftovers(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()
    began = time.monotonic()
    with lab:
        took = time.monotonic() - began
        info = json.loads((lab.state_dir / "lab.json").read_text())
        assert info["pid"] == lab.pid and info["mode"] in ("root", "degraded")
        assert lab.api_url.startswith(f"https://127.{info['block']}.0.1:")
        assert Path(lab.kubeconfig).read_text().count(lab.api_url) == 1
        reply = ask(lab.dns_address, "web.demo.svc.cluster.local")
        assert dns.rcode.to_text(reply.rcode()) == "NOERROR" and reply.answer
        status = lab.status()
        assert status["running"] and status["scenario"] == "small"
        assert "pods" in status
        pgid = lab.pid
        assert os.getpgid(lab.pid) == lab.pid  # its own session and process group
    assert not lab.state_dir.exists()
    assert control.group_members(pgid) == []
    assert took < 10, f"lab start took {took:.1f} s"


def test_in_cluster_clients_reach_the_api_server_as_kubernetes_default_svc(make_lab: Callable[..., Lab]) -> None:
    with make_lab() as lab:
        (answer,) = ask(lab.dns_address, "kubernetes.default.svc.cluster.local").answer
        (cluster_ip,) = [rd.to_text() for rd in answer]
        assert cluster_ip == f"127.{lab.info.block}.128.1"
        context = ssl.create_default_context(cafile=lab.info.ca_path)  # hostname checked against the SANs
        token = (lab.state_dir / control.ADMIN_TOKEN).read_text().strip()
        for name in ("kubernetes.default.svc", "kubernetes.default.svc.cluster.local", cluster_ip):
            with socket.create_connection((cluster_ip, 443), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(f"GET /version HTTP/1.1\r\nHost: {name}\r\nAuthorization: Bearer {token}\r\n"
                                "Connection: close\r\n\r\n".encode())
                    reply = b""
                    while chunk := tls.recv(65536):
                        reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["major"] == "1"


def test_root_mode_listens_on_port_53(make_lab: Callable[..., Lab]) -> None:
    if os.geteuid() != 0:
        pytest.skip("root mode needs root")
    with make_lab() as lab:
        assert lab.mode == "root", lab.info.mode_reason
        assert lab.dns_address == (f"127.{lab.info.block}.0.10", 53)


def test_dns_faults_are_set_at_run_time(make_lab: Callable[..., Lab]) -> None:
    with make_lab() as lab:
        assert lab.set_dns_faults(servfail=True)["servfail"] is True
        assert ask(lab.dns_address, "web.demo.svc.cluster.local").rcode() == dns.rcode.SERVFAIL
        lab.set_dns_faults(clear=True)
        assert ask(lab.dns_address, "web.demo.svc.cluster.local").rcode() == dns.rcode.NOERROR


def test_api_faults_are_injected_and_cleared_through_the_admin_endpoint(make_lab: Callable[..., Lab]) -> None:
    import ssl
    import urllib.error
    import urllib.request

    with make_lab() as lab:
        token = (lab.state_dir / control.ADMIN_TOKEN).read_text().strip()
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=lab.info.ca_path)),
        )

        def list_namespaces() -> int:
            request = urllib.request.Request(lab.api_url + "/api/v1/namespaces")
            request.add_header("Authorization", f"Bearer {token}")
            try:
                with opener.open(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        lab.inject_fault(verb="list", resource="namespaces", status=500)
        assert list_namespaces() == 500
        lab.clear_faults()
        assert list_namespaces() == 200


# -- bad input and faults ------------------------------------------------------------------------


def test_a_second_lab_up_on_the_same_state_dir_is_refused(make_lab: Callable[..., Lab]) -> None:
    with make_lab("one") as lab:
        with pytest.raises(LabError, match=r"already running in .*one \(pid \d+\)"):
            make_lab("one").start()
        assert lab.status()["running"]


def test_a_busy_address_block_is_a_clear_error(make_lab: Callable[..., Lab]) -> None:
    with make_lab("a") as lab:
        with pytest.raises(LabError, match=rf"block {lab.info.block}.*used by another lab"):
            make_lab("b", block=lab.info.block).start()


def test_a_bad_scenario_fails_fast_with_the_daemons_reason(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {}\n")
    began = time.monotonic()
    with pytest.raises(LabError, match=r"exited during start-up \(exit 2\).*Service without metadata.name"):
        make_lab(scenario=str(bad), start_timeout=300.0).start()
    # the daemon's exit ends the wait, not the start-up timeout (a bound that holds on a loaded machine too)
    assert time.monotonic() - began < 150


def test_an_unknown_scenario_fails_before_any_process_starts(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'novaa'"):
        Lab("novaa", state_dir=tmp_path / "x").start()
    assert not (tmp_path / "x").exists()


def test_a_daemon_that_is_not_ready_in_time_is_stopped(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(start_timeout=0.05)
    with pytest.raises(LabError, match=r"did not become ready within 0.05 s"):
        lab.start()
    assert processes_naming(lab.state_dir) == []


def test_a_foreign_directory_is_never_used_or_removed(tmp_path: Path, small_scenario: Path) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match="not a lab state dir"):
        Lab(str(small_scenario), state_dir=foreign).start()
    commands.lab_down(str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("mode", "owner", "message"),
    [
        (0o777, None, r"state dir is world-writable \(mode 0777\)"),
        (0o1777, None, r"state dir is world-writable \(mode 1777\)"),
        (0o770, None, r"state dir is group-writable \(mode 0770\)"),
        (0o700, 65534, r"state dir is owned by uid 65534, not by you"),
    ],
)
def test_lab_up_refuses_a_state_dir_others_can_write(
    tmp_path: Path, small_scenario: Path, mode: int, owner: int | None, message: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    if owner is not None:
        os.chown(shared, owner, owner)
    argv = [sys.executable, "-m", "novadiag", "lab", "up", "--scenario", str(small_scenario)]
    argv += ["--state-dir", str(shared)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]) and str(shared) in lines[0], done.stderr
    assert list(shared.iterdir()) == [], "nothing was written into it"
    assert processes_naming(shared) == []


def test_block_locks_are_private_to_their_owner(
    make_lab: Callable[..., Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the daemon puts its lock dir under $TMPDIR: one of this test's own, left world-writable by an older lab
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    locks = tmp_path / "novadiag-lab-blocks"
    locks.mkdir()
    os.chmod(locks, 0o1777)
    lab = make_lab().start()
    lock = locks / f"block-{lab.info.block}.lock"
    assert lock.exists()
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def crash(lab: Lab) -> tuple[int, list[int]]:
    """SIGKILL the daemon only, as a crash would; returns its group and the children it had."""
    pgid = lab.pid
    children = [p for p in group_of(lab) if p != pgid]
    os.kill(lab.pid, signal.SIGKILL)
    if lab._proc is not None:
        lab._proc.wait(timeout=5)
    return pgid, children


def test_lab_down_after_a_crash_cleans_up_everything(make_lab: Callable[..., Lab], capsys: Any) -> None:
    lab = make_lab().start()
    pgid, children = crash(lab)
    assert children
    assert commands.lab_status(str(lab.state_dir)) == 1
    assert "died" in capsys.readouterr().out
    assert commands.lab_down(str(lab.state_dir)) == 0
    assert "was not running" in capsys.readouterr().out
    assert control.group_members(pgid) == []
    assert not lab.state_dir.exists()


@pytest.mark.parametrize("degraded", [False, True], ids=["root", "degraded"])
def test_pods_die_with_a_sigkilled_daemon(make_lab: Callable[..., Lab], degraded: bool) -> None:
    lab = make_lab(degraded=degraded).start()
    recorded = [pid for pid, _ in control.recorded_pids(lab.state_dir)]
    pgid, children = crash(lab)
    assert recorded and children
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(control.pid_alive(p) for p in [*children, *recorded]):
        time.sleep(0.1)
    assert [p for p in [*children, *recorded] if control.pid_alive(p)] == [], "pods outlived their daemon"
    assert control.group_members(pgid) == []
    assert lab.state_dir.exists(), "only lab down removes the state dir"


def test_a_stale_state_dir_is_cleaned_and_the_lab_restarted(make_lab: Callable[..., Lab]) -> None:
    first = make_lab("same").start()
    old_pgid, _ = crash(first)
    second = make_lab("same").start()
    assert any("stale lab" in note for note in second.notes)
    assert control.group_members(old_pgid) == []
    assert second.status()["running"]


def test_degraded_mode_says_so_and_still_cleans_up_after_a_crash(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(degraded=True).start()
    assert lab.mode == "degraded" and lab.info.mode_reason == "degraded mode requested"
    assert lab.dns_address[1] != 53
    assert ask(lab.dns_address, "web.demo.svc.cluster.local").answer
    recorded = [pid for pid, _ in control.recorded_pids(lab.state_dir)]
    pgid, _ = crash(lab)
    survivors = [p for p in recorded if control.pid_alive(p)]
    commands.lab_down(str(lab.state_dir))
    assert all(not control.pid_alive(p) for p in survivors)
    assert control.group_members(pgid) == []


def test_a_daemon_whose_state_dir_is_removed_stops_itself(make_lab: Callable[..., Lab]) -> None:
    import shutil

    lab = make_lab().start()
    pid = lab.pid
    shutil.rmtree(lab.state_dir)
    assert lab._proc is not None
    assert lab._proc.wait(timeout=10) == 0
    assert control.group_members(pid) == []


# -- the CLI functions ---------------------------------------------------------------------------


def test_cli_functions_up_status_down(tmp_path: Path, small_scenario: Path, capsys: Any) -> None:
    state = str(tmp_path / "cli")
    assert commands.lab_up(str(small_scenario), state) == 0
    try:
        out = capsys.readouterr().out
        assert f"export KUBECONFIG={state}/kubeconfig" in out
        assert f"kubeconfig   {state}/kubeconfig" in out
        assert commands.lab_status(state) == 0
        assert 'lab "small" running' in capsys.readouterr().out
    finally:
        pgid = control.read_daemon_pid(Path(state))
        assert commands.lab_down(state) == 0
    assert "stopped" in capsys.readouterr().out
    assert pgid is not None and control.group_members(pgid) == []
    assert commands.lab_status(state) == 1
    assert commands.lab_down(state) == 0  # nothing left: still fine


def test_lab_scenarios_lists_every_bundled_scenario(capsys: Any) -> None:
    assert commands.lab_scenarios() == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == sorted(names)
    assert {"nova", "generated"} <= set(names)


def test_nova_lab_up_prints_the_kubeconfig(tmp_path: Path) -> None:
    """``lab up`` returns once the lab serves; how long it takes is measured by benchmarks/, not asserted."""
    argv = [
        sys.executable,
        "-c",
        f"from novadiag.cli.lab import lab_up; raise SystemExit(lab_up('nova', {str(tmp_path / 'nova')!r}))",
    ]
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    took = time.monotonic() - began
    try:
        assert done.returncode == 0, done.stderr
    finally:
        commands.lab_down(str(tmp_path / "nova"))
    print(f"novadiag lab up --scenario nova: {took:.2f} s\n{done.stdout}")
    assert "export KUBECONFIG=" in done.stdout


def test_a_lab_stops_when_the_process_that_started_it_is_killed(tmp_path: Path, small_scenario: Path) -> None:
    """A test run or notebook kernel killed with SIGKILL never reaches ``Lab.stop``; its lab must not linger."""
    state = tmp_path / "owned"
    program = textwrap.dedent(
        f"""
        import os
        from novadiag.lab import Lab
        lab = Lab({str(small_scenario)!r}, state_dir={str(state)!r}).start()
        print(lab.info.pid, flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    daemon = int(done.stdout.strip())
    deadline = time.monotonic() + 15
    while (control.group_members(daemon) or state.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert control.group_members(daemon) == [], "the daemon and its pods stopped"
    assert not state.exists(), "the state dir was removed"


def test_lab_up_outlives_the_command(tmp_path: Path, small_scenario: Path) -> None:
    state = tmp_path / "up"
    up = f"lab_up({str(small_scenario)!r}, {str(state)!r})"
    program = f"from novadiag.cli.lab import lab_up; raise SystemExit({up})"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    try:
        assert done.returncode == 0, done.stderr
        time.sleep(2.5)  # more than the daemon's 1 s owner check, twice
        assert commands.lab_status(str(state)) == 0
    finally:
        assert commands.lab_down(str(state)) == 0
