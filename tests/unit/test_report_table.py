"""The terminal table: narrow consoles wrap cells, they never crop a row (the fix is the text to copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

import novadiag
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
