"""The suite's layout: what a module's name and directory promise is what it holds.

The test directories are not packages, so pytest imports each module by its
basename: two modules with one name stop the whole run at collection ("import
file mismatch"). A helper named ``test_*`` is collected as a module of no tests
and reads as one. And ``tests/lab/`` drives novadiag against a running lab
reached through its kubeconfig, so it needs nothing of the lab but ``Lab``;
tests of the lab's own parts live in ``tests/emulator/``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)


def _defines_tests(tree: ast.Module) -> bool:
    """A ``test_*`` function, or a ``Test*`` class holding one, at module level."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test") and _defines_tests(
            ast.Module(body=node.body, type_ignores=[])
        ):
            return True
    return False


def _lab_imports(tree: ast.Module) -> list[str]:
    """What a module imports from ``novadiag.lab``, as ``module:name``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("novadiag.lab"):
            found += [f"{node.module}:{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("novadiag.lab")]
    return found


def test_every_test_module_defines_tests() -> None:
    empty = [
        p.relative_to(TESTS).as_posix()
        for p in _test_modules()
        if not _defines_tests(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert empty == [], f"helpers named like test modules (rename them, e.g. *_support.py): {empty}"


def test_test_module_basenames_are_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in _test_modules():
        by_name[path.name].append(path.relative_to(TESTS).as_posix())
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert clashes == {}, f"pytest cannot import two test modules of one basename: {clashes}"


def test_tests_of_novadiag_against_the_lab_use_only_its_public_lab() -> None:
    reaching_in = {
        p.relative_to(TESTS).as_posix(): imports
        for p in sorted((TESTS / "lab").glob("*.py"))
        if (imports := [i for i in _lab_imports(ast.parse(p.read_text(encoding="utf-8"))) if i != "novadiag.lab:Lab"])
    }
    assert reaching_in == {}, f"tests of the lab's parts belong in tests/emulator/: {reaching_in}"
