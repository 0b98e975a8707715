"""Tests for the synthetic scenario generator and the bundled Nova manifests.

The generator is checked against an independent, deliberately simple reading of its
output (a regex over the env values each container really sees), not against its
own bookkeeping.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from novadiag.errors import ScenarioError
from novadiag.lab.generate import (
    EXPECTED_BROKEN_ANNOTATION,
    generate_manifests,
    main,
    write_manifests,
)

NOVA = Path(__file__).resolve().parents[2] / "novadiag" / "lab" / "scenarios" / "nova"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
HOST_RE = re.compile(r"(?:^|[/@,])([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*)(?=:(?:\d+|\$\())")


def _index(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects
    }


def _container_env(
    workload: dict[str, Any], index: dict[tuple[str, str, str], dict[str, Any]]
) -> dict[str, str]:
    """The env one container sees, as the kubelet would assemble it (no expansion)."""
    ns = workload["metadata"]["namespace"]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        obj = index[(kind, ns, ref["name"])]
        for key, value in (obj.get("data") or obj["stringData"]).items():
            env[source.get("prefix", "") + key] = value
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ((ref_kind, ref),) = item["valueFrom"].items()
        kind = "ConfigMap" if ref_kind == "configMapKeyRef" else "Secret"
        obj = index[(kind, ns, ref["name"])]
        env[item["name"]] = (obj.get("data") or obj["stringData"])[ref["key"]]
    return env


def _hosts(name: str, value: str) -> list[str]:
    if name.endswith("_HOST"):
        return [value]
    return HOST_RE.findall(value)


def _edges(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (workload, env, host) with the namespace of the Service it names."""
    index = _index(objects)
    service_ns = {
        o["metadata"]["name"]: o["metadata"]["namespace"] for o in objects if o["kind"] == "Service"
    }
    edges = []
    for w in objects:
        if w["kind"] not in WORKLOAD_KINDS:
            continue
        ns = w["metadata"]["namespace"]
        for env, value in _container_env(w, index).items():
            for host in _hosts(env, value):
                target_ns = service_ns[host.split(".", 1)[0]]
                edges.append(
                    {"workload": w, "ns": ns, "env": env, "host": host, "target_ns": target_ns}
                )
    return edges


@pytest.fixture(scope="module")
def cluster() -> list[dict[str, Any]]:
    return generate_manifests(namespaces=12, workloads_per_namespace=6, broken_share=0.25, seed=7)


def test_same_seed_gives_same_objects() -> None:
    first = generate_manifests(namespaces=5, workloads_per_namespace=4, seed=3)
    again = generate_manifests(namespaces=5, workloads_per_namespace=4, seed=3)
    other = generate_manifests(namespaces=5, workloads_per_namespace=4, seed=4)
    assert first == again
    assert first != other


def test_counts_match_the_request(cluster: list[dict[str, Any]]) -> None:
    kinds = collections.Counter(o["kind"] for o in cluster)
    assert kinds["Namespace"] == 12
    assert kinds["Deployment"] + kinds["StatefulSet"] == 12 * 6
    assert kinds["Service"] == 12 * 6
    assert kinds["NetworkPolicy"] == 12
    assert [o["kind"] for o in cluster[:12]] == ["Namespace"] * 12
    per_ns = collections.Counter(
        o["metadata"]["namespace"] for o in cluster if o["kind"] in WORKLOAD_KINDS
    )
    assert set(per_ns.values()) == {6}


def test_every_object_is_a_named_kubernetes_object(cluster: list[dict[str, Any]]) -> None:
    for obj in cluster:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"].startswith("gen-")
        assert "status" not in obj and "uid" not in obj["metadata"]


def test_services_select_their_workloads_and_ports_match(cluster: list[dict[str, Any]]) -> None:
    index = _index(cluster)
    for svc in (o for o in cluster if o["kind"] == "Service"):
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        workload = index.get(("Deployment", ns, name)) or index[("StatefulSet", ns, name)]
        assert workload["spec"]["template"]["metadata"]["labels"] == svc["spec"]["selector"]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        (port,) = svc["spec"]["ports"]
        assert container["ports"] == [{"name": port["targetPort"], "containerPort": port["port"]}]


