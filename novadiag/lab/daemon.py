"""The lab daemon: one process that is the whole emulated cluster.

``python -m novadiag.lab.daemon --state-dir DIR --scenario NAME`` runs, in
threads of one process, the Store, the cluster DNS, the API server and the
kubelet (whose pods are child processes in this process's group), and stays in
the foreground until SIGTERM/SIGINT. :class:`novadiag.lab.Lab` and ``novadiag lab
up`` spawn it in a new session and wait for ``lab.json``, which is written last:
its presence means the lab is ready.

Start-up order, chosen for speed (``lab up`` must take well under 5 s): pick an
address block, bind the DNS (its bind on ``127.N.0.10:53`` doubles as the proof
that the block is free), load the scenario through admission as a client's
``create`` would, start the kubelet so pods boot while the API server makes its
certificate, start the API server, write the kubeconfig, wait for the initial
pods to settle, write ``lab.json``.

Root mode needs uid 0, port 53 and ``unshare --mount`` (pods get a private
``/etc/resolv.conf``); anything less is *degraded* mode, said in ``lab.json``
with the reason, and the DNS listens on a high port.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, Protocol

from novadiag.errors import LabError, NovadiagError, ScenarioError
from novadiag.lab import control
from novadiag.lab.admission import admit
from novadiag.lab.apiserver import ApiServer
from novadiag.lab.dns import LabDns
from novadiag.lab.firewall import PolicyFirewall, remove_stale_tables
from novadiag.lab.kubeconfig import write_kubeconfig
from novadiag.lab.kubelet import Kubelet
from novadiag.lab.network import LabNetwork
from novadiag.lab.reaper import DeathWatch
from novadiag.lab.scenario import Scenario, load_scenario
from novadiag.lab.store import Store, StoreError

log = logging.getLogger("novadiag.lab.daemon")

SETTLE_TIMEOUT = 10.0
Mode = Literal["root", "degraded"]
STATUS_KINDS = ("Namespace", "Service", "EndpointSlice", "Deployment", "StatefulSet", "DaemonSet", "Job", "Pod")
LOCK_DIR = Path(tempfile.gettempdir()) / "novadiag-lab-blocks"


class _Component(Protocol):
    def stop(self) -> None: ...


# -- address blocks --------------------------------------------------------------------------


def private_lock_dir() -> Path | None:
    """``LOCK_DIR``, made 0700 and checked to be our own directory; None when it cannot be.

    A world-writable lock dir lets anyone hold every block's lock (no lab could
    start) or plant a symlink for a lock file; labs of one user need no more than
    their own access to it.
    """
    try:
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(LOCK_DIR)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return None
        if st.st_mode & 0o077:
            os.chmod(LOCK_DIR, 0o700)
    except OSError:
        return None
    return LOCK_DIR


class BlockLease:
    """An exclusive claim on ``127.N.0.0/16`` for this daemon's lifetime (a flock)."""

    def __init__(self, block: int) -> None:
        self.block = block
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        lock_dir = private_lock_dir()
        if lock_dir is None:
            return True  # no private lock dir: the DNS bind alone guards the block
        try:
            fd = os.open(lock_dir / f"block-{self.block}.lock",
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return True
        handle = os.fdopen(fd, "ab")
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)  # a lock file left by an older lab may be wider
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def block_in_use(block: int) -> bool:
    """Whether a running lab holds ``block`` (True when that cannot be told: leave its things alone)."""
    if private_lock_dir() is None:
        return True
    lease = BlockLease(block)
    if not lease.acquire():
        return True
    lease.release()
    return False


