"""Host replacement, env location and namespace rewriting in policies and bindings."""

from __future__ import annotations

from plan_support import workload

from novadiag.planning.rename import (
    DataKeys,
    Location,
    env_patch,
    locate_env,
    replace_host,
    replace_hosts,
    rewrite_role_binding,
)


def test_replace_host_leaves_longer_names_alone() -> None:
    text = "postgres://u@postgres:5432,postgres.nova:5432,my-postgres:1/db"
    assert replace_host(text, "postgres", "db") == "postgres://u@db:5432,postgres.nova:5432,my-postgres:1/db"


def test_replace_host_rewrites_a_dotted_name_inside_a_url() -> None:
    assert replace_host("redis://redis.nova-media:6379/0", "redis.nova-media", "redis") == "redis://redis:6379/0"


def test_replace_hosts_is_one_pass_without_chains() -> None:
    assert replace_hosts("a:1,b:2", {"a": "b", "b": "c"}) == "b:1,c:2"


def test_replace_host_keeps_a_trailing_sentence_dot() -> None:
    assert replace_host("see api.", "api", "api.ns") == "see api.ns."


def test_env_entry_wins_over_env_from() -> None:
    obj = workload("a", "app", {"API_URL": "http://api"}, env_from=[{"configMapRef": {"name": "cfg"}}])
    keys = DataKeys({("ConfigMap", "cfg"): {"data": {"API_URL": "http://other"}}})
    loc = locate_env(obj, "app", "API_URL", keys)
    assert loc is not None and loc.kind == "value"


def test_later_env_from_source_wins_and_prefix_is_stripped() -> None:
    sources = [{"configMapRef": {"name": "first"}}, {"prefix": "X_", "secretRef": {"name": "second"}}]
    obj = workload("a", "app", env_from=sources)
    keys = DataKeys({("ConfigMap", "first"): {"data": {"X_HOST": "a"}}, ("Secret", "second"): {"data": {"HOST": "b"}}})
    loc = locate_env(obj, "app", "X_HOST", keys)
    assert loc is not None and (loc.kind, loc.name, loc.key) == ("Secret", "second", "HOST")


def test_config_map_key_ref_is_located_in_the_config_map() -> None:
    env = [{"name": "FEED", "valueFrom": {"configMapKeyRef": {"name": "ep", "key": "feed-url"}}}]
    loc = locate_env(workload("a", "app", env), "app", "FEED", DataKeys({}))
    assert loc is not None and (loc.kind, loc.name, loc.key) == ("ConfigMap", "ep", "feed-url")


def test_env_patch_merges_containers_and_env_by_name() -> None:
    loc = Location("value", "containers", "app", "URL")
    patch = env_patch("Deployment", {loc: "http://x"})
    assert patch == {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "URL", "value": "http://x"}]}]}}}
    }


def test_role_binding_subjects_follow_moved_service_accounts() -> None:
    binding = {
        "kind": "RoleBinding",
        "subjects": [
            {"kind": "ServiceAccount", "name": "app", "namespace": "old"},
            {"kind": "Group", "name": "system:serviceaccounts:old"},
            {"kind": "User", "name": "jane"},
        ],
    }
    out = rewrite_role_binding(binding, {"old": "new"})
    assert out["subjects"] == [
        {"kind": "ServiceAccount", "name": "app", "namespace": "new"},
        {"kind": "Group", "name": "system:serviceaccounts:new"},
        {"kind": "User", "name": "jane"},
    ]


def test_role_binding_keeps_old_subjects_during_the_grace_period() -> None:
    binding = {"subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "old"}]}
    out = rewrite_role_binding(binding, {"old": "new"}, keep_old={"old"})
    assert [s["namespace"] for s in out["subjects"]] == ["old", "new"]