def test_each_workload_has_one_to_ten_references(cluster: list[dict[str, Any]]) -> None:
    envs: dict[int, set[str]] = collections.defaultdict(set)
    for e in _edges(cluster):
        envs[id(e["workload"])].add(e["env"])
    workloads = [o for o in cluster if o["kind"] in WORKLOAD_KINDS]
    assert len(envs) == len(workloads)
    assert all(1 <= len(names) <= 10 for names in envs.values())


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 1.0])
def test_requested_share_of_cross_namespace_names_is_short(share: float) -> None:
    objects = generate_manifests(namespaces=20, workloads_per_namespace=5, broken_share=share)
    cross = [e for e in _edges(objects) if e["target_ns"] != e["ns"]]
    short = [e for e in cross if "." not in e["host"]]
    assert len(cross) > 100
    assert abs(len(short) - share * len(cross)) <= 1


def test_working_names_resolve_and_local_names_are_short(cluster: list[dict[str, Any]]) -> None:
    for e in _edges(cluster):
        svc = e["host"].split(".", 1)[0]
        if e["target_ns"] == e["ns"]:
            assert e["host"] == svc
        elif "." in e["host"]:
            ns = e["target_ns"]
            assert e["host"] in {f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"}


def test_short_names_never_exist_in_the_callers_namespace(cluster: list[dict[str, Any]]) -> None:
    local = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in cluster
        if o["kind"] == "Service"
    }
    for e in _edges(cluster):
        if "." not in e["host"] and e["target_ns"] != e["ns"]:
            assert (e["ns"], e["host"]) not in local


def test_expected_broken_annotation_lists_exactly_the_short_cross_names(
    cluster: list[dict[str, Any]],
) -> None:
    found: dict[int, set[str]] = collections.defaultdict(set)
    for e in _edges(cluster):
        if "." not in e["host"] and e["target_ns"] != e["ns"]:
            found[id(e["workload"])].add(f"{e['env']}={e['host']}")
    for w in (o for o in cluster if o["kind"] in WORKLOAD_KINDS):
        note = w["metadata"].get("annotations", {}).get(EXPECTED_BROKEN_ANNOTATION, "")
        assert set(filter(None, note.split(","))) == found.get(id(w), set())


def test_every_reference_form_appears(cluster: list[dict[str, Any]]) -> None:
    index = _index(cluster)
    values = []
    origins: set[str] = set()
    for w in (o for o in cluster if o["kind"] in WORKLOAD_KINDS):
        (container,) = w["spec"]["template"]["spec"]["containers"]
        values.extend(_container_env(w, index).items())
        for item in container["env"]:
            origins.update(item.get("valueFrom", {"value": None}))
        for source in container.get("envFrom", []):
            origins.add("prefix" if "prefix" in source else next(iter(source)))
    assert origins == {
        "value",
        "configMapKeyRef",
        "secretKeyRef",
        "configMapRef",
        "secretRef",
        "prefix",
    }
    text = [v for _, v in values]
    assert any(v.startswith(("http://", "grpc://", "redis://")) for v in text)
    assert any(v.startswith("jdbc:postgresql://") for v in text)
    assert any(v.startswith("dns:///") for v in text)
    assert any("$(" in v for v in text)
    assert any(re.fullmatch(r"[a-z0-9.-]+:\d+(,[a-z0-9.-]+:\d+)+", v) for v in text)
    assert any(re.match(r"mongodb://[^@]+@[^/]+,[^/]+/", v) for v in text)
    names = {n for n, _ in values}
    assert any(n.endswith("_HOST") and n[:-5] + "_PORT" in names for n in names)
    assert {"LOG_LEVEL", "JAVA_OPTS", "FEATURE_FLAGS"} & names


def test_credentials_live_only_in_secrets(cluster: list[dict[str, Any]]) -> None:
    for obj in cluster:
        dumped = yaml.safe_dump(obj)
        if obj["kind"] == "Secret":
            assert "data" not in obj and obj["stringData"]
        else:
            assert "NOVA-SECRET-" not in dumped
    dsns = [
        v for o in cluster if o["kind"] == "Secret" for v in o["stringData"].values() if "@" in v
    ]
    assert dsns and all("NOVA-SECRET-" in v for v in dsns)


