"""Format dispatch: one name per output format, chosen by flag or file extension."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novadiag.errors import ConfigError

if TYPE_CHECKING:
    from novadiag.report.core import Report

FORMATS = ("table", "json")
EXTENSIONS = {".json": "json", ".txt": "table"}


def format_for_path(path: str | Path) -> str | None:
    """The format a file name implies (``report.json`` → json), or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def render(report: Report, fmt: str, **options: Any) -> str:
    renderer = _renderers().get(fmt)
    if renderer is None:
        raise ConfigError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderer(report, **options)


def _renderers() -> dict[str, Callable[..., str]]:
    from novadiag.report.table import render_table

    def render_json(report: Report, **_: Any) -> str:
        return report.to_json() + "\n"

    return {"table": render_table, "json": render_json}