def unshare_works() -> str | None:
    """None when ``unshare --mount`` works here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    try:
        done = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --mount failed: {exc}"
    if done.returncode != 0:
        return f"unshare --mount failed: {done.stderr.decode(errors='replace').strip()}"
    return None


def root_mode_problem(*, degraded: bool) -> str | None:
    """None when root mode is possible, else why the lab runs degraded."""
    if degraded:
        return "degraded mode requested"
    if os.geteuid() != 0:
        return "not running as root"
    return unshare_works()


def claim_block(
    store: Store, scenario: Scenario, cluster_domain: str, wanted: int | None, degraded_reason: str | None
) -> tuple[BlockLease, LabDns, Mode, str]:
    """A free block with its DNS listening: (lease, dns, mode, mode_reason)."""
    candidates = [wanted] if wanted is not None else list(range(1, 255))
    for block in candidates:
        lease = BlockLease(block)
        if not lease.acquire():
            continue
        port = 53 if degraded_reason is None else 0
        dns = _dns_server(store, scenario, cluster_domain, LabNetwork(block).dns_ip, port)
        try:
            dns.start()
        except OSError as exc:
            lease.release()
            if exc.errno == errno.EACCES and port == 53:
                return claim_block(store, scenario, cluster_domain, wanted, "cannot bind port 53")
            if wanted is not None:
                raise LabError(
                    f"block {block}: cannot bind the cluster DNS on {dns.address[0]}:{port}: "
                    f"{exc.strerror} (another lab or DNS server uses it)"
                ) from exc
            continue
        mode: Mode = "root" if degraded_reason is None else "degraded"
        return lease, dns, mode, degraded_reason or ""
    if wanted is not None:
        raise LabError(f"address block {wanted} (127.{wanted}.0.0/16) is used by another lab")
    raise LabError("no free address block 127.N.0.0/16 left for a lab (254 labs running?)")


def _dns_server(store: Store, scenario: Scenario, cluster_domain: str, ip: str, port: int) -> LabDns:
    return LabDns(
        store,
        address=(ip, port),
        cluster_domain=cluster_domain,
        extra_records=scenario.dns.records,
        rewrites=scenario.dns.rewrites,
    )


# -- the daemon ------------------------------------------------------------------------------


def load_objects(store: Store, network: LabNetwork, scenario: Scenario) -> int:
    """Create the scenario's objects through admission, Namespaces first."""
    ordered = sorted(scenario.objects, key=lambda o: o.get("kind") != "Namespace")
    for obj in ordered:
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')} {meta.get('namespace') or ''}/{meta.get('name')}".replace(" /", " ")
        try:
            store.create(admit(json.loads(json.dumps(obj)), network=network, store=store))
        except (StoreError, ValueError) as exc:
            raise ScenarioError(f"scenario {scenario.name}: {where}: {exc}") from exc
    return len(ordered)


