"""Snapshots: building, saving and loading, and what they never hold."""

from __future__ import annotations

import json

import pytest

from novadiag.errors import ConfigError
from novadiag.model import SourceInfo
from novadiag.pipeline import audit_snapshot
from novadiag.snapshot import build_snapshot, load_snapshot_file

PASSWORD = "Sup3rS3cretPw"


def deployment(env):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api",
            "namespace": "a",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"env": env})},
        },
        "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "api", "env": env}]}}},
    }


def test_inline_dsn_password_is_masked_but_host_kept():
    env = [{"name": "DATABASE_URL", "value": f"postgres://app:{PASSWORD}@db:5432/x"}]
    snap = build_snapshot([deployment(env)], SourceInfo("manifests"))
    text = json.dumps(snap.to_dict())
    assert PASSWORD not in text
    assert "@db:5432" in text


def test_inputs_are_not_mutated():
    env = [{"name": "DATABASE_URL", "value": f"postgres://app:{PASSWORD}@db:5432/x"}]
    obj = deployment(env)
    build_snapshot([obj], SourceInfo("manifests"))
    assert PASSWORD in obj["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]


def test_configmap_value_password_is_masked():
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "a"},
        "data": {"REDIS_URL": f"redis://:{PASSWORD}@redis:6379/0"},
    }
    snap = build_snapshot([cm], SourceInfo("manifests"))
    assert PASSWORD not in json.dumps(snap.to_dict())


def test_secret_values_never_kept():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "a"},
        "stringData": {"password": PASSWORD, "url": f"mysql://root:{PASSWORD}@mysql:3306/db"},
    }
    snap = build_snapshot([secret], SourceInfo("manifests"))
    text = json.dumps(snap.to_dict())
    assert PASSWORD not in text
    assert "mysql:3306" in text


def test_objects_without_name_or_kind_are_skipped_with_findings():
    snap = build_snapshot([{"kind": "Service", "metadata": {}}, {"metadata": {"name": "x"}}], SourceInfo("manifests"))
    assert not snap.objects
    assert [f.code for f in snap.findings] == ["invalid-object", "invalid-object"]


def test_unknown_kinds_are_counted_not_read():
    snap = build_snapshot([{"kind": "HorizontalPodAutoscaler", "metadata": {"name": "i"}}], SourceInfo("manifests"))
    assert snap.findings[0].code == "kind-not-read" and "HorizontalPodAutoscaler" in snap.findings[0].message


def test_routing_kinds_are_read():
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}}
    snap = build_snapshot([ingress], SourceInfo("manifests"))
    assert snap.findings == () and snap.of("Ingress")[0]["metadata"] == {"name": "i", "namespace": "default"}


def test_save_and_load_round_trip(tmp_path):
    env = [{"name": "DB_HOST", "value": "db"}]
    snap = build_snapshot([deployment(env)], SourceInfo("cluster", context="prod", cluster_domain="corp.internal"))
    path = tmp_path / "snap.json"
    snap.save(path)
    loaded = load_snapshot_file(path)
    assert loaded.source.kind == "snapshot" and loaded.source.cluster_domain == "corp.internal"
    assert loaded.of("Deployment")[0]["metadata"]["name"] == "api"


def _service_without_ready_pods(source_kind):
    """A Deployment with replicas whose Service's Endpoints list no ready address (pods crash-looping)."""
    caller = deployment([{"name": "API_URL", "value": "backend:80"}])
    backend = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": "a"},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "backend"}}, "spec": {"containers": [{"name": "b"}]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend", "namespace": "a"},
        "spec": {"selector": {"app": "backend"}, "ports": [{"port": 80}]},
    }
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "backend", "namespace": "a"},
        "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.7"}], "ports": [{"port": 80}]}],
    }
    return build_snapshot([caller, backend, service, endpoints], SourceInfo(source_kind))


