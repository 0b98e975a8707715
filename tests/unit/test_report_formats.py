"""Every report format, rendered from the Nova scenario and from hostile cluster content.

A report is read by a person, pasted into a pull request and parsed by CI, so
each format is checked the way its reader would use it: Markdown is parsed as
GFM, JUnit validated against the schema CI readers expect, SVG parsed as XML,
and none of them may carry a secret value or let cluster content become markup.
"""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from markdown_it import MarkdownIt

import novadiag
from novadiag.cli import main
from novadiag.model import Edge, Finding, Gap, ObjectRef, Reference, SourceInfo
from novadiag.planning.values import plan_repr_html
from novadiag.report import Report
from novadiag.report.graphviz import dot_quote, mermaid_text
from novadiag.report.html import content_security_policy, edge_repr_html
from novadiag.report.html_template import SCRIPT
from novadiag.report.markdown import cell, code
from novadiag.report.plaintable import render_plain_table
from novadiag.report.render import FORMATS, format_for_path
from novadiag.report.svg import Figure

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
JUNIT_XSD = Path(__file__).parent / "data" / "junit.xsd"
SECRET = "NOVA-SECRET-"
SVG_NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def nova() -> Report:
    return novadiag.audit(manifests=[NOVA])


def hostile_report() -> Report:
    """Cluster content written to break out of every format."""
    evil = ObjectRef("Deployment", "evil", "web")
    ref = Reference(
        workload=evil,
        container="web",
        env="EVIL|ENV",
        origin="value",
        reference='x|y\nz <script>alert(1)</script> `tick` "q" \\ \x1b[31m',
        host="<script>alert(1)</script>",
        port=80,
    )
    broken = Edge(
        reference=ref,
        status="unknown-target",
        detail="no Service | named\nthat <b>here</b>",
        fix="fixed|value",
    )
    ok_ref = Reference(evil, "web", "OK_URL", "value", "http://api:80", "api", 80)
    ok = Edge(ok_ref, "ok", "api resolves", target=ObjectRef("Service", "evil", "api"))
    return Report(
        source=SourceInfo(kind="manifests"),
        edges=(broken, ok),
        findings=(Finding("warning", "odd", "a | finding\nwith <i>markup</i>"),),
        gaps=(Gap("Secret", "evil", "forbidden \x07 by RBAC"),),
    )


# --- secrets and dispatch ----------------------------------------------------------------------


def test_the_scenario_manifests_do_hold_secret_values() -> None:
    assert any(SECRET in p.read_text() for p in NOVA.glob("*.yaml"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_format_carries_a_secret_value(nova: Report, fmt: str) -> None:
    text = nova.render(fmt)
    assert text.strip()
    assert SECRET not in text


def test_notebook_views_and_dataframes_carry_no_secret_value(nova: Report) -> None:
    shown = [nova._repr_html_(), nova.draw()._repr_svg_(), nova.to_frame().to_csv(), nova.namespace_matrix().to_csv()]
    shown += [edge_repr_html(e) for e in nova.edges]
    assert not [text for text in shown if SECRET in text]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("r.md", "markdown"), ("r.html", "html"), ("r.xml", "junit"), ("r.dot", "dot"), ("r.mmd", "mermaid")],
)
def test_output_file_extension_picks_the_format(name: str, fmt: str) -> None:
    assert format_for_path(name) == fmt


def test_cli_writes_an_html_report_when_the_output_ends_in_html(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code_ = main(["audit", "--manifests", str(NOVA), "-o", str(out)])
    assert code_ == 1  # broken edges
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_unknown_format_names_the_choices(nova: Report) -> None:
    with pytest.raises(novadiag.ConfigError, match="markdown, html, junit"):
        nova.render("pdf")


# --- Markdown ----------------------------------------------------------------------------------


def _gfm_tables(text: str) -> list[list[list[str]]]:
    """Each table of the rendered Markdown as rows of cell texts (header row first)."""
    html = MarkdownIt("commonmark").enable("table").render(text)
    tables = []
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        tables.append([re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows])
    return tables


def test_markdown_lists_each_broken_edge_with_its_fix(nova: Report) -> None:
    broken = _gfm_tables(nova.render("markdown"))[1]
    assert broken[0] == ["status", "source", "slot", "host", "fix", "why"]
    fixes = sorted(row[4] for row in broken[1:])
    assert fixes == [  # the values to write, scheme and path kept; a routing object's fix says what to add
        "<code>add ReferenceGrant in nova-content: from HTTPRoute in nova-gateway to Service content-service</code>",
        "<code>content-service.nova-content:9081</code>",
        "<code>dns:///auth-service.nova-auth:9083</code>",
        "<code>http://feed-service.nova-feed:8089</code>",
        "<code>http://media-service.nova-media:9082</code>",
    ]


ROUTE_SLOT = "httproute:rules[0].backendRefs[0]"
"""Nova's HTTPRoute edge: no env var names its host, so the column shows where the route does."""


def _column_over(header: list[str], row: list[str], value: str) -> str:
    """The header of the column whose cell in ``row`` holds ``value``."""
    (index,) = [i for i, text in enumerate(row) if value in text]
    return header[index]


def _boxed_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].replace("┃", "│").split("│")]


