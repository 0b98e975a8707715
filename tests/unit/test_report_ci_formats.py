"""CI-native report formats and reports of large clusters, as their readers use them.

SARIF is validated against the schema and its locations checked against the
manifest lines a code-scanning tool would annotate; GitHub workflow commands
are parsed as the runner parses them; CSV is read back with the csv module,
JSON Lines line by line; the streamed JSON must be the same document the
library builds. ``--only broken`` and the table's default are checked through
the real command line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

import novadiag
from benchmarks.generate import SIZES, generate_objects
from novadiag.cli import main
from novadiag.manifests import load_manifests
from novadiag.model import Edge, ObjectRef, Reference, SourceInfo
from novadiag.report import Report
from novadiag.report.html import MAX_TABLE_ROWS
from novadiag.report.jsonstream import json_chunks
from novadiag.snapshot import build_snapshot

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
COMMANDS = Path(__file__).parent / "data" / "commands"
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-2.1.0-subset.schema.json"
CONTENT = "nova-backend/deployment/user-service/user-service/CONTENT_SERVICE_URL/content-service:9081"
MEDIA = "nova-backend/deployment/user-service/user-service/MEDIA_SERVICE_URL/media-service:9082"


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository checkout holding the Nova manifests under ``k8s/``, as the working directory."""
    shutil.copytree(NOVA, tmp_path / "k8s")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def nova(repo: Path) -> Report:
    return novadiag.audit(manifests=["k8s"])


def line_of(path: Path, pattern: str) -> int:
    """The 1-based line of the only line matching ``pattern``, read from the file itself."""
    found = [n for n, text in enumerate(path.read_text().splitlines(), 1) if re.search(pattern, text)]
    assert len(found) == 1, found
    return found[0]


def hostile_report() -> Report:
    evil = ObjectRef("Deployment", "evil", "web")
    ref = Reference(evil, "web", "EVIL", "value", "=cmd|x\n\x9b31m\u202e", "=evil\u202e", 80)
    broken = Edge(ref, "unknown-target", "no Service\n::error::forged \x1b[31m", fix="a,b:c%0A")
    return Report(source=SourceInfo(kind="manifests"), edges=(broken,))


# --- where a broken edge was written -------------------------------------------------------------


def test_an_env_value_edge_carries_the_line_of_its_env_entry(nova: Report, repo: Path) -> None:
    doc = nova.edge_dict(nova.edge(CONTENT))
    assert doc["source"]["file"] == "k8s/nova-backend.yaml"
    assert doc["source"]["line"] == line_of(repo / "k8s" / "nova-backend.yaml", r"- name: CONTENT_SERVICE_URL$")


def test_an_env_from_edge_carries_the_line_of_its_config_map_key(nova: Report, repo: Path) -> None:
    doc = nova.edge_dict(nova.edge(MEDIA))
    assert nova.edge(MEDIA).reference.origin == "envFrom:configMap/user-service-config"
    assert doc["source"]["line"] == line_of(repo / "k8s" / "nova-backend.yaml", r"^\s+MEDIA_SERVICE_URL:")


KEY_REFS = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: urls, namespace: shop}
    data:
      LOG_LEVEL: info
      cart: "http://cart:80"
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      template:
        spec:
          containers:
            - name: web
              envFrom:
                - prefix: UP_
                  configMapRef: {name: urls}
              env:
                - name: PLAIN
                  value: "http://pay:80"
                - name: CART_URL
                  valueFrom:
                    configMapKeyRef: {name: urls, key: cart}
