"""Write the kubeconfig that is the only way in to a lab.

novadiag, ``kubectl`` and the tests reach the lab through this file and nothing
else, so the code path is the one a real cluster takes: a cluster entry with the
server URL and the CA inline (``certificate-authority-data``, so the file stays
valid if copied), a user with a bearer token, and a context ``lab-<scenario>``
that is the current context. The file holds a credential: it is written 0600.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def build_kubeconfig(*, server_url: str, ca_pem: bytes, token: str, scenario: str,
                     namespace: str | None = None, user: str = "admin") -> dict[str, Any]:
    """The kubeconfig document as a dict."""
    name = f"lab-{scenario}"
    user_name = f"{name}-{user}"
    context: dict[str, Any] = {"cluster": name, "user": user_name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{
            "name": name,
            "cluster": {
                "server": server_url,
                "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            },
        }],
        "users": [{"name": user_name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, *, server_url: str, ca_pem: bytes, token: str, scenario: str,
                     namespace: str | None = None, user: str = "admin") -> Path:
    """Write the kubeconfig to ``path`` (mode 0600) and return the path."""
    document = build_kubeconfig(server_url=server_url, ca_pem=ca_pem, token=token,
                                scenario=scenario, namespace=namespace, user=user)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(document, sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
