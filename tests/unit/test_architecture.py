"""The walls between the rooms: the package's import graph, read with ``ast``.

import-linter (``lint-imports`` in .ci/run, contracts in pyproject.toml) checks
the layers; this test checks what it does not say: no circle between any two
modules, counting every import, those inside functions and under
``TYPE_CHECKING`` included; no module imports the package itself (its
``__init__`` names everything, so ``from novadiag import X`` inside the package
is an import of every room); and an import inside a function is there only to
defer a heavy dependency, named below with its reason.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

import novadiag.model
from novadiag.model import STATUSES

PACKAGE = Path(__file__).resolve().parents[2] / "novadiag"

UPWARD = {("novadiag.model", "novadiag.report.html")}
"""Imports that run up the layers, excluded from the circle check: Jupyter asks an Edge for its own HTML."""

DEFERRED = {
    ("novadiag.console", "novadiag.cli"): "the CLI's imports run after the Ctrl-C handler is installed",
    ("novadiag.cli", "logging"): "the root log handler is for the kubernetes client; an audit of files loads neither",
    ("novadiag.cli.check", "pytest"): "pytest and its plugins load only for `novadiag check`",
    ("novadiag.cli.audit", "novadiag.cli.live"): "the kubernetes client and the probe runner: live clusters only",
    ("novadiag.cli.audit", "novadiag.cli.terminal"): "rich: only a terminal gets its table",
    ("novadiag.cli.policies_command", "novadiag.cli.terminal"): "rich: only a terminal gets the policy tables",
    ("novadiag.pipeline", "novadiag.kube"): "the kubernetes client: an audit of files never loads it",
    ("novadiag.pipeline", "novadiag.listing"): "imports the kubernetes client, as above",
    ("novadiag.pipeline", "novadiag.probing"): "the probe runner imports the kubernetes client, as above",
    ("novadiag.pipeline", "novadiag.routing"): "the routing judges: only a snapshot with routing objects loads them",
    ("novadiag.pipeline", "novadiag.routing.dataplane"): "where routing edges are probed from: live probes only",
    ("novadiag.report.core", "networkx"): "the graph is built for drawings and notebooks only",
    ("novadiag.report.core", "novadiag.graph"): "networkx, as above",
    ("novadiag.configformats", "tomllib"): "a TOML parser loads only when a TOML file is read",
    ("novadiag.source", "novadiag.lab"): "the lab's servers and scenario loader load only to run a scenario",
    ("novadiag.criteria.context", "novadiag.pipeline"): "the kubernetes client; the plugin loads in every pytest run",
    ("novadiag.criteria.context", "novadiag.kube"): "the kubernetes client; the plugin loads in every pytest run",
    ("novadiag.criteria.context", "novadiag.probing.groups"): "the kubernetes client, as above",
    ("novadiag.criteria.context", "novadiag.probing.runner"): "the kubernetes client, as above",
    ("novadiag.lab.container", "grpc"): "grpc loads in a lab pod only when it serves a grpc port",
    ("novadiag.lab.container", "grpc_health.v1"): "as grpc",
    ("novadiag.model", "novadiag.report.html"): "the one upward import (UPWARD)",
}
"""(module, imported) -> why the import waits for the function to run."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in the module, with the novadiag module it names (a name imported from a package is the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(name, alias.name, child.lineno, inside)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    yield Import(name, target if target in known else base, child.lineno, inside)
            yield from visit(child, inside)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")), False)


@cache
def all_imports() -> tuple[Import, ...]:
    found = modules()
    known = set(found)
    return tuple(i for name, path in found.items() for i in imports_of(name, path, known))


def import_graph(imports: tuple[Import, ...]) -> nx.DiGraph:
    known = set(modules())
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for i in imports:
        if i.imported in known and i.imported != i.importer and (i.importer, i.imported) not in UPWARD:
            graph.add_edge(i.importer, i.imported)
    return graph


