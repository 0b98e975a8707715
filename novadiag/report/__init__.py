"""The audit result and the ways to look at it.

:class:`Report` is plain data (edges, findings, gaps) plus the dependency
graph; every output format is a function of it, so the table a person reads,
the JSON a CI script parses and the DataFrame a notebook explores never
disagree. Renderers live in the sibling modules and are imported lazily so
that ``import novadiag`` stays cheap.
"""

from novadiag.report.core import AUDIT_SCHEMA, Report

__all__ = ["AUDIT_SCHEMA", "Report"]
