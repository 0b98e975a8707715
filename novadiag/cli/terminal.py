"""What only a terminal gets: rich's tables with colours, and a progress display while a cluster is read.

Kept apart so that nothing else in the CLI imports rich: a file, a pipe or a
CI log gets plain text (:mod:`novadiag.report.plaintable`, and
:func:`novadiag.netpol.view.plain_policy_lines` for ``novadiag policies``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from novadiag.netpol.view import (
    NONE_CELL,
    POLICY_COLUMNS,
    closing_line,
    namespace_title,
    policy_rows,
    unselected_line,
)
from novadiag.outputs import visible
from novadiag.report.table import print_report

if TYPE_CHECKING:
    from novadiag.netpol.view import NamespacePolicies, PolicyView
    from novadiag.report.core import Report


def print_table(report: Report, *, all_edges: bool = False) -> None:
    # markup=False: names, env values and messages come from the cluster; "[/]" or "[link=...]" in
    # one must print as text, not crash rich or style the terminal.
    print_report(_visible_report(report), Console(highlight=False, markup=False), all_edges=all_edges)


def print_policies(view: PolicyView) -> None:
    """``novadiag policies`` on a terminal: one table per namespace, allowed edges green, denied magenta."""
    console = Console(highlight=False, markup=False)
    for ns in view.namespaces:
        if ns.policies:
            console.print(_policy_table(ns, view.edges))
        else:
            console.print(Text(visible(namespace_title(ns)), style="bold"))
        unselected = unselected_line(ns)
        if unselected is not None:
            console.print(Text(visible(unselected), style="yellow"))
    console.print(Text(closing_line(view)))


def _policy_table(ns: NamespacePolicies, labels: dict[str, str]) -> Table:
    table = Table(title=visible(namespace_title(ns)), title_justify="left")
    table.add_column(POLICY_COLUMNS[0], no_wrap=True)
    table.add_column(POLICY_COLUMNS[1], no_wrap=True)
    table.add_column(POLICY_COLUMNS[2], overflow="fold", max_width=40)
    table.add_column(POLICY_COLUMNS[3], overflow="fold", min_width=30)
    table.add_column(POLICY_COLUMNS[4], overflow="fold", min_width=30)
    for name, types, selects, allows, denies in policy_rows(ns, labels):
        allowed, denied = _edge_cell(allows, "green"), _edge_cell(denies, "magenta")
        table.add_row(visible(name), types, visible(selects), allowed, denied)
    return table


def _edge_cell(text: str, style: str) -> Text:
    return Text(NONE_CELL, style="dim") if text == NONE_CELL else Text(visible(text), style=style)


@contextmanager
def progress_bar(*, enabled: bool) -> Iterator[tuple[Any, Any]]:
    """Progress on stderr while listing and probing; nothing when not a TTY or for files."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None, None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("listing the cluster…", total=None)

        def listing(kind: str, count: int) -> None:
            bar.update(task, description=f"listing the cluster: {kind} ({count} objects)")

        def probing(c: dict[str, int]) -> None:
            bar.update(
                task,
                description=(
                    f"probing: {c['created']}/{c['total']} pods created, "
                    f"{c['running']} running, {c['done']} done, {c['failed']} failed"
                ),
            )

        yield listing, probing


def _visible_report(report: Report) -> Report:
    """The report with every string the table shows passed through :func:`novadiag.outputs.visible`."""
    return dataclasses.replace(
        report,
        edges=tuple(_visible_fields(e) for e in report.edges),
        findings=tuple(_visible_fields(f) for f in report.findings),
        gaps=tuple(_visible_fields(g) for g in report.gaps),
    )


def _visible_fields(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, tuple):
        return tuple(_visible_fields(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _visible_fields(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value