def deferred_key(i: Import) -> tuple[str, str]:
    known = set(modules())
    target = i.imported
    while target not in known and target not in {t for _, t in DEFERRED} and "." in target:
        target = target.rpartition(".")[0]
    return i.importer, target


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph(all_imports())
    circles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert circles == []


def test_no_module_imports_the_package_itself() -> None:
    offenders = [f"{i.importer}:{i.line}" for i in all_imports() if i.imported == "novadiag" != i.importer]
    assert offenders == []


def test_imports_inside_functions_only_defer_a_heavy_dependency() -> None:
    inside = [i for i in all_imports() if i.in_function]
    unlisted = sorted(f"{i.importer}:{i.line} imports {i.imported}" for i in inside if deferred_key(i) not in DEFERRED)
    assert unlisted == []


def test_each_deferred_import_says_why_where_it_is() -> None:
    """The reason is written next to the import too, for the reader of the module."""
    found = modules()
    silent = []
    for i in all_imports():
        if not i.in_function or deferred_key(i) not in DEFERRED:
            continue
        lines = found[i.importer].read_text(encoding="utf-8").splitlines()
        around = lines[max(0, i.line - 4) : i.line]
        if not any("#" in line for line in around):
            silent.append(f"{i.importer}:{i.line}")
    assert silent == []


def test_every_allowed_deferral_is_still_there() -> None:
    """A stale entry would let the next function-level import in under its name."""
    used = {deferred_key(i) for i in all_imports() if i.in_function}
    assert set(DEFERRED) - used == set()


def test_the_lab_imports_nothing_of_novadiag_but_its_errors_and_bounded_reading() -> None:
    allowed = {"novadiag.errors", "novadiag.boundedio"}
    outside = sorted(
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in all_imports()
        if i.importer.startswith("novadiag.lab")
        and i.imported.startswith("novadiag")
        and not i.imported.startswith("novadiag.lab")
        and i.imported not in allowed
    )
    assert outside == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from novadiag.pipeline import audit\n", [("novadiag.pipeline", True)]),
        ("from novadiag import errors\n", [("novadiag.errors", False)]),
        ("from novadiag import audit\n", [("novadiag", False)]),
        ("if TYPE_CHECKING:\n    from novadiag.report.core import Report\n", [("novadiag.report.core", False)]),
    ],
)
def test_the_reader_counts_every_kind_of_import(tmp_path: Path, source: str, expected: list[tuple[str, bool]]) -> None:
    """The checker itself: function-level, package-level and TYPE_CHECKING imports all count."""
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    found = list(imports_of("novadiag.probe", path, set(modules())))
    assert [(i.imported, i.in_function) for i in found] == expected


def test_the_status_display_order_is_written_once_next_to_the_statuses() -> None:
    """The table, the HTML page, the graph, the notebook views and the DataFrame rank statuses one way."""
    rankings = [
        name
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Dict)
        and {k.value for k in node.keys if isinstance(k, ast.Constant)} >= set(STATUSES)
        and all(isinstance(v, ast.Constant) and isinstance(v.value, int) for v in node.values)
    ]
    assert rankings == ["novadiag.model"]
    ranking = novadiag.model.DISPLAY_ORDER
    assert sorted(ranking, key=ranking.__getitem__)[-3:] == ["unverified", "ok", "external"]


def test_one_name_one_meaning_across_the_rooms() -> None:
    """No two modules share a file name and no two exception classes a name: the name says the room."""
    files = Counter(path.name for path in modules().values() if path.name != "__init__.py")
    errors = Counter(
        node.name
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception"))
    )
    assert sorted(name for name, n in files.items() if n > 1) == []
    assert sorted(name for name, n in errors.items() if n > 1) == []


def test_only_the_source_module_and_the_cli_lab_commands_import_the_lab() -> None:
    """Where the data comes from is decided in novadiag.source; the pipeline, planner and criteria take a source."""
    importers = sorted(
        {
            i.importer
            for i in all_imports()
            if i.imported.startswith("novadiag.lab") and not i.importer.startswith("novadiag.lab")
        }
    )
    assert importers == ["novadiag.cli.lab", "novadiag.source"]