def test_the_slot_column_is_named_for_what_it_shows_in_every_table(nova: Report) -> None:
    """``slot``, not ``env``: the cell holds an env var, ``args[1]``, ``line 3`` or, here, a route's rule."""
    plain = render_plain_table(nova)
    section = plain[plain.index("namespace nova-gateway") :].splitlines()
    header, row = section[1], next(line for line in section if ROUTE_SLOT in line)
    assert header[row.index(ROUTE_SLOT) :].split()[0] == "slot"

    boxed = nova.render("table")
    lines = boxed[boxed.index("namespace nova-gateway") :].splitlines()
    head = next(line for line in lines if line.startswith("┃"))
    route = next(line for line in lines if ROUTE_SLOT in line)
    assert _column_over(_boxed_cells(head), _boxed_cells(route), ROUTE_SLOT) == "slot"

    broken = _gfm_tables(nova.render("markdown"))[1]
    route_row = next(r for r in broken if any(ROUTE_SLOT in c for c in r))
    assert _column_over(broken[0], route_row, ROUTE_SLOT) == "slot"

    page = nova.render("html")
    heads = re.findall(r'<th scope="col"><button type="button">(.*?)</button></th>', page)
    row_html = next(r for r in re.findall(r"<tr[ >].*?</tr>", page, flags=re.S) if f">{ROUTE_SLOT}</td>" in r)
    assert _column_over(heads, re.findall(r"<td[^>]*>(.*?)</td>", row_html, flags=re.S), ROUTE_SLOT) == "slot"

    summary = nova._repr_html_()
    assert re.findall(r"<th>(.*?)</th>", summary)[:3] == ["status", "source", "slot"]
    one = edge_repr_html(next(e for e in nova.edges if e.reference.slot == ROUTE_SLOT))
    assert f"<tr><td>slot</td><td><code>{ROUTE_SLOT}</code>" in one
    assert "env" in next(csv.reader(io.StringIO(nova.render("csv"))))  # the CSV contract keeps its env column


def test_markdown_matrix_marks_the_broken_namespace_pairs(nova: Report) -> None:
    matrix = _gfm_tables(nova.render("markdown"))[2]
    header = matrix[0]
    backend = next(row for row in matrix if row[0] == "<strong>nova-backend</strong>")
    assert backend[header.index("nova-content")] == "1 (<strong>1 broken</strong>)"
    assert backend[header.index("kafka")] == "4"


def test_markdown_cells_keep_pipes_and_newlines_inside_the_cell() -> None:
    tables = _gfm_tables(hostile_report().render("markdown"))
    for table in tables:
        assert {len(row) for row in table} == {len(table[0])}
    broken_row = tables[1][1]
    assert broken_row[2] == "<code>EVIL|ENV</code>"
    assert broken_row[5] == "no Service | named<br>that &lt;b&gt;here&lt;/b&gt;"


def test_markdown_never_passes_html_through() -> None:
    rendered = MarkdownIt("commonmark").enable("table").render(hostile_report().render("markdown"))
    assert "<script>" not in rendered and "<b>here" not in rendered and "<i>markup" not in rendered


def test_markdown_code_span_survives_backticks() -> None:
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert cell("a|b\nc") == "a\\|b<br>c"