"""


def test_key_references_point_at_the_key_and_values_at_the_env_entry(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(KEY_REFS)
    report = novadiag.audit(manifests=[tmp_path / "shop.yaml"])
    lines = {e.reference.env: report.edge_dict(e)["source"]["line"] for e in report.edges}
    key = line_of(tmp_path / "shop.yaml", r"^\s+cart:")
    assert lines == {"PLAIN": line_of(tmp_path / "shop.yaml", r"- name: PLAIN$"), "CART_URL": key, "UP_cart": key}


JSON_DEPLOYMENT = """\
{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "shop", "annotations": {"note": "{\\"env\\": [{\\"name\\": \\"X\\"}]}"}},
  "spec": {
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "initContainers": [{"name": "wait", "command": ["sh", "-c", "until nc -z cart 80; do sleep 1; done"]}],
        "containers": [
          {
            "image": "web:1",
            "args": [
              "--verbose",
              "--db-url=postgres://db:5432/shop"
            ],
            "env": [
              {"name": "LOG_LEVEL", "value": "info"},
              {
                "value": "http://payment:80",
                "name": "PAYMENT_URL"
              },
              {"name": "CART_URL", "valueFrom": {"configMapKeyRef": {"name": "urls", "key": "cart"}}}
            ],
            "name": "web"
          }
        ]
      }
    }
  }
}
"""

JSON_LIST = """\
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap",
   "metadata": {"name": "urls", "namespace": "shop"},
   "data": {
     "LOG_LEVEL": "debug",
     "c\\u0061rt": "http://cart:80"
   }},
  {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "creds", "namespace": "shop"},
   "stringData": {
     "DB_URL": "postgres://app:hunter2@orders-db:5432/orders"}},
  {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
   "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {"containers": [
     {"name": "report",
      "env": [{"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "DB_URL"}}},
              {"name": "MAIL_URL", "value": "smtp://mail:25"}]}]}}}}}},
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
   "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]}},
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart", "namespace": "shop"},
   "spec": {"selector": {"app": "cart"}, "ports": [{"port": 80}]}}
]}
"""

JSON_LINES = {
    ("web", "PAYMENT_URL"): ("shop/web.json", 22),  # the entry's "name", though written after its value
    ("web", "args[1]"): ("shop/web.json", 16),
    ("web", "line 1"): ("shop/web.json", 10),  # a one-line sh -c script: the line of its item
    ("web", "CART_URL"): ("shop/config.json", 6),  # the ConfigMap key, written with an escape
    ("report", "DB_URL"): ("shop/config.json", 10),  # the Secret key (never its value)
    ("report", "MAIL_URL"): ("shop/config.json", 15),  # a CronJob's env, five keys down
}
"""Counted by hand in the two files above."""


@pytest.fixture()
def json_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Report:
    """A checkout with a JSON Deployment and a JSON List under ``shop/``, audited from its root."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "web.json").write_text(JSON_DEPLOYMENT)
    (tmp_path / "shop" / "config.json").write_text(JSON_LIST)
    monkeypatch.chdir(tmp_path)
    return novadiag.audit(manifests=["shop"])


def test_json_manifests_carry_the_line_of_each_env_entry_argument_and_key(json_shop: Report) -> None:
    found = {}
    for edge in json_shop.edges:
        source = json_shop.edge_dict(edge)["source"]
        found[(edge.reference.workload.name, edge.reference.env or edge.reference.location)] = (
            source["file"],
            source["line"],
        )
    assert found == JSON_LINES


def test_sarif_and_github_point_at_the_json_line(json_shop: Report) -> None:
    doc = json.loads(json_shop.render("sarif"))
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    places = [r["locations"][0]["physicalLocation"] for r in doc["runs"][0]["results"]]
    regions = {(p["artifactLocation"]["uri"], p["region"]["startLine"]) for p in places}
    assert regions == set(JSON_LINES.values())
    annotations = [line for line in json_shop.render("github").splitlines() if line.startswith("::error file=")]
    assert any(a.startswith("::error file=shop/web.json,line=22,") and "PAYMENT_URL" in a for a in annotations)
    assert any(a.startswith("::error file=shop/config.json,line=10,") and "DB_URL" in a for a in annotations)
    assert "hunter2" not in json.dumps(doc) and "hunter2" not in "".join(annotations)


def test_a_json_manifest_on_one_line_points_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    path.write_text(json.dumps(json.loads(JSON_DEPLOYMENT)))
    report = novadiag.audit(manifests=[path])
    assert {report.edge_dict(e)["source"]["line"] for e in report.edges} == {1}


def test_a_json_manifest_nested_past_the_walked_paths_is_read_and_located(tmp_path: Path) -> None:
    """150 levels of ``spec`` (within the loader's bound, past the line scan's): read, the workload's line kept."""
    deep: dict[str, object] = {"containers": [{"name": "c", "env": [{"name": "U", "value": "http://x:80"}]}]}
    for _ in range(150):
        deep = {"spec": deep}
    doc = {"kind": "Deployment", "metadata": {"name": "deep", "namespace": "x"}, "spec": {"template": deep}}
    path = tmp_path / "deep.json"
    path.write_text("\n" + json.dumps(doc, indent=1))
    snapshot = load_manifests([path])
    assert snapshot.extra["source_lines"][("Deployment", "x", "deep")].line == 3  # its first member, "kind"