class LabDaemon:
    """The components of one lab and their start/stop order."""

    def __init__(
        self,
        state_dir: Path,
        *,
        scenario: str,
        cluster_domain: str = "cluster.local",
        block: int | None = None,
        degraded: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.degraded = degraded
        self.scenario_name = scenario
        self.cluster_domain = cluster_domain.strip(".")
        self.wanted_block = block
        self.store = Store()
        self.stopping = threading.Event()
        self._stack: list[_Component] = []
        self._lease: BlockLease | None = None
        self.dns: LabDns | None = None
        self.admin_token = secrets.token_urlsafe(32)
        self._control: ControlServer | None = None
        self.firewall: PolicyFirewall | None = None

    def start(self) -> dict[str, Any]:
        started = time.time()
        scenario = load_scenario(self.scenario_name)
        self._lease, self.dns, mode, reason = claim_block(
            self.store, scenario, self.cluster_domain, self.wanted_block, root_mode_problem(degraded=self.degraded)
        )
        self._stack.append(self.dns)
        network = LabNetwork(self._lease.block)
        log.info("block %d, mode %s%s", network.block, mode, f" ({reason})" if reason else "")
        count = load_objects(self.store, network, scenario)
        log.info("scenario %s: %d objects loaded", scenario.name, count)
        self._check_stop()
        kubelet, api = self._start_cluster(network, scenario, mode)
        info = self._write_access(network, scenario, mode, reason, api, started)
        log.info("API server on %s after %.2f s", api.url, time.time() - started)
        self._wait_settled(kubelet)
        if self.firewall is not None and self.firewall.enforcing and not self.firewall.wait_synced(SETTLE_TIMEOUT):
            log.warning("NetworkPolicy rules for the initial pods were not programmed within %.0f s",
                        SETTLE_TIMEOUT)
        log.info("initial pods settled after %.2f s", time.time() - started)
        self._check_stop()
        _write_json(self.state_dir / control.LAB_JSON, info)
        log.info("lab ready in %.2f s: %s", time.time() - started, info["api_url"])
        return info

    def _start_cluster(self, network: LabNetwork, scenario: Scenario, mode: Mode) -> tuple[Any, Any]:
        assert self.dns is not None
        if scenario.network_policies == "enforce":
            self._start_firewall(network)
        else:
            log.info("NetworkPolicies are not enforced: scenario %s sets network_policies: %s",
                     scenario.name, scenario.network_policies)
        kubelet = Kubelet(
            self.store,
            network=network,
            state_dir=self.state_dir,
            dns_address=self.dns.address,
            cluster_domain=self.cluster_domain,
            mode=mode,
            scenario=scenario,
            network_plugin=self.firewall.pod_starting if self.firewall is not None else None,
        )
        kubelet.start()
        self._stack.append(kubelet)
        api = ApiServer(
            self.store,
            network=network,
            pki_dir=self.state_dir / "pki",
            admin_token=self.admin_token,
            rbac=scenario.rbac,
            faults=list(scenario.faults),
            log_provider=kubelet.read_log,
            container_exec=kubelet if hasattr(kubelet, "start_exec") else None,
            cluster_domain=self.cluster_domain,
        )
        api.start()
        self._stack.append(api)
        return kubelet, api

    def _start_firewall(self, network: LabNetwork) -> None:
        """Enforce NetworkPolicies with nftables when it can (root, nft installed); say so either way."""
        removed = remove_stale_tables(lambda block: block == network.block or block_in_use(block))
        if removed:
            log.info("removed nftables tables of labs that are gone: %s", ", ".join(removed))
        self.firewall = PolicyFirewall(self.store, block=network.block, state_dir=self.state_dir)
        self.firewall.start()
        self._stack.append(self.firewall)

    def _write_access(
        self, network: LabNetwork, scenario: Scenario, mode: str, reason: str, api: Any, started: float
    ) -> dict[str, Any]:
        assert self.dns is not None
        kubeconfig = self.state_dir / "kubeconfig"
        ca_pem = Path(api.ca_path).read_bytes()
        write_kubeconfig(kubeconfig, server_url=api.url, ca_pem=ca_pem, token=self.admin_token, scenario=scenario.name)
        _write_secret(self.state_dir / control.ADMIN_TOKEN, self.admin_token)
        socket_path = control.control_socket_path(self.state_dir)
        self._control = ControlServer(socket_path, self)
        self._control.start()
        return {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "block": network.block,
            "api_url": api.url,
            "ca_path": str(api.ca_path),
            "dns_ip": self.dns.address[0],
            "dns_port": self.dns.address[1],
            "mode": mode,
            "mode_reason": reason,
            "scenario": scenario.name,
            "scenario_path": str(scenario.path),
            "kubeconfig": str(kubeconfig),
            "cluster_domain": self.cluster_domain,
            "network_policies": self._enforcement(),
            "control_socket": socket_path,
            "started": started,
        }

    def _enforcement(self) -> str:
        """``enforced`` or ``not enforced: <why>``, for ``lab.json``."""
        if self.firewall is None:
            return "not enforced: the scenario sets network_policies: store"
        if self.firewall.problem is not None:
            return f"not enforced: {self.firewall.problem}"
        return "enforced"

    def _wait_settled(self, kubelet: Any) -> None:
        """Wait for the initial pods, in short slices so that a stop request is not kept waiting."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not kubelet.wait_ready(0.1):
            self._check_stop()
            if time.monotonic() > deadline:
                log.warning("initial pods did not settle within %.0f s", SETTLE_TIMEOUT)
                return

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise LabError("stopped during start-up")

    def status(self) -> dict[str, Any]:
        """Pods by phase (and crash-looping containers), DNS counters and faults."""
        pods, _ = self.store.list("Pod")
        phases = Counter(str((p.get("status") or {}).get("phase") or "Unknown") for p in pods)
        waiting = Counter(
            str(((cs.get("state") or {}).get("waiting") or {}).get("reason"))
            for p in pods
            for cs in (p.get("status") or {}).get("containerStatuses") or ()
            if (cs.get("state") or {}).get("waiting")
        )
        return {
            "pods": dict(sorted(phases.items())),
            "waiting": dict(sorted(waiting.items())),
            "objects": {kind: len(self.store.list(kind)[0]) for kind in STATUS_KINDS},
            "dns_queries": self.dns.metrics() if self.dns else {},
            "dns_faults": self.dns.faults.to_dict() if self.dns else {},
        }

    def shutdown(self) -> None:
        """Stop everything started, newest first; each failure is logged, none stops the rest."""
        if self._control is not None:
            self._control.stop()
        for component in reversed(self._stack):
            try:
                component.stop()
            except Exception:
                log.exception("stopping %s failed", type(component).__name__)
        self._stack.clear()
        if self._lease is not None:
            self._lease.release()
        for name in (control.LAB_JSON, control.DAEMON_PID):
            with contextlib.suppress(OSError):
                (self.state_dir / name).unlink()
        log.info("lab stopped")


class ControlServer:
    """The daemon's AF_UNIX control socket: one JSON request per connection."""

    def __init__(self, path: str, daemon: LabDaemon) -> None:
        self.path = path
        self._daemon = daemon
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="lab-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if self._thread is not None:
            self._thread.join(timeout=2)
        if sock is not None:
            sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(self._answer(_read_line(conn))).encode() + b"\n")

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "status":
                return self._daemon.status()
            if op == "dns-faults":
                return self._dns_faults(request)
            return {"error": f"unknown op {op!r}"}
        except (ValueError, TypeError, AttributeError) as exc:
            return {"error": f"bad request: {exc}"}

    def _dns_faults(self, request: dict[str, Any]) -> dict[str, Any]:
        dns = self._daemon.dns
        if dns is None:
            return {"error": "DNS is not running"}
        if request.get("clear"):
            dns.clear_faults()
        fields = {k: request[k] for k in ("servfail", "drop_udp", "truncate_udp", "delay_ms") if k in request}
        return {"dns_faults": dns.set_faults(**fields).to_dict()}


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


