"""The lab: an emulated Kubernetes cluster (API server, DNS, kubelet) and its scenarios.

A lab runs as one background daemon per state dir and is reached only through
the kubeconfig it writes, so novadiag's code path is the one a real cluster
takes. :class:`Lab` starts and stops it from Python::

    with Lab(scenario="nova") as lab:
        novadiag.audit(kubeconfig=lab.kubeconfig)

Process handling lives in :mod:`.control`, the daemon in :mod:`.daemon`.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from novadiag.errors import LabError
from novadiag.lab import control
from novadiag.lab.scenario import Scenario, ScenarioInfo, list_scenarios, load_scenario, scenario_path

__all__ = ["Lab", "Scenario", "ScenarioInfo", "list_scenarios", "load_scenario"]


class Lab:
    """One lab: ``start()`` spawns the daemon and waits until it is ready, ``stop()`` ends it.

    Args:
        scenario: a bundled scenario name (see :func:`list_scenarios`) or a directory.
        state_dir: where the lab keeps its files (default ``~/.cache/novadiag/lab/default``).
        cluster_domain: the cluster DNS zone.
        block: the address block N of ``127.N.0.0/16`` (default: the first free one).
        degraded: run in degraded mode even as root (no mount namespaces, DNS on a high port).
        start_timeout: seconds to wait for the daemon before giving up.
        outlive_owner: keep the lab running after this process exits (``novadiag lab up``);
            by default the lab stops with the process that started it, even one killed
            before it could call :meth:`stop`.
    """

    def __init__(
        self,
        scenario: str = "nova",
        *,
        state_dir: str | os.PathLike[str] | None = None,
        cluster_domain: str = "cluster.local",
        block: int | None = None,
        degraded: bool = False,
        start_timeout: float = control.START_TIMEOUT,
        outlive_owner: bool = False,
    ) -> None:
        self.scenario = str(scenario)
        self.state_dir = control.resolve_state_dir(state_dir)
        self.cluster_domain = cluster_domain
        self.block_requested = block
        self.degraded = degraded
        self.start_timeout = start_timeout
        self.outlive_owner = outlive_owner
        self.notes: list[str] = []
        self._info: control.LabInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Lab:
        """Start the daemon; LabError (one clear line) when it cannot."""
        if self._info is not None:
            return self
        scenario_arg = str(scenario_path(self.scenario))  # an unknown name fails here, fast
        control.check_state_dir_private(self.state_dir)  # before its pid files are trusted
        self._clear_stale()
        control.prepare_state_dir(self.state_dir, fresh=True)
        self._proc = control.spawn_daemon(
            self.state_dir,
            scenario=scenario_arg,
            cluster_domain=self.cluster_domain,
            block=self.block_requested,
            degraded=self.degraded,
            owner=None if self.outlive_owner else os.getpid(),
        )
        try:
            self._info = control.wait_ready(self._proc, self.state_dir, self.start_timeout)
        except LabError:
            control.stop_lab(self.state_dir, proc=self._proc, remove=False)
            self._proc = None
            raise
        return self

    def _clear_stale(self) -> None:
        pid = control.read_daemon_pid(self.state_dir)
        if pid is None:
            return
        if control.is_lab_daemon(pid, self.state_dir):
            raise LabError(
                f"a lab is already running in {self.state_dir} (pid {pid}); "
                f"stop it first: novadiag lab down --state-dir {self.state_dir}"
            )
        control.stop_lab(self.state_dir)
        self.notes.append(f"cleaned up a stale lab in {self.state_dir} (daemon pid {pid} was not running)")

    def stop(self) -> None:
        """Stop every process of the lab and remove its state dir (also after a crash)."""
        control.stop_lab(self.state_dir, proc=self._proc)
        self._proc = None
        self._info = None

    @classmethod
    @contextmanager
    def private(cls, scenario: str, *, prefix: str = "novadiag-lab-") -> Iterator[Lab]:
        """A lab of its own for one command: a fresh state dir, removed afterwards whatever happens.

        A user's ``lab up`` lab (the default state dir) is left alone. The
        scenario is looked up before the directory exists, so a misspelt name
        leaves nothing behind either.
        """
        scenario_path(scenario)  # ScenarioError (one line) for an unknown name, before any mkdtemp
        state_dir = tempfile.mkdtemp(prefix=prefix)
        try:
            with cls(scenario=scenario, state_dir=state_dir) as lab:
                yield lab
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)  # stop() removes it; this covers a failed start

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str] | None = None) -> Lab:
        """The lab already running in ``state_dir`` (started by another process)."""
        lab = cls(state_dir=state_dir)
        info = control.read_info(lab.state_dir)
        if info is None or not control.is_lab_daemon(info.pid, lab.state_dir):
            raise LabError(f"no lab is running in {lab.state_dir}")
        lab._info, lab.scenario, lab.cluster_domain = info, info.scenario, info.cluster_domain
        return lab

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- where things are -----------------------------------------------------------------
    @property
    def info(self) -> control.LabInfo:
        if self._info is None:
            raise LabError(f"the lab in {self.state_dir} is not started")
        return self._info

    @property
    def kubeconfig(self) -> str:
        return self.info.kubeconfig

    @property
    def api_url(self) -> str:
        return self.info.api_url

    @property
    def dns_address(self) -> tuple[str, int]:
        return self.info.dns_address

    @property
    def mode(self) -> str:
        """``root`` (pods resolve with glibc in private mount namespaces) or ``degraded``."""
        return self.info.mode

    @property
    def pid(self) -> int:
        return self.info.pid

    def status(self) -> dict[str, Any]:
        return control.lab_status(self.state_dir)

    # -- faults ---------------------------------------------------------------------------
    def inject_fault(self, fault: dict[str, Any] | None = None, **fields: Any) -> Any:
        """Add an API server fault (the API server's ``/lab/v1/faults`` format)."""
        return self._admin("POST", "/lab/v1/faults", {**(fault or {}), **fields})

    def clear_faults(self) -> None:
        """Remove every API server fault and every DNS fault."""
        self._admin("DELETE", "/lab/v1/faults")
        self.set_dns_faults(clear=True)

    def set_dns_faults(self, *, clear: bool = False, **faults: Any) -> dict[str, Any]:
        """Set DNS faults: ``servfail``, ``drop_udp``, ``truncate_udp`` (bool), ``delay_ms``."""
        request = {"op": "dns-faults", "clear": clear, **faults}
        answer = control.control_request(self.info.control_socket, request)
        return dict(answer.get("dns_faults") or {})

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        token = (self.state_dir / control.ADMIN_TOKEN).read_text().strip()
        context = ssl.create_default_context(cafile=self.info.ca_path or None)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        # no proxies: the lab is on 127.0.0.0/8 and nothing may leave it
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with opener.open(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise LabError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise LabError(f"{method} {path}: the lab API server does not answer: {exc}") from exc
        return json.loads(text) if text.strip() else None
