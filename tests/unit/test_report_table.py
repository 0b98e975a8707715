"""The table: on a terminal, narrow consoles wrap cells and never crop a row (the fix is the text to copy);
in a file or a pipe, plain aligned text with the same sections and rows."""

from __future__ import annotations

from pathlib import Path

import pytest

import novadiag
from novadiag.cli import main
from novadiag.model import STATUSES
from novadiag.report.plaintable import render_plain_table
from novadiag.report.table import render_table

NOVA = str(Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests")
BOX_EDGES = set("│┃┓┫┩┤┛┘┐")


@pytest.fixture(scope="module")
def report() -> novadiag.Report:
    return novadiag.audit(manifests=[NOVA])


@pytest.mark.parametrize("width", [100, 120, 160, 200])
def test_no_row_is_cropped(report: novadiag.Report, width: int) -> None:
    rows = [line.rstrip() for line in render_table(report, width=width).splitlines() if line[:1] in "│┃┏┡└"]
    assert rows
    assert [row for row in rows if row[-1] not in BOX_EDGES] == []
    assert max(len(row) for row in rows) <= width


def test_a_file_wide_table_shows_each_fix_whole(report: novadiag.Report) -> None:
    text = render_table(report)
    fixes = {edge.fix for edge in report.broken if edge.fix and not edge.reference.routing}
    assert fixes and [fix for fix in fixes if f"→{fix}" not in text] == []
    # a routing object's fix is a sentence (the field or object to change), not a value to copy: it may fold
    assert "→add ReferenceGrant in nova-content" in text


def plain_titles(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("namespace ") and "edge(s)" in line]


def test_a_table_into_a_pipe_is_plain_text_with_every_fix_whole(
    report: novadiag.Report, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a terminal (a pipe, a CI log): aligned text without rich's boxes, broken rows, counts, summary last."""
    assert main(["audit", "--manifests", NOVA]) == 1
    out = capsys.readouterr().out
    assert set(out) & BOX_EDGES == set()
    assert [fix for fix in {e.fix for e in report.broken if e.fix} if f"→{fix}" not in out] == []
    assert "21 other edge(s) by namespace (--all lists them)" in out
    assert out.splitlines()[-1].startswith("BROKEN: 5 of 26 edges")


@pytest.mark.parametrize("all_edges", [False, True], ids=["default", "all"])
def test_the_plain_table_lists_what_the_terminal_table_lists(report: novadiag.Report, all_edges: bool) -> None:
    """Same sections in the same order, and with --all a row for every edge, as rich draws them."""
    rich_text = render_table(report, width=400, all_edges=all_edges)
    plain = render_plain_table(report, all_edges=all_edges)
    assert plain_titles(plain) == plain_titles(rich_text) != []
    rows = [line for line in plain.splitlines() if line.split("  ")[0] in STATUSES]
    assert len(rows) == (len(report.edges) if all_edges else len(report.broken))


def test_a_table_file_holds_what_the_pipe_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["audit", "--manifests", NOVA, "--all"])
    piped = capsys.readouterr().out
    main(["audit", "--manifests", NOVA, "--all", "-o", str(tmp_path / "report.txt")])
    assert (tmp_path / "report.txt").read_text(encoding="utf-8") == piped


def test_cluster_text_in_the_plain_table_cannot_drive_the_terminal(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\n"
        "spec:\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n"
        '      - name: api\n        env: [{name: "DB_URL\\e]0;owned\\a", value: "db:5432"}]\n',
        encoding="utf-8",
    )
    text = render_plain_table(novadiag.audit(manifests=[manifest]))
    assert "DB_URL\\u001b]0;owned\\u0007" in text
    assert "\x1b" not in text and "\x07" not in text
