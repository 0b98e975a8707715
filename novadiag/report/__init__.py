"""The audit result and the ways to look at it.

:class:`Report` is plain data (edges, findings, gaps) plus the dependency
graph; every output format is a function of it, so the table a person reads,
the JSON a CI script parses and the DataFrame a notebook explores never
disagree. Renderers live in the sibling modules and are imported lazily so
that ``import novadiag`` stays cheap. The package itself names the Report on
first use too: the CLI reads the format names in :mod:`novadiag.report.render`
to build its parser, and ``novadiag --version`` should not load the model.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs more than the rest of this module
if TYPE_CHECKING:
    from typing import Any

    from novadiag.report.core import AUDIT_SCHEMA, Report


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'novadiag.report' has no attribute {name!r}")
    return getattr(importlib.import_module("novadiag.report.core"), name)


__all__ = ["AUDIT_SCHEMA", "Report"]
