"""Loading lab scenarios: bundled ones by name, directories by path, and every way one can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from novadiag.errors import ScenarioError
from novadiag.lab.scenario import list_scenarios, load_scenario

NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  ports: [{{port: 80}}]\n"


def make_scenario(root: Path, scenario_yaml: str | None = None, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if scenario_yaml is not None:
        (root / "scenario.yaml").write_text(scenario_yaml)
    for name, text in files.items():
        (root / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (root / name.replace("__", "/")).write_text(text)
    return root


def test_bundled_nova_loads_by_name() -> None:
    scenario = load_scenario("nova")
    kinds = {o["kind"] for o in scenario.objects}
    assert scenario.name == "nova"
    assert {"Namespace", "Service", "Deployment", "StatefulSet", "IngressClass"} <= kinds
    assert sum(1 for o in scenario.objects if o["kind"] == "Namespace") == 10  # 8 Nova, kafka, ingress-nginx


def test_list_scenarios_names_the_bundled_ones_with_a_description() -> None:
    infos = {info.name: info for info in list_scenarios()}
    assert "nova" in infos
    assert infos["nova"].description


def test_unknown_name_lists_the_bundled_scenarios() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'novaa' \(bundled: .*nova"):
        load_scenario("novaa")


def test_a_directory_without_scenario_file_is_a_scenario_of_its_manifests(tmp_path: Path) -> None:
    text = NS.format(name="a") + "---\n" + SVC.format(name="s", ns="a")
    root = make_scenario(tmp_path / "mini", None, **{"a.yaml": text})
    scenario = load_scenario(root)
    assert scenario.name == "mini"
    assert [o["kind"] for o in scenario.objects] == ["Namespace", "Service"]
    assert scenario.dns.records == {} and scenario.faults == () and scenario.unpullable_images == frozenset()


def test_scenario_file_settings_are_loaded(tmp_path: Path) -> None:
    root = make_scenario(
        tmp_path / "s",
        "name: custom\ndescription: |\n  two\n  lines\nmanifests: [objs]\n"
        "faults: [{verb: list, latency_ms: 50}]\n"
        "rbac: {deny: [{verbs: [list], namespaces: [a], resources: [secrets]}]}\n"
        "dns:\n  records: {DB.Example.com.: 127.0.0.53}\n"
        "  rewrites: [{from: a.example.com, to: s.a.svc.cluster.local}]\n"
        "images: {unpullable: [private/image:1]}\n",
        **{"objs__ns.yaml": NS.format(name="a"), "ignored.yaml": NS.format(name="b")},
    )
    scenario = load_scenario(str(root))
    assert scenario.name == "custom" and scenario.description == "two lines"
    assert [o["metadata"]["name"] for o in scenario.objects] == ["a"]
    assert scenario.faults[0]["latency_ms"] == 50
    assert scenario.rbac["deny"][0]["namespaces"] == ["a"]
    assert dict(scenario.dns.records) == {"db.example.com": "127.0.0.53"}
    assert scenario.dns.rewrites == (("a.example.com", "s.a.svc.cluster.local"),)
    assert scenario.unpullable_images == frozenset({"private/image:1"})
    assert scenario.path == root.resolve()


def test_kind_list_documents_are_expanded(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n"
    scenario = load_scenario(make_scenario(tmp_path / "l", None, **{"l.yaml": text}))
    assert [o["metadata"]["name"] for o in scenario.objects] == ["x"]


def test_generator_builds_objects_from_a_novadiag_function(tmp_path: Path) -> None:
    root = make_scenario(
        tmp_path / "g",
        "manifests: []\ngenerator:\n  function: novadiag.lab.generate:generate_manifests\n"
        "  params: {namespaces: 2, workloads_per_namespace: 1}\n",
    )
    scenario = load_scenario(root)
    assert sum(1 for o in scenario.objects if o["kind"] == "Namespace") == 2


def test_network_policies_default_to_enforce_and_nova_stores_its_own(tmp_path: Path) -> None:
    assert load_scenario(make_scenario(tmp_path / "plain", "name: plain\n")).network_policies == "enforce"
    assert load_scenario("nova").network_policies == "store"


@pytest.mark.parametrize(
    ("scenario_yaml", "files", "message"),
    [
        ("name: x\nrbac: [\n", {}, r"scenario.yaml: invalid YAML at line 3"),
        ("- a\n", {}, r"scenario.yaml: must be a mapping"),
        ("nmae: x\n", {}, r"unknown key\(s\) nmae"),
        ("manifests: [../elsewhere]\n", {}, r"leaves the scenario"),
        ("manifests: [missing]\n", {}, r"'missing' not found"),
        ("dns: {records: {db.example.com: 10.0.0.5}}\n", {}, r"db.example.com: 10.0.0.5 is outside 127.0.0.0/8"),
        ("dns: {records: {db.example.com: localhost}}\n", {}, r"'localhost' is not an IPv4 address"),
        ("dns: {rewrites: [{from: a.example.com}]}\n", {}, r"needs 'from' and 'to'"),
        ("faults: {latency: 1}\n", {}, r"faults must be a list"),
        ("faults: [{latency: 1}]\n", {}, r"faults: unknown fault rule fields: \['latency'\]"),
        ("rbac: {deny: [{verbs: list}]}\n", {}, r"scenario.yaml: rbac: "),
        ("images: {unpullable: private}\n", {}, r"images.unpullable must be a list"),
        ("generator: {function: os:system}\n", {}, r"generator.function must be 'novadiag"),
        ("network_policies: drop\n", {}, r"scenario.yaml: network_policies must be one of enforce, store, got 'drop'"),
        (None, {"bad.yaml": "kind: [\n"}, r"bad.yaml: invalid YAML at line"),
        (None, {"bad.yaml": "apiVersion: v1\nmetadata: {name: x}\n"}, r"bad.yaml \(document 1\): object without"),
        (
            None,
            {"bad.yaml": "---\n---\napiVersion: v1\nkind: Service\n"},
            r"document 2\): Service without metadata.name",
        ),
        (
            None,
            {"a.yaml": SVC.format(name="s", ns="a"), "b.yaml": SVC.format(name="s", ns="a")},
            r"Service a/s is defined twice",
        ),
    ],
)
def test_invalid_scenarios_name_the_file_and_the_problem(
    tmp_path: Path, scenario_yaml: str | None, files: dict[str, str], message: str
) -> None:
    root = make_scenario(tmp_path / "bad", scenario_yaml, **files)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(root)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bomb.yaml", ALIAS_BOMB, r"bomb.yaml: YAML aliases expand to .* values"),
        ("deep.json", "[" * 5000 + "]" * 5000, r"deep.json: (document nested|invalid JSON)"),
        ("deep.yaml", "a: " + "[" * 300 + "]" * 300 + "\n", r"deep.yaml: document nested deeper than 200"),
        ("huge.json", '{"n": ' + "9" * 5000 + "}", r"huge.json: invalid JSON: a number too long"),
        ("huge.yaml", "n: " + "9" * 5000 + "\n", r"huge.yaml: invalid YAML: a value of a date, number"),
        ("latin1.yaml", "kind: Service\nmetadata: {name: caf\xe9}\n", r"latin1.yaml: not UTF-8 text"),
    ],
)
def test_hostile_manifests_are_refused_in_one_line_naming_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    (root / name).write_bytes(content.encode("latin-1"))
    with pytest.raises(ScenarioError, match=message) as refused:
        load_scenario(root)
    assert "\n" not in str(refused.value) and str(root / name) in str(refused.value)


def test_a_hostile_scenario_file_is_refused_too(tmp_path: Path) -> None:
    root = make_scenario(tmp_path / "s", "description: " + "9" * 5000 + "\nname: &n [*n]\n")
    with pytest.raises(ScenarioError, match=r"scenario.yaml: "):
        load_scenario(root)
    (root / "scenario.yaml").write_text(ALIAS_BOMB)
    with pytest.raises(ScenarioError, match=r"scenario.yaml: YAML aliases expand"):
        load_scenario(root)


def test_a_path_that_is_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="scenario directory not found"):
        load_scenario(str(tmp_path / "nope"))


def test_the_bundled_generated_scenario_builds_a_larger_cluster() -> None:
    from novadiag.lab.scenario import list_scenarios as bundled
    from novadiag.lab.scenario import load_scenario as load

    assert {"nova", "generated"} <= {info.name for info in bundled()}
    objects = load("generated").objects
    assert sum(o["kind"] == "Namespace" for o in objects) == 20
    assert sum(o["kind"] in ("Deployment", "StatefulSet") for o in objects) == 100
