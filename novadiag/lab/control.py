"""Starting, finding and stopping a lab daemon from another process.

A lab lives in a *state dir* and in one process group. The daemon
(``python -m novadiag.lab.daemon``) is spawned as a new session, so its pid is
also the pgid of everything it starts. ``lab down`` asks the daemon to stop
(SIGTERM: it stops the kubelet, which kills its pods, then its servers), waits,
then SIGKILLs whatever is left of the group and whatever the kubelet recorded
under ``pids/`` (degraded-mode pods run in process groups of their own), so no
process outlives the lab even when the daemon itself crashed.

The state dir is the only shared truth between ``lab up``, ``lab status`` and
``lab down`` (which may be three different processes):

- ``.novadiag-lab``  marker: only a directory carrying it is ever deleted
- ``daemon.pid``     written by the daemon first thing (a second ``lab up`` sees it)
- ``lab.json``       written by the daemon last, when the lab is ready
- ``daemon.log``     the daemon's log (and its stderr)
- ``control.sock``   the daemon's control socket (status, DNS faults), 0600
- ``admin.token``    the API server's admin token, 0600

pids are checked before they are signalled (pid reuse after a crash): a pid is
ours when it is in the recorded process group, when its command line or
environment names the state dir, or when it started before its pid file was
written (a reused pid starts later).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novadiag.errors import LabError

MARKER = ".novadiag-lab"
LAB_JSON = "lab.json"
DAEMON_PID = "daemon.pid"
DAEMON_LOG = "daemon.log"
PIDS_DIR = "pids"
ADMIN_TOKEN = "admin.token"
CONTROL_SOCKET = "control.sock"
STATE_ENV = "NOVADIAG_LAB_STATE_DIR"
START_TIMEOUT = 15.0
STOP_GRACE = 5.0
POLL = 0.02
FATAL_PREFIX = "novadiag lab: error: "
"""How the daemon's last stderr line starts when it cannot start; ``lab up`` shows the rest."""

_spawned: dict[int, subprocess.Popen[bytes]] = {}
"""Daemons this process spawned, so that whoever stops one also reaps it (no zombie)."""


