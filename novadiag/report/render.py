"""Format dispatch: one name per output format, chosen by flag or file extension."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novadiag.errors import ConfigError

if TYPE_CHECKING:
    from novadiag.report.core import Report

FORMATS = ("table", "json", "jsonl", "csv", "sarif", "github", "markdown", "html", "junit", "dot", "mermaid", "svg")
EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".sarif": "sarif",
    ".txt": "table",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xml": "junit",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".svg": "svg",
}


def format_for_path(path: str | Path) -> str | None:
    """The format a file name implies (``report.json`` → json), or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def render(report: Report, fmt: str, **options: Any) -> str:
    target = _RENDERERS.get(fmt)
    if target is None:
        raise ConfigError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module, name = target.split(":")
    renderer: Callable[..., str] = getattr(importlib.import_module(module), name)
    return renderer(report, **options)


# Imported on use: a JSON run in CI should not pay for the HTML template or the SVG layout.
_RENDERERS = {
    "table": "novadiag.report.table:render_table",
    "json": "novadiag.report.jsonstream:render_json",
    "jsonl": "novadiag.report.tabular:render_jsonl",
    "csv": "novadiag.report.tabular:render_csv",
    "sarif": "novadiag.report.sarif:render_sarif",
    "github": "novadiag.report.github:render_github",
    "markdown": "novadiag.report.markdown:render_markdown",
    "html": "novadiag.report.html:render_html",
    "junit": "novadiag.report.junit:render_junit",
    "dot": "novadiag.report.graphviz:render_dot",
    "mermaid": "novadiag.report.graphviz:render_mermaid",
    "svg": "novadiag.report.svg:render_svg",
}
assert set(_RENDERERS) == set(FORMATS)
