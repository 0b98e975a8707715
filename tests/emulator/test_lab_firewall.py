"""The lab's NetworkPolicy firewall: its sets, its script, and its table's lifetime.

The set contents and the script are checked by hand (no root); the table's lifetime
(removed on stop, after a kill, when stale) needs root and ``nft``. What probes see
through it is in ``tests/lab/test_network_policies_lab.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from novadiag.lab import Lab
from novadiag.lab.endpoints import SERVICE_NAME_LABEL
from novadiag.lab.firewall import TABLE_PREFIX, PolicyFirewall, denied_entries, in_lab, list_tables, nft_script
from novadiag.lab.network import LabNetwork
from novadiag.lab.store import Store


def pod(ns: str, name: str, ip: str, app: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def allow_from(ns: str, name: str, target_app: str, source_app: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name},
            "spec": {"podSelector": {"matchLabels": {"app": target_app}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": source_app}}}],
                                  "ports": [{"port": "http"}]}]}}


def service_with_backends(ns: str, name: str, ip: str, backends: list[tuple[str, int]]) -> list[dict[str, Any]]:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name},
           "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"namespace": ns, "name": f"{name}-x", "labels": {SERVICE_NAME_LABEL: name}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": backends[0][1], "protocol": "TCP"}],
           "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a, _ in backends]}
    return [svc, eps]


@pytest.fixture
def store() -> Store:
    store = Store()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "s"}})
    for obj in (pod("s", "client", "127.9.1.1", "client", 7000), pod("s", "other", "127.9.1.2", "other", 7000),
                pod("s", "api", "127.9.1.3", "api", 8080)):
        store.create(obj)
    return store


def test_no_policy_no_entries(store: Store) -> None:
    assert denied_entries(store) == frozenset()


def test_an_isolated_pod_denies_all_but_the_admitted_port_to_the_admitted_source(store: Store) -> None:
    store.create(allow_from("s", "api", "api", "client"))
    assert denied_entries(store) == {
        ("127.9.1.1", "127.9.1.3", 1, 8079), ("127.9.1.1", "127.9.1.3", 8081, 65535),
        ("127.9.1.2", "127.9.1.3", 1, 65535),
    }


def test_a_cluster_ip_is_denied_only_when_every_ready_backend_denies(store: Store) -> None:
    store.create(allow_from("s", "api", "api", "client"))
    for obj in service_with_backends("s", "api", "127.9.128.5", [("127.9.1.3", 8080)]):
        store.create(obj)
    entries = denied_entries(store)
    assert ("127.9.1.2", "127.9.128.5", 80, 80) in entries
    assert not any(e[0] == "127.9.1.1" and e[1] == "127.9.128.5" for e in entries)
    mixed = Store()
    for obj in [*store.list("Namespace")[0], *store.list("Pod")[0], allow_from("s", "api", "api", "client"),
                *service_with_backends("s", "api", "127.9.128.5", [("127.9.1.3", 8080), ("127.9.1.1", 8080)])]:
        mixed.create({k: v for k, v in obj.items()})
    assert not any(e[1] == "127.9.128.5" and e[0] == "127.9.1.2" for e in denied_entries(mixed)), \
        "client's own pod is an unisolated backend: some connections pass"


def test_the_script_puts_whole_pairs_in_the_hash_set_and_ranges_in_the_interval_set() -> None:
    script = nft_script("novadiag_lab_9", [("127.9.1.2", "127.9.1.3", 1, 65535), ("127.9.1.1", "127.9.1.3", 80, 80),
                                           ("127.9.1.1", "127.9.1.3", 81, 65535)])
    assert "add element ip novadiag_lab_9 denied_pairs { 127.9.1.2 . 127.9.1.3 }" in script
    assert "add element ip novadiag_lab_9 denied_ports { 127.9.1.1 . 127.9.1.3 . 80, " \
           "127.9.1.1 . 127.9.1.3 . 81-65535 }" in script
    assert "flush set ip novadiag_lab_9 denied_pairs" in script and "flush chain ip novadiag_lab_9 output" in script


def test_nothing_but_an_address_reaches_the_root_script() -> None:
    """A pod status or Service spec is written by API clients; the script runs as root."""
    with pytest.raises(ValueError):
        nft_script("novadiag_lab_9", [("127.9.1.1 } ; flush ruleset ; add table ip x {", "127.9.1.3", 1, 65535)])
    network = LabNetwork(9)
    entries = [("127.9.1.1", "127.9.1.3", 1, 65535), ("127.9.1.1", "10.0.0.1", 1, 65535),
               ("127.9.1.1", "not an ip", 1, 65535)]
    assert in_lab(entries, network) == {("127.9.1.1", "127.9.1.3", 1, 65535)}


# -- the table's lifetime (root, nft) ----------------------------------------------------------

needs_nft = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                               reason="enforcement needs root and nft")


def shop_objects() -> list[dict[str, Any]]:
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "server"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "server"}}, deny]


def lab_info(lab: Lab) -> dict[str, Any]:
    return json.loads((Path(lab.state_dir) / "lab.json").read_text())


@pytest.mark.lab
@needs_nft
def test_the_table_goes_with_the_lab_and_a_killed_lab_leaves_none(tmp_path):
    scenario = tmp_path / "shop"
    scenario.mkdir()
    (scenario / "cluster.yaml").write_text(yaml.safe_dump_all(shop_objects()))
    with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-netpol-stop-")) as lab:
        table = f"{TABLE_PREFIX}{lab_info(lab)['block']}"
        assert table in list_tables()
    assert table not in list_tables(), "lab stop removes its table"
    lab = Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-netpol-kill-")).start()
    try:
        info = lab_info(lab)
        table = f"{TABLE_PREFIX}{info['block']}"
        assert table in list_tables()
        os.kill(info["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while table in list_tables() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert table not in list_tables(), "the death watch removes a killed lab's table"
    finally:
        lab.stop()


@pytest.mark.lab
@needs_nft
def test_a_stale_table_of_a_lab_that_is_gone_is_removed_by_the_next_lab(tmp_path):
    stale = f"{TABLE_PREFIX}254"
    subprocess.run(["nft", "-f", "-"], input=f"table ip {stale} {{}}\n".encode(), check=True)
    try:
        scenario = tmp_path / "shop"
        scenario.mkdir()
        (scenario / "cluster.yaml").write_text(yaml.safe_dump_all(shop_objects()))
        with Lab(scenario=str(scenario), state_dir=tempfile.mkdtemp(prefix="nd-netpol-stale-")):
            assert stale not in list_tables()
    finally:
        subprocess.run(["nft", "delete", "table", "ip", stale], capture_output=True, check=False)




def test_without_nft_the_firewall_says_why_once_and_enforces_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    store = Store()
    firewall = PolicyFirewall(store, block=9, state_dir=tmp_path)
    with caplog.at_level("INFO", logger="novadiag.lab.firewall"):
        firewall.start()
        store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}})
        firewall.stop()
    assert not firewall.enforcing and firewall.problem == "nft (nftables) is not installed"
    assert [r.getMessage() for r in caplog.records] == [
        "NetworkPolicies are not enforced: nft (nftables) is not installed"]
    assert not (tmp_path / "nftables-table").exists()
