"""The public surface: what `import novadiag` promises."""

from __future__ import annotations

import importlib
import pkgutil

import novadiag


def test_all_is_sorted_and_complete():
    assert novadiag.__all__ == sorted(novadiag.__all__)
    for name in novadiag.__all__:
        assert getattr(novadiag, name) is not None


def test_audit_stays_a_function_after_every_submodule_is_imported():
    for module in pkgutil.walk_packages(novadiag.__path__, "novadiag."):
        if module.name.startswith("novadiag.lab.") or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    assert callable(novadiag.audit)
    assert novadiag.audit.__module__ == "novadiag.pipeline"


def test_every_error_derives_from_the_root():
    for name in novadiag.__all__:
        obj = getattr(novadiag, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, novadiag.NovadiagError), name
