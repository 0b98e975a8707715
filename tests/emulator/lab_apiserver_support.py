"""Shared set-up for the API server tests: a Store + ApiServer in the test process.

No daemon is needed: the server runs in this process's threads and clients reach it
over real HTTPS on 127.N.0.1 through a real kubeconfig, like any cluster.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novadiag.lab.apiserver import ApiServer
from novadiag.lab.kubeconfig import write_kubeconfig
from novadiag.lab.network import LabNetwork
from novadiag.lab.store import Store

ADMIN_TOKEN = "lab-test-admin-token"
VIEWER_TOKEN = "lab-test-viewer-token"
RBAC = {
    "deny": [{"verbs": ["list", "watch", "get"], "resources": ["secrets"],
              "namespaces": ["locked"]}],
    "tokens": [{"token": VIEWER_TOKEN, "user": "viewer", "rules": [
        {"verbs": ["get", "list", "watch"], "apiGroups": ["", "apps"], "resources": ["*"],
         "namespaces": ["team-a"]}]}],
}


@dataclass
class RunningLab:
    store: Store
    server: ApiServer
    kubeconfig: Path
    logs: dict[tuple[str, str, str], str]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call a ``/lab/v1`` admin endpoint with the admin token."""
        context = ssl.create_default_context(cafile=str(self.server.ca_path))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server.url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.loads(response.read())

    def kubeconfig_for(self, token: str) -> Path:
        """A kubeconfig like the lab's, with another bearer token."""
        path = self.kubeconfig.with_name(f"kubeconfig-{abs(hash(token))}")
        return write_kubeconfig(path, server_url=self.server.url,
                                ca_pem=self.server.ca_path.read_bytes(), token=token,
                                scenario="apitest")

    def add_fault(self, **rule: Any) -> None:
        self.admin("POST", "/lab/v1/faults", rule)

    def clear_faults(self) -> None:
        self.admin("DELETE", "/lab/v1/faults")


@contextmanager
def running_lab(tmp: Path, *, block: int) -> Iterator[RunningLab]:
    store = Store()
    logs: dict[tuple[str, str, str], str] = {}

    def provider(namespace: str, pod: str, container: str) -> str | None:
        return logs.get((namespace, pod, container))

    server = ApiServer(store, network=LabNetwork(block), pki_dir=tmp / "pki",
                       admin_token=ADMIN_TOKEN, rbac=RBAC, log_provider=provider)
    threads_before = set(threading.enumerate())
    server.start()
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", server_url=server.url,
                                  ca_pem=server.ca_path.read_bytes(), token=ADMIN_TOKEN,
                                  scenario="apitest")
    try:
        yield RunningLab(store, server, kubeconfig, logs)
    finally:
        server.stop()
        for thread in set(threading.enumerate()) - threads_before:
            thread.join(timeout=5)
        leftover = [t.name for t in set(threading.enumerate()) - threads_before
                    if t.is_alive() and not t.name.startswith("ns-delete")]
        assert not leftover, f"threads survived the API server: {leftover}"