@pytest.mark.parametrize("sort_keys", [False, True], ids=["as-written", "keys-sorted-as-kubectl-prints"])
def test_json_lines_match_the_yaml_lines_member_for_member(tmp_path: Path, sort_keys: bool) -> None:
    """The Nova scenario and the command shapes as JSON: the same places recorded, each on the line that writes it."""
    yaml_files = [*sorted(NOVA.glob("*.yaml")), *sorted(COMMANDS.glob("*.yaml"))]
    docs = [d for f in yaml_files for d in yaml.safe_load_all(f.read_text()) if d]
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2, sort_keys=sort_keys))
    text = path.read_text().splitlines()
    from_json = load_manifests([path]).extra["source_lines"]
    from_yaml = load_manifests(yaml_files).extra["source_lines"]
    assert from_json.keys() == from_yaml.keys()
    for key, lines in from_json.items():
        expected = from_yaml[key]
        assert (lines.env.keys(), lines.keys.keys(), lines.items.keys()) == (
            expected.env.keys(),
            expected.keys.keys(),
            expected.items.keys(),
        ), key
        for (_container, var), n in lines.env.items():
            assert f'"name": {json.dumps(var)}' in text[n - 1], (key, var)
        for name, n in lines.containers.items():
            assert f'"name": {json.dumps(name)}' in text[n - 1], (key, name)
        for n in lines.items.values():  # an argument: the line holds that one string
            assert isinstance(json.loads(text[n - 1].strip().rstrip(",")), str), (key, n)
        for data_key, n in lines.keys.items():
            assert text[n - 1].lstrip().startswith(f"{json.dumps(data_key)}:"), (key, data_key)
        assert '"kind": ' in text[lines.line - 1] or '"apiVersion": ' in text[lines.line - 1], key


def test_edges_read_from_a_snapshot_file_carry_no_file(nova: Report, repo: Path) -> None:
    assert nova.snapshot is not None
    nova.snapshot.save(repo / "snap.json")
    again = novadiag.audit(snapshot=str(repo / "snap.json"))
    assert "file" not in again.edge_dict(again.edge(CONTENT))["source"]


def test_an_alias_that_contains_itself_on_the_container_path_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("kind: Deployment\nmetadata: {name: a, namespace: x}\nspec: &s\n  template:\n    spec: *s\n")
    with pytest.raises(novadiag.ManifestError, match="a YAML alias contains itself"):
        novadiag.audit(manifests=[path])


# --- SARIF -------------------------------------------------------------------------------------------


def test_sarif_validates_and_points_each_broken_edge_at_its_line(nova: Report, repo: Path) -> None:
    doc = json.loads(nova.render("sarif"))
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    results = doc["runs"][0]["results"]
    assert len(results) == len(nova.broken) == 5
    by_edge = {r["partialFingerprints"]["novadiagEdge/v1"]: r for r in results}
    content = by_edge[CONTENT]
    assert content["ruleId"] == "dns-unresolvable"
    physical = content["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "k8s/nova-backend.yaml"
    assert physical["region"]["startLine"] == line_of(
        repo / "k8s" / "nova-backend.yaml", r"- name: CONTENT_SERVICE_URL$"
    )
    rule_ids = {rule["id"] for rule in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rule_ids


def test_sarif_of_a_cluster_edge_names_the_workload_without_a_file() -> None:
    doc = json.loads(hostile_report().render("sarif"))
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    (location,) = doc["runs"][0]["results"][0]["locations"]
    assert "physicalLocation" not in location
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "Deployment evil/web"


def test_the_subset_schema_rejects_what_sarif_forbids(nova: Report) -> None:
    doc = json.loads(nova.render("sarif"))
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))


# --- GitHub workflow commands ------------------------------------------------------------------------


def test_github_annotates_each_broken_edge_on_its_file_and_line(nova: Report, repo: Path) -> None:
    lines = nova.render("github").splitlines()
    errors = [line for line in lines if line.startswith("::error file=")]
    assert len(errors) == 5
    line = line_of(repo / "k8s" / "nova-backend.yaml", r"- name: CONTENT_SERVICE_URL$")
    assert any(e.startswith(f"::error file=k8s/nova-backend.yaml,line={line},") and CONTENT in e for e in errors)
    route = line_of(repo / "k8s" / "nova-gateway.yaml", r"^kind: HTTPRoute$") - 1  # the document starts at apiVersion
    assert any(e.startswith(f"::error file=k8s/nova-gateway.yaml,line={route},") for e in errors)
    assert lines[-1].startswith("::error title=novadiag::BROKEN: 5 of 26 edges")


def test_github_commands_cannot_be_forged_by_cluster_text() -> None:
    text = hostile_report().render("github")
    assert len(text.splitlines()) == 2  # one annotation and the summary: the newline did not start a command
    assert "%0A::error::forged" in text
    assert "a,b:c%250A" in text


# --- CSV and JSON Lines --------------------------------------------------------------------------------


