"""Property-based: any manifest file either audits or stops with a ManifestError — nothing else.

Three generators, from wild to plausible: arbitrary text, arbitrary YAML
values, and Kubernetes-shaped objects (Deployments, Services, ConfigMaps,
Secrets, NetworkPolicies) where any field may hold a value of the wrong type.
The last one drives the whole static audit, so a malformed object anywhere —
``env`` as a string, ``dnsConfig`` as a list, a port as a mapping — must be
skipped with a finding, never raise. Crashes hypothesis found are pinned as
``@example``s.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import novadiag
from novadiag.errors import ConfigError, ManifestError
from novadiag.manifests import load_manifests

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
names = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    names,
    st.builds(lambda a, b: f"{a}.{b}", names, names),
    st.builds(lambda a, b: f"{a}.{b}.svc.cluster.local", names, names),
)
values = st.one_of(
    st.builds(lambda h, p: f"{h}:{p}", hosts, st.integers(0, 70000)),
    st.builds(lambda s, h: f"{s}://user:pw@{h}/x", st.sampled_from(["http", "postgres", "redis", "grpc"]), hosts),
    st.builds(lambda h: f"$({h.upper().replace('.', '_').replace('-', '_')})", hosts),
    st.text(max_size=30),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the right shape, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, junk)


env_var = maybe(
    st.fixed_dictionaries(
        {"name": maybe(st.from_regex(r"[A-Z][A-Z_]{0,10}", fullmatch=True))},
        optional={
            "value": maybe(values),
            "valueFrom": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "configMapKeyRef": maybe(st.fixed_dictionaries({"name": maybe(names), "key": maybe(names)})),
                        "secretKeyRef": maybe(st.fixed_dictionaries({"name": maybe(names), "key": maybe(names)})),
                        "fieldRef": maybe(st.fixed_dictionaries({"fieldPath": maybe(st.text(max_size=20))})),
                    },
                )
            ),
        },
    )
)
container = maybe(
    st.fixed_dictionaries(
        {"name": maybe(names), "image": st.just("x")},
        optional={
            "env": maybe(st.lists(env_var, max_size=4)),
            "envFrom": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "configMapRef": maybe(st.fixed_dictionaries({"name": maybe(names)})),
                                "secretRef": maybe(st.fixed_dictionaries({"name": maybe(names)})),
                                "prefix": maybe(st.text(max_size=4)),
                            },
                        )
                    ),
                    max_size=2,
                )
            ),
            "ports": maybe(st.lists(maybe(st.fixed_dictionaries({"containerPort": maybe(st.integers(0, 70000))})))),
        },
    )
)
labels = maybe(st.dictionaries(names, maybe(names), max_size=2))
pod_spec = maybe(
    st.fixed_dictionaries(
        {"containers": maybe(st.lists(container, max_size=2))},
        optional={
            "initContainers": maybe(st.lists(container, max_size=1)),
            "dnsPolicy": maybe(st.sampled_from(["ClusterFirst", "Default", "None", "ClusterFirstWithHostNet"])),
            "hostNetwork": maybe(st.booleans()),
            "dnsConfig": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "searches": maybe(st.lists(maybe(hosts), max_size=3)),
                        "nameservers": maybe(st.lists(maybe(st.text(max_size=8)), max_size=2)),
                        "options": maybe(
                            st.lists(
                                maybe(
                                    st.fixed_dictionaries(
                                        {"name": st.just("ndots"), "value": maybe(st.text(max_size=3))}
                                    )
                                )
                            )
                        ),
                    },
                )
            ),
        },
    )
)


def metadata() -> st.SearchStrategy[Any]:
    return maybe(
        st.fixed_dictionaries(
            {"name": maybe(names)}, optional={"namespace": maybe(names), "labels": labels, "annotations": labels}
        )
    )


workload = st.fixed_dictionaries(
    {
        "apiVersion": st.just("apps/v1"),
        "kind": st.sampled_from(["Deployment", "StatefulSet", "DaemonSet", "Pod", "Job", "CronJob", "ReplicaSet"]),
        "metadata": metadata(),
        "spec": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "replicas": maybe(st.integers(0, 3)),
                    "selector": maybe(st.fixed_dictionaries({"matchLabels": labels})),
                    "template": maybe(st.fixed_dictionaries({"metadata": metadata(), "spec": pod_spec})),
                    "containers": maybe(st.lists(container, max_size=2)),
                    "jobTemplate": maybe(
                        st.fixed_dictionaries(
                            {
                                "spec": maybe(
                                    st.fixed_dictionaries({"template": st.fixed_dictionaries({"spec": pod_spec})})
                                )
                            }
                        )
                    ),
                },
            )
        ),
    }
)
service = st.fixed_dictionaries(
    {
        "apiVersion": st.just("v1"),
        "kind": st.just("Service"),
        "metadata": metadata(),
        "spec": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "selector": labels,
                    "clusterIP": maybe(st.sampled_from(["None", "10.0.0.1", ""])),
                    "type": maybe(st.sampled_from(["ClusterIP", "ExternalName", "NodePort"])),
                    "externalName": maybe(hosts),
                    "ports": maybe(
                        st.lists(
                            maybe(
                                st.fixed_dictionaries(
                                    {"port": maybe(st.integers(0, 70000))},
                                    optional={"targetPort": maybe(st.integers(0, 70000) | names), "name": maybe(names)},
                                )
                            ),
                            max_size=2,
                        )
                    ),
                },
            )
        ),
    }
)
config = st.fixed_dictionaries(
    {
        "apiVersion": st.just("v1"),
        "kind": st.sampled_from(["ConfigMap", "Secret"]),
        "metadata": metadata(),
    },
    optional={"data": maybe(st.dictionaries(names, maybe(values), max_size=3)), "stringData": junk},
)
policy = st.fixed_dictionaries(
    {
        "apiVersion": st.just("networking.k8s.io/v1"),
        "kind": st.just("NetworkPolicy"),
        "metadata": metadata(),
        "spec": maybe(
            st.fixed_dictionaries(
                {"podSelector": maybe(st.fixed_dictionaries({"matchLabels": labels}))},
                optional={
                    "policyTypes": maybe(st.lists(st.sampled_from(["Ingress", "Egress"]), max_size=2)),
                    "ingress": junk,
                    "egress": maybe(st.lists(maybe(st.fixed_dictionaries({"to": junk, "ports": junk})), max_size=2)),
                },
            )
        ),
    }
)
objects = st.lists(st.one_of(workload, service, config, policy), min_size=1, max_size=6)


def load_text(text: str, suffix: str = ".yaml") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"m{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            load_manifests([path])
        except ManifestError:
            pass


@FUZZ
@given(st.text(max_size=200))
@example("a: !!python/object:os.system {}")
@example("- &a [*a]")
@example("\ufeffkind: List\nitems: 3")
def test_any_text_loads_or_is_a_manifest_error(text: str):
    load_text(text)
    load_text(text, ".json")


@FUZZ
@given(st.lists(junk, max_size=3))
def test_any_yaml_values_load_or_are_a_manifest_error(docs: list[Any]):
    load_text(yaml.safe_dump_all(docs))


@FUZZ
@given(objects)
@example(
    [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "a"},
            "spec": {"template": {"spec": {"dnsConfig": []}}},
        }
    ]
)
def test_kubernetes_shaped_garbage_audits_without_crashing(docs: list[dict[str, Any]]):
    """Audited and rendered, or (when every object was skipped) the one error that says nothing was read."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.json").write_text(json.dumps({"kind": "List", "items": docs}))
        try:
            report = novadiag.audit(manifests=[tmp])
        except ManifestError as exc:
            assert "no Kubernetes object novadiag reads" in str(exc)
            return
    for fmt in ("json", "markdown", "table"):
        assert report.render(fmt)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"schema": st.just("novadiag.snapshot/v1")},
        optional={
            "source": junk,
            "objects": st.one_of(junk, st.dictionaries(st.sampled_from(["Pod", "Service", "Secret"]), junk)),
            "gaps": junk,
        },
    )
)
@example({"schema": "novadiag.snapshot/v1", "objects": {"Pod": 3}})
@example({"schema": "novadiag.snapshot/v1", "gaps": ["x"]})
@example({"schema": "novadiag.snapshot/v1", "gaps": None})
def test_any_snapshot_file_loads_or_is_a_config_error(doc: dict[str, Any]):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snap.json"
        path.write_text(json.dumps(doc))
        try:
            report = novadiag.audit(snapshot=path)
        except ConfigError:
            return
    assert report.render("json")


@FUZZ
@given(st.one_of(workload, service, config, policy))
@example({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {1: "x"}}})
@example({"kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": "80"}]}})
@example({"kind": "Service", "metadata": {"name": "a", "labels": {True: "x"}}})  # YAML keys: bool, null, float
@example({"kind": "Service", "metadata": {"name": "a", "labels": {"x": None}}, "spec": {"ports": [None]}})
def test_the_lean_shape_pass_agrees_with_the_walk_that_names_the_field(obj: dict[str, Any]):
    """``shape_problem`` trusts a yes/no pass and walks only on a no: the two must never disagree."""
    from novadiag.shapes import _COMMON_TREE, _TREES, _walk, _write_lean_pass

    tree = _TREES.get(obj["kind"], _COMMON_TREE)
    assert _write_lean_pass(tree)(obj) == (_walk(tree, obj, ()) is None)
