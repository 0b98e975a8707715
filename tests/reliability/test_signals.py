"""Ctrl-C and other stop signals at every stage of ``novadiag audit``: exit 130, one line, nothing left.

Each test runs the real command in a child process against the shared lab,
holds it at one stage with an injected delay, sends the signal once the lab
has seen the request of that stage, and then lists what novadiag left in the
cluster: nothing, ever — including a probe pod whose create request was cut
off mid-flight and a second signal sent while cleanup runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable

import pytest
from reliability_support import REPO, cli_env, leftovers, metrics, reset_metrics, run_cli

from novadiag.lab import Lab

pytestmark = pytest.mark.lab

Ready = Callable[[Lab], bool]


def seen(request: str) -> Ready:
    return lambda lab: metrics(lab).get(request, 0) > 0


def probe_pods_exist(lab: Lab) -> bool:
    return any(item.startswith("Pod ") for item in leftovers(lab.kubeconfig))


def interrupt(
    lab: Lab, ready: Ready, signum: int, *, again_when: Ready | None = None, options: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    """Run an audit, send ``signum`` once ``ready``, (again once ``again_when``), and wait for it."""
    reset_metrics(lab)
    child = subprocess.Popen(
        [sys.executable, "-m", "novadiag", "audit", "--kubeconfig", lab.kubeconfig, "--format", "json", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )
    try:
        for condition in (ready, again_when):
            if condition is None:
                continue
            deadline = time.monotonic() + 30
            while not condition(lab):
                assert child.poll() is None, f"the audit ended before the stage: {child.communicate()}"
                assert time.monotonic() < deadline, "the stage was never reached"
                time.sleep(0.05)
            child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return child.returncode, out, err


def assert_interrupted(lab: Lab, result: tuple[int, str, str], *, late_writes: float = 0.0) -> None:
    """Exit 130 with one line, no report, and nothing left — also after writes still in flight land."""
    code, out, err = result
    time.sleep(late_writes)
    assert code == 130, err
    assert err.splitlines()[-1] == "novadiag: interrupted"
    assert "Traceback" not in err
    assert out == "", "no partial report that could pass for a complete one"
    assert leftovers(lab.kubeconfig) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_while_listing_the_cluster(lab, signum):
    lab.inject_fault(verb="list", resource="configmaps", latency_ms=5000, times=1)
    assert_interrupted(lab, interrupt(lab, seen("list configmaps"), signum))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_while_a_probe_pod_create_is_in_flight(lab, signum):
    # The server writes the pod 1.5 s after the client gave up on the request.
    lab.inject_fault(verb="create", resource="pods", latency_ms=1500, times=1)
    assert_interrupted(lab, interrupt(lab, seen("create pods"), signum), late_writes=2.0)


@pytest.mark.parametrize(
    "signum",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1"],
)
def test_while_waiting_for_probe_pods(lab, signum):
    lab.set_dns_faults(delay_ms=800)  # probe pods take seconds to answer
    assert_interrupted(lab, interrupt(lab, probe_pods_exist, signum))


def test_while_reading_a_probe_log(lab):
    lab.inject_fault(verb="get", resource="pods/log", latency_ms=5000, times=1)
    assert_interrupted(lab, interrupt(lab, seen("get pods/log"), signal.SIGINT))


def test_a_second_signal_during_cleanup_does_not_strand_pods(lab):
    lab.set_dns_faults(delay_ms=800)
    lab.inject_fault(verb="delete", resource="pods", latency_ms=700)
    result = interrupt(lab, probe_pods_exist, signal.SIGINT, again_when=seen("delete pods"))
    assert_interrupted(lab, result)


def _cleanup_after(lab: Lab) -> None:
    lab.clear_faults()
    assert run_cli("cleanup", "--kubeconfig", lab.kubeconfig).code == 0
    assert leftovers(lab.kubeconfig) == []


def test_pods_that_cannot_be_deleted_are_named_with_the_way_out(lab):
    """A cleanup the API server refuses: the run still ends, and stderr says what is left and what to run."""
    lab.inject_fault(verb="delete", resource="pods", status=500, message="etcdserver: request timed out")
    try:
        done = run_cli("audit", "--kubeconfig", lab.kubeconfig, "--format", "json", "--request-timeout", "2")
        warning = [line for line in done.err.splitlines() if line.startswith("novadiag: warning: ")]
        assert len(warning) == 1, done.err
        assert "probe object(s) could not be deleted (Pod " in warning[0]
        assert warning[0].endswith("run 'novadiag cleanup'")
        assert json.loads(done.out)["probes"]["leftovers"]
        assert any(item.startswith("Pod ") for item in leftovers(lab.kubeconfig))
    finally:
        _cleanup_after(lab)


def test_an_interrupt_with_a_stalled_api_server_ends_within_the_cleanup_deadline(lab):
    """Deletes that hang: Ctrl-C still returns in seconds (not minutes) and names what is left."""
    lab.inject_fault(verb="delete", resource="pods", latency_ms=60_000)
    started = time.monotonic()
    try:
        code, _, err = interrupt(lab, probe_pods_exist, signal.SIGINT, options=("--request-timeout", "2"))
    finally:
        _cleanup_after(lab)
    took = time.monotonic() - started
    assert code == 130, err
    last = err.splitlines()[-1]
    assert last.startswith("novadiag: interrupted; ") and last.endswith("run 'novadiag cleanup'"), err
    assert "not deleted within 10s" in last
    # start-up, probe pods and 10 s of cleanup; without the deadline, 8 sequential deletes retried
    # for 12 s each took over two minutes
    assert took < 45, f"the run took {took:.1f} s: {err}"


def test_an_interrupt_does_not_wait_for_a_list_request_still_on_the_wire(lab):
    """A list the API server answers in 20 s: Ctrl-C returns now, not when the answer comes."""
    lab.inject_fault(verb="list", resource="pods", latency_ms=20_000)
    started = time.monotonic()
    code, out, err = interrupt(lab, seen("list pods"), signal.SIGINT)
    assert time.monotonic() - started < 15, err
    assert code == 130 and err.splitlines()[-1] == "novadiag: interrupted" and out == ""


def test_a_closed_terminal_cleans_up_like_ctrl_c(lab):
    """Closing the terminal (its master side) hangs it up: the kernel sends SIGHUP to the session's leader.

    The audit runs in a session of its own with a pseudo-terminal as its
    controlling terminal and as stdin, stdout and stderr, as in a shell; its
    messages have nowhere to go once the terminal is gone, so the test checks
    the exit code and the cluster.
    """
    lab.set_dns_faults(delay_ms=800)  # probe pods take seconds to answer
    reset_metrics(lab)
    master, terminal = os.openpty()

    def take_the_terminal() -> None:  # runs in the child: a new session, this pty its controlling terminal
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)

    child = subprocess.Popen(
        [sys.executable, "-m", "novadiag", "audit", "--kubeconfig", lab.kubeconfig, "--format", "json"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=cli_env(),
        cwd=REPO,
        preexec_fn=take_the_terminal,
    )
    os.close(terminal)
    try:
        deadline = time.monotonic() + 30
        while not probe_pods_exist(lab):
            assert child.poll() is None, "the audit ended before its probe pods were created"
            assert time.monotonic() < deadline, "no probe pod was ever created"
            _drain(master)
            time.sleep(0.05)
        os.close(master)  # the terminal window closes
        code = child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 130, f"exit {code}: the hangup did not unwind through the cleanup"
    assert leftovers(lab.kubeconfig) == []


def _drain(master: int) -> None:
    """Read what the audit wrote to its terminal, so it never blocks on a full one."""
    while select.select([master], [], [], 0)[0]:
        try:
            if not os.read(master, 65536):
                return
        except OSError:
            return


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.2, 0.3, 0.5])
def test_ctrl_c_while_starting_up_is_an_interrupt_not_a_traceback(lab, delay):
    """Ctrl-C in the first half second (importing, parsing options, loading the kubeconfig)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "novadiag", "audit", "--kubeconfig", lab.kubeconfig, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )
    try:
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "Traceback" not in err, err
    assert child.returncode == 130, err
    assert err.splitlines() == ["novadiag: interrupted"]
    assert out == ""
    assert leftovers(lab.kubeconfig) == []
