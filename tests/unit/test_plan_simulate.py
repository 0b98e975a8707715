"""The simulator: the operations the runner sends, applied to a snapshot copy."""

from __future__ import annotations

from novadiag.model import ObjectRef
from novadiag.planning.operations import Operation, Replacement
from novadiag.planning.simulate import apply_operation, merge, strategic_merge


def test_merge_patch_deletes_with_null_and_replaces_lists() -> None:
    assert merge({"a": 1, "b": [1, 2], "c": {"d": 1}}, {"a": None, "b": [3], "c": {"e": 2}}) == {
        "b": [3],
        "c": {"d": 1, "e": 2},
    }


def test_strategic_patch_merges_containers_and_env_by_name() -> None:
    target = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}
    assert strategic_merge(target, patch) == {
        "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]}]
    }


def test_copy_secret_rewrites_hosts_in_the_copy_only() -> None:
    source = {"kind": "Secret", "metadata": {"name": "db", "namespace": "a"}, "data": {"url": "pg://***@pg.a:5432/x"}}
    store = {("Secret", "a", "db"): source}
    op = Operation(
        "copy-secret",
        ObjectRef("Secret", "b", "db"),
        source=ObjectRef("Secret", "a", "db"),
        replacements=(Replacement("url", "pg.a", "pg"),),
    )
    apply_operation(store, op)  # type: ignore[arg-type]
    assert store[("Secret", "b", "db")]["data"]["url"] == "pg://***@pg:5432/x"
    assert source["data"]["url"] == "pg://***@pg.a:5432/x"


def test_deleting_a_namespace_deletes_what_is_in_it() -> None:
    store = {("Namespace", None, "a"): {}, ("ConfigMap", "a", "c"): {}, ("ConfigMap", "b", "c"): {}}
    apply_operation(store, Operation("delete", ObjectRef("Namespace", None, "a")))  # type: ignore[arg-type]
    assert list(store) == [("ConfigMap", "b", "c")]