MARKDOWN_IN_A_FRESH_INTERPRETER = """
import sys
from novadiag.cli import main
code = main(sys.argv[1:])
print(sorted({m.split(".")[0] for m in sys.modules} & {"networkx", "pandas"}), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "file"])
def test_a_markdown_report_loads_neither_networkx_nor_pandas(tmp_path: Path, to_file: bool) -> None:
    """Markdown draws no graph and builds no frame: the matrix and the listings are plain data."""
    out = tmp_path / "report.md"
    argv = ["audit", "--manifests", str(NOVA), *(["-o", str(out)] if to_file else ["--format", "markdown"])]
    run = subprocess.run(
        [sys.executable, "-c", MARKDOWN_IN_A_FRESH_INTERPRETER, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr  # Nova has broken edges
    text = out.read_text(encoding="utf-8") if to_file else run.stdout
    assert text.startswith("# novadiag audit: 5 broken edges\n")
    assert "\n## Namespace matrix\n" in text  # drawn from report.views, as the HTML page's matrix is
    assert run.stderr.splitlines()[-1] == "[]"


# --- HTML --------------------------------------------------------------------------------------


def test_html_renders_hostile_values_as_text() -> None:
    page = hostile_report().render("html")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>here</b>" not in page and "<i>markup</i>" not in page
    assert page.count("<script") == 1


def test_html_loads_nothing_and_allows_only_its_own_script(nova: Report) -> None:
    page = nova.render("html")
    assert not re.search(r"""\b(src|href)\s*=|url\((?!#)|@import""", page)
    assert f'content="{content_security_policy()}"' in page
    assert "default-src 'none'" in content_security_policy()
    assert f"<script>{SCRIPT}</script>" in page


def test_html_lists_every_edge_once_broken_first(nova: Report) -> None:
    statuses = re.findall(r'<tr(?: class="broken")? data-status="([a-z-]+)"', nova.render("html"))
    assert len(statuses) == len(nova.edges) == 26
    assert statuses[:5] == ["dns-unresolvable"] * 4 + ["blocked"]


def test_html_fix_first_section_names_every_fix(nova: Report) -> None:
    page = nova.render("html")
    section = page[page.index('id="fix"') : page.index('id="graph"')]
    for edge in nova.broken:
        assert f"<code>{html.escape(edge.fix or '')}</code>" in section


# --- JUnit -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def test_junit_validates_against_the_schema_ci_readers_use(nova: Report, junit_schema: xmlschema.XMLSchema) -> None:
    junit_schema.validate(nova.render("junit"))


def test_junit_has_one_testcase_per_edge_and_a_failure_per_broken_edge(nova: Report) -> None:
    root = ET.fromstring(nova.render("junit"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("26", "5", "0")
    assert len(root.findall("testsuite/testcase")) == 26
    assert len(root.findall("testsuite/testcase/failure")) == 5
    backend = root.find("testsuite[@name='nova-backend']")
    assert backend is not None and (backend.get("tests"), backend.get("failures")) == ("15", "4")
    assert sum(int(s.get("tests", "0")) for s in root) == 26


def test_junit_failure_says_the_status_the_fix_and_why(nova: Report) -> None:
    root = ET.fromstring(nova.render("junit"))
    case = root.find("testsuite/testcase[@name='CONTENT_SERVICE_URL -> content-service:9081']")
    assert case is not None and case.get("classname") == "nova-backend.user-service"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "dns-unresolvable"
    assert failure.get("message", "").startswith("dns-unresolvable (fix: content-service.nova-content:9081): ")
    assert "does not resolve from nova-backend" in (failure.text or "")


def test_junit_skips_external_hosts(nova: Report) -> None:
    root = ET.fromstring(nova.render("junit"))
    skipped = root.findall("testsuite/testcase/skipped")
    assert [s.get("message") for s in skipped] == [
        "external host api.staging.nova.example.com: outside the cluster, not checked"
    ]


def test_junit_stays_valid_xml_with_control_characters_and_markup(junit_schema: xmlschema.XMLSchema) -> None:
    text = hostile_report().render("junit")
    junit_schema.validate(text)
    root = ET.fromstring(text)
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "<script>alert(1)</script>" in (failure.text or "")
    gap = root.find("testsuite[@name='novadiag']/testcase/skipped")
    assert gap is not None and gap.get("message") == "Secret in evil not read: forbidden \ufffd by RBAC"


# --- SVG, DOT, Mermaid -------------------------------------------------------------------------


def _svg(report: Report) -> ET.Element:
    return ET.fromstring(report.render("svg"))


def test_svg_draws_a_box_per_namespace_and_the_broken_links_red(nova: Report) -> None:
    svg = _svg(nova)
    boxes = [g.get("data-ns") for g in svg.iter("{http://www.w3.org/2000/svg}g") if "nd-ns" in g.get("class", "")]
    assert len(boxes) == 10 and "(external)" in boxes
    links = svg.find("s:g[@class='nd-links']", SVG_NS)
    assert links is not None
    assert sum("nd-broken" in p.get("class", "") for p in links) == 5


def test_svg_places_callers_left_of_what_they_call(nova: Report) -> None:
    svg = _svg(nova)
    x = {
        g.get("data-ns"): float(g.find("s:rect", SVG_NS).get("x"))  # type: ignore[union-attr,arg-type]
        for g in svg.iter("{http://www.w3.org/2000/svg}g")
        if g.get("data-ns")
    }
    assert x["nova-gateway"] < x["nova-backend"] < x["nova-feed"] < x["nova-content"]


def test_svg_keeps_hostile_names_as_text() -> None:
    svg = _svg(hostile_report())
    labels = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "<script>alert(1)</script>" in labels
    assert not list(svg.iter("script")) and not list(svg.iter("{http://www.w3.org/2000/svg}script"))


def test_svg_of_an_empty_report_says_so() -> None:
    assert "no edges to draw" in Report(source=SourceInfo(kind="manifests"), edges=()).render("svg")


def test_dot_has_a_cluster_per_namespace_and_red_labelled_broken_edges(nova: Report) -> None:
    dot = nova.render("dot")
    assert dot.count("subgraph cluster_") == 10
    broken = [line for line in dot.splitlines() if "->" in line and 'color="#cf222e"' in line]
    assert len(broken) == 5 and any('label="CONTENT_SERVICE_URL"' in line for line in broken)
    assert any('label="httproute:rules[0].backendRefs[0]"' in line for line in broken)


def test_dot_quoting_keeps_quotes_backslashes_and_newlines_inside_the_string() -> None:
    assert dot_quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")
@pytest.mark.parametrize("which", ["nova", "hostile"])
def test_graphviz_accepts_the_dot_output(nova: Report, which: str) -> None:
    report = nova if which == "nova" else hostile_report()
    done = subprocess.run(["dot", "-Tsvg"], input=report.render("dot"), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_mermaid_labels_broken_edges_with_their_env_var(nova: Report) -> None:
    mermaid = nova.render("mermaid")
    assert mermaid.startswith("flowchart LR\n")
    assert re.search(r'n\d+ -->\|"CONTENT_SERVICE_URL"\| n\d+', mermaid)
    assert mermaid.count("subgraph ") == 10


def test_mermaid_labels_cannot_end_the_label_or_carry_markup() -> None:
    assert mermaid_text('a"b<i>c</i>|d\ne#35;`') == "a'b‹i›c‹/i›|d e＃35;ˋ"


# --- notebook views ----------------------------------------------------------------------------


def test_report_repr_html_shows_the_verdict_and_each_fix(nova: Report) -> None:
    shown = nova._repr_html_()
    assert "5 of 26 edges broken" in shown
    for edge in nova.broken:
        assert f"<code>{html.escape(edge.fix or '')}</code>" in shown


def test_edge_repr_html_escapes_cluster_content() -> None:
    shown = edge_repr_html(hostile_report().edges[0])
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "<code>fixed|value</code>" in shown


def test_draw_returns_an_svg_figure_that_saves(nova: Report, tmp_path: Path) -> None:
    figure = nova.draw()
    assert isinstance(figure, Figure)
    assert figure._repr_svg_().startswith("<svg ")
    figure.save(tmp_path / "graph.svg")
    ET.parse(tmp_path / "graph.svg")


def test_plan_repr_html_lists_the_steps_and_the_verification(nova: Report) -> None:
    from novadiag.planning import plan

    shown = plan_repr_html(plan(nova, "rewrite"))
    assert "novadiag plan: rewrite" in shown
    assert "broken edges 5 -&gt; 0" in shown


def test_a_plan_shows_itself_in_one_line_and_as_a_notebook_table(nova: Report) -> None:
    """Displaying a consolidation plan printed every step, operation and manifest (141,042 characters)."""
    plan = novadiag.plan(
        nova, "consolidate", into="nova-prod", keep=["kafka", "nova-staging"], prefer=["nova-backend/postgres"]
    )
    shown = repr(plan)
    assert len(shown) < 200 and "\n" not in shown
    assert shown.startswith("<Plan consolidate into nova-prod: ") and f"{len(plan.steps)} steps" in shown
    assert "OK: broken edges" in shown
    html = plan._repr_html_()
    assert "novadiag plan: consolidate into nova-prod" in html and len(html) < 20_000