@pytest.mark.parametrize(
    ("saved_from", "status"), [("cluster", "no-endpoints"), ("lab", "no-endpoints"), ("manifests", "ok")]
)
def test_a_saved_snapshot_judges_endpoints_as_its_source_did(tmp_path, saved_from, status):
    """Offline audits of a listed cluster trust its Endpoints; a manifest set's are guessed from replicas."""
    path = tmp_path / "snap.json"
    _service_without_ready_pods(saved_from).save(path)
    loaded = load_snapshot_file(path)
    assert loaded.source.saved_from == saved_from
    assert [edge.status for edge in audit_snapshot(loaded).edges] == [status]
    resaved = tmp_path / "again.json"
    loaded.save(resaved)
    assert json.loads(resaved.read_text())["source"]["kind"] == saved_from


def test_loading_a_non_snapshot_file_is_one_clear_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"kind": "List"}')
    with pytest.raises(ConfigError, match=r"x.json: not a novadiag snapshot file"):
        load_snapshot_file(path)


def test_paused_gc_hands_what_it_built_to_the_oldest_generation():
    """Objects built while paused skip the young generations' rescans; the collector runs again after."""
    import gc

    from novadiag.snapshot import paused_gc

    assert gc.isenabled()
    with paused_gc():
        built = [[i] for i in range(1000)]
        with paused_gc():  # nested: only the outermost pause promotes and resumes
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    oldest = gc.get_objects(generation=2)
    assert any(o is built for o in oldest) and any(o is built[0] for o in oldest)


def test_paused_gc_leaves_a_callers_frozen_objects_frozen():
    import gc

    from novadiag.snapshot import paused_gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc():
            _built = [[i] for i in range(100)]
        assert gc.get_freeze_count() == frozen  # unfreeze() would have released them
    finally:
        gc.unfreeze()


def test_container_args_env_passwords_and_annotations_keep_no_credential(tmp_path):
    """What a saved snapshot holds of a workload: hosts yes, credentials nowhere."""
    obj = deployment([{"name": "DB_PASSWORD", "value": "InlineLonePW"}, {"name": "DB_HOST", "value": "pg.data"}])
    spec = obj["spec"]["template"]["spec"]
    spec["containers"][0]["args"] = ["--db", f"postgres://arg:{PASSWORD}@pg.data:5432/x"]
    obj["metadata"]["annotations"]["note"] = f"redis://:{PASSWORD}@cache:6379"
    obj["spec"]["template"]["metadata"]["annotations"] = {"vault.example/dsn": f"postgres://u:{PASSWORD}@pg:5432/x"}
    path = tmp_path / "snap.json"
    build_snapshot([obj], SourceInfo("cluster")).save(path)
    text = path.read_text()
    assert PASSWORD not in text and "InlineLonePW" not in text
    saved = json.loads(text)["objects"]["Deployment"][0]
    container = saved["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--db", "postgres://arg:***@pg.data:5432/x"]
    assert [e["value"] for e in container["env"]] == ["<redacted>", "pg.data"]
    assert saved["metadata"]["annotations"] == {"note": "redis://:***@cache:6379"}
    assert saved["spec"]["template"]["metadata"]["annotations"] == {"vault.example/dsn": "postgres://u:***@pg:5432/x"}


def test_a_manifest_cannot_skip_secret_sanitizing_by_claiming_it_was_done():
    forged = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "a"},
        "novadiagSanitized": True,
        "stringData": {"URL": f"https://hooks.example/services/{PASSWORD}"},
    }
    snap = build_snapshot([forged], SourceInfo("manifests"))
    assert PASSWORD not in json.dumps(snap.to_dict())


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": "novadiag.snapshot/v1", "source": {}, "objects": {}, "gaps": [{"kind": 5, "namespace": [1]}]}',
        '{"schema": "novadiag.snapshot/v1", "n": ' + "1" * 5000 + "}",
        "[" * 100_000,
    ],
    ids=["gap-of-wrong-types", "huge-integer", "deep-nesting"],
)
def test_a_hostile_snapshot_file_is_one_clear_error(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"x.json: not a novadiag snapshot file \("):
        load_snapshot_file(path)