def test_invalid_arguments_raise_scenario_error() -> None:
    with pytest.raises(ScenarioError):
        generate_manifests(namespaces=0)
    with pytest.raises(ScenarioError):
        generate_manifests(namespaces=2, broken_share=1.5)


def test_single_namespace_and_single_workload_still_work() -> None:
    objects = generate_manifests(namespaces=1, workloads_per_namespace=1)
    assert {o["kind"] for o in objects} >= {"Namespace", "Service", "NetworkPolicy"}
    assert all(e["target_ns"] == e["ns"] for e in _edges(objects))


def test_write_manifests_round_trips_and_replaces_stale_files(tmp_path: Path) -> None:
    objects = generate_manifests(namespaces=4, workloads_per_namespace=3)
    (tmp_path / "manifests-9999.yaml").write_text("kind: Stale\n")
    (tmp_path / "keep.txt").write_text("mine")
    paths = write_manifests(objects, tmp_path, per_file=7)
    assert len(paths) == -(-len(objects) // 7)
    assert not (tmp_path / "manifests-9999.yaml").exists()
    assert (tmp_path / "keep.txt").exists()
    loaded = [d for p in paths for d in yaml.safe_load_all(p.read_text())]
    assert loaded == objects


def test_cli_writes_the_requested_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--namespaces", "3", "--workloads", "2", "--out", str(tmp_path)]) == 0
    loaded = [d for p in sorted(tmp_path.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    assert loaded == generate_manifests(namespaces=3, workloads_per_namespace=2)
    assert "objects" in capsys.readouterr().out


@pytest.mark.slow
def test_workload_count_is_namespaces_times_workloads_per_namespace() -> None:
    objects = generate_manifests(namespaces=40, workloads_per_namespace=25)
    assert sum(o["kind"] in WORKLOAD_KINDS for o in objects) == 1_000


# -- the bundled Nova scenario --------------------------------------------------------


def _nova_objects() -> list[dict[str, Any]]:
    files = sorted((NOVA / "manifests").glob("*.yaml"))
    return [d for p in files for d in yaml.safe_load_all(p.read_text()) if d is not None]


def test_nova_manifests_parse_and_match_the_plans_table() -> None:
    objects = _nova_objects()
    assert all(o["apiVersion"] and o["kind"] and o["metadata"]["name"] for o in objects)
    pods = collections.Counter()
    for o in objects:
        if o["kind"] in WORKLOAD_KINDS:
            pods[o["metadata"]["namespace"]] += o["spec"]["replicas"]
    assert pods == {
        "nova-backend": 16,
        "nova-gateway": 4,
        "nova-content": 3,
        "nova-feed": 3,
        "nova-auth": 3,
        "nova-staging": 2,
        "nova-media": 2,
        "nova": 1,
        "kafka": 2,
        "ingress-nginx": 1,  # the ingress controller the graphql-gateway Ingress names: not in the plan's table
    }


def test_nova_expected_audit_has_exactly_the_five_broken_edges() -> None:
    scenario = yaml.safe_load((NOVA / "scenario.yaml").read_text())
    assert scenario["name"] == "nova"
    expected = yaml.safe_load((NOVA / "expected.yaml").read_text())
    broken = [e for e in expected if e["status"] != "ok" and e["status"] != "external"]
    assert {(e["source"], e["env"], e["target"]) for e in broken} == {
        (
            "nova-backend/Deployment/user-service",
            "CONTENT_SERVICE_URL",
            "nova-content/content-service",
        ),
        ("nova-backend/Deployment/user-service", "FEED_SERVICE_URL", "nova-feed/feed-service"),
        ("nova-backend/Deployment/user-service", "AUTH_SERVICE_URL", "nova-auth/auth-service"),
        ("nova-backend/Deployment/user-service", "MEDIA_SERVICE_URL", "nova-media/media-service"),
        ("nova-gateway/HTTPRoute/content-api", None, "nova-content/content-service"),
    }
    assert "NOVA-SECRET-" not in (NOVA / "expected.yaml").read_text()