def test_csv_has_one_row_per_edge_with_file_and_line(nova: Report, repo: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(nova.render("csv"))))
    assert len(rows) == len(nova.edges)
    row = next(r for r in rows if r["id"] == CONTENT)
    assert (row["status"], row["file"]) == ("dns-unresolvable", "k8s/nova-backend.yaml")
    assert row["line"] == str(line_of(repo / "k8s" / "nova-backend.yaml", r"- name: CONTENT_SERVICE_URL$"))


def test_csv_cells_from_the_cluster_are_not_formulas() -> None:
    (row,) = list(csv.DictReader(io.StringIO(hostile_report().render("csv"))))
    assert row["reference"].startswith("'=cmd") and row["host"].startswith("'=evil")


def test_jsonl_is_one_contract_edge_per_line(nova: Report) -> None:
    lines = nova.render("jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [nova.edge_dict(e) for e in nova.edges]


# --- the streamed JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [False, True])
def test_streamed_json_is_the_documented_document(nova: Report, indent: bool) -> None:
    text = b"".join(json_chunks(nova, indent=indent)).decode()
    assert json.loads(text) == json.loads(json.dumps(nova.to_dict()))
    assert (text.count("\n") > 100) is indent


def test_streamed_json_of_a_report_without_edges_parses() -> None:
    empty = Report(source=SourceInfo(kind="manifests"), edges=())
    for indent in (False, True):
        assert json.loads(b"".join(json_chunks(empty, indent=indent)))["edges"] == []


def test_streamed_json_escapes_terminal_controls_that_json_allows() -> None:
    text = b"".join(json_chunks(hostile_report())).decode()
    assert "\x9b" not in text and "\u202e" not in text and "\x1b" not in text
    assert json.loads(text)["edges"][0]["host"] == "=evil\u202e"


def test_cli_json_is_compact_unless_indent_is_asked(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--manifests", "k8s", "--format", "json"]) == 1
    compact = capsys.readouterr().out
    assert main(["audit", "--manifests", "k8s", "--format", "json", "--indent"]) == 1
    indented = capsys.readouterr().out
    assert compact.count("\n") == 1 and indented.count("\n") > 100
    assert json.loads(compact) == json.loads(indented)


# --- only broken edges -------------------------------------------------------------------------------


def test_only_broken_lists_broken_edges_and_keeps_the_whole_counts(repo: Path) -> None:
    assert main(["audit", "--manifests", "k8s", "--only", "broken", "-o", "r.json"]) == 1
    doc = json.loads((repo / "r.json").read_text())
    assert {e["status"] for e in doc["edges"]} == {"dns-unresolvable", "blocked"}
    assert doc["summary"]["edges"] == 26 and doc["summary"]["by_status"]["ok"] == 20
    assert (doc["summary"]["listed"], doc["summary"]["only"]) == (5, "broken")


def test_broken_only_keeps_the_verdict_of_the_whole_report(nova: Report) -> None:
    only = nova.broken_only()
    assert only.edges == nova.broken and only.summary()["edges"] == len(nova.edges)
    assert (only.ok, only.complete) == (nova.ok, nova.complete)
    assert only.broken_only().summary() == only.summary()


# --- table and Markdown at scale ----------------------------------------------------------------------


def test_the_table_lists_broken_edges_and_counts_the_rest(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["audit", "--manifests", "k8s"])
    default = capsys.readouterr().out
    main(["audit", "--manifests", "k8s", "--all"])
    every = capsys.readouterr().out
    assert "CONTENT_SERVICE_URL" in default and "SPRING_DATASOURCE_URL" not in default
    assert "21 other edge(s) by namespace (--all lists them)" in default
    assert "SPRING_DATASOURCE_URL" in every and "other edge(s)" not in every


def test_markdown_counts_the_rest_unless_all_edges(nova: Report) -> None:
    default = nova.render("markdown")
    assert "21 other edges by namespace" in default and "All 26 edges" not in default
    assert "All 26 edges" in nova.render("markdown", all_edges=True)


# --- HTML of a large cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large() -> Report:
    """The benchmark's size S: 50 namespaces, about 7,000 edges, a few hundred broken."""
    snapshot = build_snapshot(generate_objects(SIZES["S"], seed=0), SourceInfo(kind="snapshot"))
    return novadiag.audit(snapshot=snapshot)


def test_html_of_a_large_cluster_draws_namespaces_and_pages_its_table(large: Report) -> None:
    page = large.render("html")
    assert len(large.edges) > MAX_TABLE_ROWS
    assert "components: drawn as their 50 namespaces." in page
    assert len(re.findall(r"<tr[^>]* data-status=", page)) == MAX_TABLE_ROWS
    assert f"Edges ({MAX_TABLE_ROWS} of {len(large.edges)})" in page
    assert len(page) < 6_000_000