def default_state_dir() -> Path:
    """``$XDG_CACHE_HOME/novadiag/lab/default`` (``~/.cache/...``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "novadiag" / "lab" / "default"


def resolve_state_dir(state_dir: str | os.PathLike[str] | None) -> Path:
    return Path(state_dir).expanduser().absolute() if state_dir else default_state_dir()


@dataclass(frozen=True)
class LabInfo:
    """What the daemon wrote to ``lab.json`` when it became ready."""

    state_dir: Path
    pid: int
    block: int
    api_url: str
    dns_ip: str
    dns_port: int
    mode: str
    mode_reason: str
    scenario: str
    kubeconfig: str
    cluster_domain: str
    started: float
    control_socket: str
    ca_path: str

    @property
    def dns_address(self) -> tuple[str, int]:
        return (self.dns_ip, self.dns_port)


def read_info(state_dir: Path) -> LabInfo | None:
    """The ready lab's ``lab.json``, or None when there is none (yet)."""
    try:
        raw = json.loads((state_dir / LAB_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        return LabInfo(
            state_dir=state_dir,
            pid=int(raw["pid"]),
            block=int(raw["block"]),
            api_url=str(raw["api_url"]),
            dns_ip=str(raw["dns_ip"]),
            dns_port=int(raw["dns_port"]),
            mode=str(raw["mode"]),
            mode_reason=str(raw.get("mode_reason") or ""),
            scenario=str(raw["scenario"]),
            kubeconfig=str(raw["kubeconfig"]),
            cluster_domain=str(raw["cluster_domain"]),
            started=float(raw["started"]),
            control_socket=str(raw.get("control_socket") or state_dir / CONTROL_SOCKET),
            ca_path=str(raw.get("ca_path") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None


def read_daemon_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / DAEMON_PID).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# -- processes -----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` fields after the command name (state is [0], pgid is [2])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def pid_alive(pid: int) -> bool:
    """Running (a zombie has exited: it only waits for its parent to reap it)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def process_start(pid: int) -> float | None:
    """When a live process started (None when it is gone): with the pid, an identity pid reuse cannot fake."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return _start_time(fields)


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] not in ("Z", "X") and fields[2] == str(pgid):
                members.append(int(entry.name))
    return members


def _names_state_dir(pid: int, state_dir: Path) -> bool:
    needle = str(state_dir).encode()
    for part in ("cmdline", "environ"):
        try:
            if needle in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
        except OSError:
            continue
    return False


def is_lab_daemon(pid: int, state_dir: Path) -> bool:
    """That pid is alive and is the daemon of this state dir (not a reused pid)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"novadiag.lab.daemon" in cmdline and str(state_dir).encode() in cmdline


def recorded_pids(state_dir: Path) -> list[tuple[int, Path]]:
    """pids the lab recorded under ``pids/`` (one pid per file, first token), with their file."""
    found = []
    with contextlib.suppress(OSError):
        for entry in (state_dir / PIDS_DIR).iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                found.append((int(entry.read_text().split()[0]), entry))
    return found


def _start_time(fields: list[str]) -> float | None:
    """A process's start as a Unix time, from its stat fields and the boot time."""
    try:
        ticks = int(fields[19])
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return None


def _ours(pid: int, pgid: int | None, state_dir: Path, pid_file: Path | None = None) -> bool:
    """Alive and provably this lab's: its group, its command line or environment, or
    (for a recorded pid) started before its pid file was written — a reused pid starts later."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if (pgid is not None and fields[2] == str(pgid)) or _names_state_dir(pid, state_dir):
        return True
    if pid_file is None:
        return False
    started = _start_time(fields)
    try:
        written = pid_file.stat().st_mtime
    except OSError:
        return False
    return started is not None and started <= written + 1.0


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not check():
            return True
        time.sleep(POLL)
    return not check()


def leftovers(state_dir: Path, pgid: int | None, *, recorded: bool = True) -> list[int]:
    """Processes of this lab still alive: its group, and (``recorded``) pids under ``pids/`` that are ours."""
    pids = set(group_members(pgid)) if pgid is not None and not _group_reused(pgid, state_dir) else set()
    if recorded:
        for pid, pid_file in recorded_pids(state_dir):
            if _ours(pid, pgid, state_dir, pid_file):
                pids.add(pid)
                fields = _stat_fields(pid)
                if fields is not None and fields[2] == str(pid):  # it leads its own group
                    pids.update(group_members(pid))
    pids.discard(os.getpid())
    return sorted(pids)


def _group_reused(pgid: int, state_dir: Path) -> bool:
    """The group's leader pid now belongs to something else (so the pgid is not ours)."""
    return pid_alive(pgid) and not is_lab_daemon(pgid, state_dir)


# -- spawning and waiting ------------------------------------------------------------------


def check_state_dir_private(state_dir: Path) -> None:
    """Refuse a state dir that someone else owns or may write to (a missing one is fine).

    The daemon runs each pod from the launch plan it wrote there, as root: whoever
    can write the directory can swap a plan between writing and running and have
    their own command run as root. Its ``pids/`` files also name processes that
    ``lab down`` kills.
    """
    try:
        st = state_dir.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LabError(f"{state_dir}: cannot use the state dir: {exc.strerror or exc}") from exc
    me = os.geteuid()
    if st.st_uid != me:
        raise LabError(f"{state_dir}: state dir is owned by uid {st.st_uid}, not by you (uid {me}); "
                       "choose a directory of your own for --state-dir")
    if st.st_mode & 0o022:
        who = "world" if st.st_mode & 0o002 else "group"
        raise LabError(f"{state_dir}: state dir is {who}-writable (mode {st.st_mode & 0o7777:04o}) and the lab "
                       "runs pods from it as root; run chmod go-w on it or choose another --state-dir")


def prepare_state_dir(state_dir: Path, *, fresh: bool = False) -> None:
    """Create the state dir (0700) with its marker; refuse a foreign non-empty or a shared directory.

    ``fresh`` first empties a lab state dir left by an earlier run (the caller has
    made sure no daemon owns it), so no old pod directory or log is mistaken for new.
    """
    check_state_dir_private(state_dir)
    if state_dir.exists():
        if not state_dir.is_dir():
            raise LabError(f"{state_dir}: state dir is not a directory")
        if any(state_dir.iterdir()) and not (state_dir / MARKER).exists():
            raise LabError(f"{state_dir}: not empty and not a lab state dir; choose another --state-dir")
        if fresh:
            remove_state_dir(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (state_dir / MARKER).write_text("novadiag lab state dir; removed by `novadiag lab down`\n")


def spawn_daemon(
    state_dir: Path,
    *,
    scenario: str,
    cluster_domain: str,
    block: int | None,
    degraded: bool = False,
    owner: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start the daemon in its own session, its output appended to ``daemon.log``.

    With ``owner`` (a pid), the daemon stops and removes its state dir once that
    process is gone, however it ended: a SIGKILLed test run or notebook kernel
    leaves no lab behind. ``lab up`` passes none: its lab outlives the command.
    """
    argv = [sys.executable, "-m", "novadiag.lab.daemon", "--state-dir", str(state_dir)]
    argv += ["--scenario", scenario, "--cluster-domain", cluster_domain]
    if owner is not None:
        argv += ["--owner-pid", str(owner)]
    if block is not None:
        argv += ["--block", str(block)]
    if degraded:
        argv += ["--mode", "degraded"]
    env = {**os.environ, STATE_ENV: str(state_dir)}
    with open(state_dir / DAEMON_LOG, "ab") as log_file:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd="/",
        )
    _spawned[proc.pid] = proc
    return proc


def wait_ready(proc: subprocess.Popen[bytes], state_dir: Path, timeout: float) -> LabInfo:
    """Wait for ``lab.json``; a daemon that exits or hangs becomes one clear LabError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_info(state_dir)
        if info is not None and info.pid == proc.pid:
            return info
        code = proc.poll()
        if code is not None:
            raise LabError(f"lab daemon exited during start-up (exit {code}): {log_problem(state_dir)}")
        time.sleep(POLL)
    stop_lab(state_dir, proc=proc, remove=False)
    raise LabError(f"lab did not become ready within {timeout:g} s: {log_problem(state_dir)}")


def log_problem(state_dir: Path) -> str:
    """The most telling line of ``daemon.log``: the last error, else the last line."""
    try:
        lines = [ln.strip() for ln in (state_dir / DAEMON_LOG).read_text(errors="replace").splitlines()]
    except OSError:
        return "no daemon.log was written"
    lines = [ln for ln in lines if ln]
    for line in reversed(lines[-200:]):
        if line.startswith(FATAL_PREFIX):
            return line[len(FATAL_PREFIX) :][:400]
    for line in reversed(lines[-200:]):
        if " ERROR " in line or "Error" in line:
            return line[:400]
    return lines[-1][:400] if lines else "daemon.log is empty"


# -- stopping ------------------------------------------------------------------------------


def stop_lab(state_dir: Path, *, proc: subprocess.Popen[bytes] | None = None, remove: bool = True) -> bool:
    """Stop the lab of ``state_dir`` and (by default) delete the state dir.

    Safe after a crash and on a dir with nothing running. Returns True when a
    live daemon was found.
    """
    recorded = read_daemon_pid(state_dir)
    superseded = proc is not None and recorded not in (None, proc.pid) and is_lab_daemon(recorded, state_dir)
    if superseded:
        remove = False  # the dir now belongs to a newer daemon: only clean up after ours
    pid = proc.pid if proc is not None else recorded
    if proc is None and pid is not None:
        proc = _spawned.get(pid)
    running = pid is not None and is_lab_daemon(pid, state_dir)
    if pid is not None and running:
        # the daemon alone first: it stops the kubelet (which kills its pods), then the
        # servers; only what survives that is killed, group first, then recorded pids
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        _wait_daemon(pid, proc, state_dir, STOP_GRACE)
    kill_leftovers(state_dir, pid, recorded=not superseded)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE)
            _spawned.pop(proc.pid, None)
    if remove:
        remove_state_dir(state_dir)
    return running


def _wait_daemon(pid: int, proc: subprocess.Popen[bytes] | None, state_dir: Path, timeout: float) -> None:
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        return
    _wait_gone(lambda: is_lab_daemon(pid, state_dir), timeout)


def kill_leftovers(state_dir: Path, pgid: int | None, *, recorded: bool = True) -> None:
    for _ in range(3):
        pids = leftovers(state_dir, pgid, recorded=recorded)
        if not pids:
            return
        _signal(pids, signal.SIGKILL)
        _wait_gone(lambda: bool(leftovers(state_dir, pgid, recorded=recorded)), 2.0)
    remaining = leftovers(state_dir, pgid, recorded=recorded)
    if remaining:
        raise LabError(f"could not stop lab processes {remaining} of {state_dir}")


def remove_state_dir(state_dir: Path) -> None:
    """Delete the state dir, but only one that carries the lab marker."""
    info = read_info(state_dir)
    if info is not None and info.control_socket and not info.control_socket.startswith(str(state_dir)):
        with contextlib.suppress(OSError):
            os.unlink(info.control_socket)
    if (state_dir / MARKER).exists():
        shutil.rmtree(state_dir, ignore_errors=True)


# -- the control socket --------------------------------------------------------------------


def control_socket_path(state_dir: Path) -> str:
    """``<state>/control.sock``, or a short path in /tmp when that is too long for AF_UNIX."""
    path = str(state_dir / CONTROL_SOCKET)
    if len(path.encode()) < 100:
        return path
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return f"/tmp/novadiag-lab-{os.getuid()}-{digest}.sock"


def control_request(socket_path: str, request: dict[str, Any], *, timeout: float = 3.0) -> dict[str, Any]:
    """One JSON request to the daemon's control socket, one JSON answer back."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise LabError(f"lab daemon does not answer on {socket_path}: {exc.strerror or exc}") from exc
    try:
        answer = json.loads(data)
    except ValueError as exc:
        raise LabError(f"lab daemon sent an unreadable answer on {socket_path}") from exc
    if not isinstance(answer, dict):
        raise LabError(f"lab daemon sent an unreadable answer on {socket_path}")
    if answer.get("error"):
        raise LabError(f"lab daemon: {answer['error']}")
    return answer


# -- status --------------------------------------------------------------------------------


def lab_status(state_dir: Path) -> dict[str, Any]:
    """What ``lab status`` shows; ``running`` False when no live daemon owns the dir."""
    info = read_info(state_dir)
    pid = info.pid if info is not None else read_daemon_pid(state_dir)
    alive = pid is not None and is_lab_daemon(pid, state_dir)
    status: dict[str, Any] = {"state_dir": str(state_dir), "running": alive and info is not None, "pid": pid}
    if pid is not None and not alive:
        status["stale"] = True
    elif alive and info is None:
        status["starting"] = True
    if info is None:
        return status
    status.update(
        mode=info.mode,
        mode_reason=info.mode_reason,
        block=info.block,
        api_url=info.api_url,
        dns=f"{info.dns_ip}:{info.dns_port}",
        scenario=info.scenario,
        kubeconfig=info.kubeconfig,
        cluster_domain=info.cluster_domain,
        uptime_s=round(time.time() - info.started, 1),
    )
    if alive:
        try:
            status.update(control_request(info.control_socket, {"op": "status"}))
        except LabError as exc:
            status["control_error"] = str(exc)
    return status