# -- entry point -----------------------------------------------------------------------------


def _setup_logging(state_dir: Path) -> None:
    handler = logging.FileHandler(state_dir / control.DAEMON_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m novadiag.lab.daemon", description="Run one lab in the foreground.")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--scenario", default="nova")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--block", type=int, default=None, help="address block N of 127.N.0.0/16 (1-254)")
    parser.add_argument(
        "--mode",
        choices=("auto", "degraded"),
        default="auto",
        help="auto: root mode when possible; degraded: never use namespaces or port 53",
    )
    parser.add_argument(
        "--owner-pid",
        type=int,
        default=None,
        help="stop, and remove the state dir, once this process is gone",
    )
    args = parser.parse_args(argv)
    if args.block is not None and not 1 <= args.block <= 254:
        parser.error("--block must be between 1 and 254")
    return args


SWITCH_INTERVAL = 0.0005
"""Seconds a daemon thread may hold the GIL while another waits (CPython's default is 0.005).

The DNS server and kube-proxy threads make a system call per packet, and each call
gives the GIL away: while API handlers are busy, getting it back can cost the whole
interval, packet after packet. With 500 probe pods (benchmark M) their lookups timed out
at 5 ms and all agreed with the model at 0.5 ms, at a small cost in switches."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL)
    state_dir = Path(args.state_dir).expanduser().absolute()
    try:
        control.prepare_state_dir(state_dir)
    except LabError as exc:
        print(f"{control.FATAL_PREFIX}{exc}", file=sys.stderr, flush=True)
        return 2
    (state_dir / control.DAEMON_PID).write_text(f"{os.getpid()}\n")
    watch = DeathWatch(state_dir)  # kills the pods should this process die without dismissing it
    try:
        return _serve(args, state_dir)
    finally:
        watch.dismiss()


def _serve(args: argparse.Namespace, state_dir: Path) -> int:
    """Run the lab until asked to stop; the exit code of the daemon."""
    os.environ[control.STATE_ENV] = str(state_dir)
    _setup_logging(state_dir)
    daemon = LabDaemon(
        state_dir,
        scenario=args.scenario,
        cluster_domain=args.cluster_domain,
        block=args.block,
        degraded=args.mode == "degraded",
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        daemon.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        daemon.start()
    except Exception as exc:  # every failure becomes one line for `lab up`, and a clean exit
        log.error("lab start failed: %s", exc, exc_info=not isinstance(exc, NovadiagError))
        print(f"{control.FATAL_PREFIX}{exc}", file=sys.stderr, flush=True)
        daemon.shutdown()
        return 2
    owner = _Owner(args.owner_pid) if args.owner_pid else None
    orphaned = False
    while not daemon.stopping.wait(1.0):
        if control.read_daemon_pid(state_dir) != os.getpid():
            # the state dir was removed or taken over: nobody could find or stop us any more
            log.warning("%s no longer names this daemon: stopping", state_dir / control.DAEMON_PID)
            break
        if owner is not None and owner.gone():
            log.warning("owner process %d is gone: stopping and removing %s", owner.pid, state_dir)
            orphaned = True
            break
    daemon.shutdown()
    if orphaned:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


class _Owner:
    """The process a lab belongs to, known by pid and start time (a reused pid is not it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._started = control.process_start(pid)

    def gone(self) -> bool:
        started = control.process_start(self.pid)
        return started is None or started != self._started


if __name__ == "__main__":
    raise SystemExit(main())
