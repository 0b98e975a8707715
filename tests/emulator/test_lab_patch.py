"""JSON merge patch, strategic merge patch and JSON patch as the lab API server applies them."""

from __future__ import annotations

from typing import Any

import pytest

from novadiag.lab.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)


def _deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "labels": {"app": "api", "old": "x"},
                         "finalizers": ["a"]},
            "spec": {"replicas": 1, "template": {"spec": {
                "containers": [
                    {"name": "api", "image": "api:1",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 8080, "name": "http"}],
                     "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]},
                    {"name": "sidecar", "image": "side:1"}],
                "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                "tolerations": [{"key": "a"}]}}}}


# -- RFC 7386 --------------------------------------------------------------------------------

def test_merge_patch_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch(["a"], {"a": "b"}) == {"a": "b"}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}


def test_merge_patch_does_not_mutate_its_inputs() -> None:
    original = _deployment()
    merge_patch(original, {"metadata": {"labels": {"old": None}}})
    assert original == _deployment()


# -- strategic merge patch -------------------------------------------------------------------

def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def test_containers_and_env_merge_by_name() -> None:
    patched = strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {
        "containers": [{"name": "api", "image": "api:2",
                        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}}})
    api, sidecar = _containers(patched)
    assert api["image"] == "api:2" and sidecar == {"name": "sidecar", "image": "side:1"}
    assert api["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                          {"name": "C", "value": "3"}]
    assert api["ports"] == [{"containerPort": 8080, "name": "http"}]


def test_ports_merge_by_container_port_and_mounts_by_path() -> None:
    patched = strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {
        "containers": [{"name": "api",
                        "ports": [{"containerPort": 9090, "name": "metrics"}],
                        "volumeMounts": [{"mountPath": "/etc/cfg", "readOnly": True}]}]}}}})
    api = _containers(patched)[0]
    assert [p["containerPort"] for p in api["ports"]] == [8080, 9090]
    assert api["volumeMounts"] == [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}]


def test_patch_delete_and_replace_directives() -> None:
    patched = strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "$patch": "delete"},
                       {"name": "api", "env": [{"name": "A", "$patch": "delete"}]}],
        "volumes": [{"$patch": "replace"}, {"name": "new", "emptyDir": {}}]}}}})
    assert [c["name"] for c in _containers(patched)] == ["api"]
    assert _containers(patched)[0]["env"] == [{"name": "B", "value": "2"}]
    assert patched["spec"]["template"]["spec"]["volumes"] == [{"name": "new", "emptyDir": {}}]
    replaced = strategic_merge_patch(_deployment(), {"metadata": {
        "labels": {"$patch": "replace", "only": "this"}}})
    assert replaced["metadata"]["labels"] == {"only": "this"}


def test_atomic_lists_are_replaced_and_null_deletes() -> None:
    patched = strategic_merge_patch(_deployment(), {
        "metadata": {"labels": {"old": None}},
        "spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}})
    assert patched["metadata"]["labels"] == {"app": "api"}
    assert patched["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]


def test_finalizers_are_unioned_and_primitive_deletes() -> None:
    merged = strategic_merge_patch(_deployment(), {"metadata": {"finalizers": ["b", "a"]}})
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    removed = strategic_merge_patch(merged, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert removed["metadata"]["finalizers"] == ["b"]


def test_set_element_order_and_retain_keys() -> None:
    patched = strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "api"}],
        "containers": [{"name": "api", "image": "api:3"}]}}}})
    assert [c["name"] for c in _containers(patched)] == ["sidecar", "api"]
    retained = strategic_merge_patch({"spec": {"strategy": {"type": "RollingUpdate",
                                                            "rollingUpdate": {"maxSurge": 1}}}},
                                     {"spec": {"strategy": {"$retainKeys": ["type"],
                                                            "type": "Recreate"}}})
    assert retained["spec"]["strategy"] == {"type": "Recreate"}


def test_service_ports_merge_by_port() -> None:
    service = {"kind": "Service", "spec": {"ports": [{"name": "http", "port": 80},
                                                     {"name": "grpc", "port": 9090}]}}
    patched = strategic_merge_patch(service, {"spec": {"ports": [{"port": 80,
                                                                  "targetPort": 8080}]}})
    assert patched["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080},
                                        {"name": "grpc", "port": 9090}]


def test_missing_merge_key_is_an_error() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {
            "containers": [{"image": "nameless"}]}}}})


# -- RFC 6902 --------------------------------------------------------------------------------

def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    result = json_patch(doc, [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "test", "path": "/e", "value": "y"},
        {"op": "add", "path": "/metadata~1x", "value": True},
    ])
    assert result == {"a": {"b": [0, 2, 3]}, "c": "y", "e": "y", "metadata/x": True}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/c", "value": "nope"}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "replace", "path": "/a/b/9", "value": 1}],
    [{"op": "add", "path": "/x/y", "value": 1}],
])
def test_json_patch_failures_leave_the_document_alone(ops: list[dict[str, Any]]) -> None:
    doc = {"a": {"b": [1]}, "c": "x"}
    with pytest.raises(PatchError):
        json_patch(doc, ops)
    assert doc == {"a": {"b": [1]}, "c": "x"}


def test_dispatch_by_content_type() -> None:
    original = _deployment()
    assert apply_patch(original, {"spec": {"replicas": 3}}, MERGE_PATCH)["spec"]["replicas"] == 3
    smp = apply_patch(original, {"spec": {"template": {"spec": {"containers": [
        {"name": "api", "image": "x"}]}}}}, f"{STRATEGIC_MERGE_PATCH}; charset=utf-8")
    assert len(_containers(smp)) == 2
    jp = apply_patch(original, [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                     JSON_PATCH)
    assert jp["spec"]["replicas"] == 5
    with pytest.raises(PatchError) as unsupported:
        apply_patch(original, {}, "application/xml")
    assert unsupported.value.code == 415
