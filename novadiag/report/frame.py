"""pandas views of a Report: one row per edge, and the namespace × namespace matrix.

Columns are typed so that filters and group-bys work without surprises:
``status`` and the probe results are categoricals listing every possible value
(an empty category still shows in ``value_counts``), ``port`` is a nullable
``Int64`` (a host without a port is ``<NA>``, not ``nan`` in a float column),
names are pandas ``string`` columns, and ``probe_agrees`` is the nullable
``boolean`` (unknown when no probe ran). The status categories are in reading
order, broken first, so ``sort_values("status")`` puts what to fix on top.

This module is imported only when a user asks for a DataFrame, so that
``import novadiag`` never pays for pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import pandas as pd

from novadiag.model import BROKEN_STATUSES, DISPLAY_ORDER, Edge, ProbeConnect, ProbeDNS, ProbeHealth
from novadiag.report.core import Report
from novadiag.report.views import matrix_namespaces, namespace_counts

STATUS_DTYPE = pd.CategoricalDtype(categories=sorted(DISPLAY_ORDER, key=DISPLAY_ORDER.__getitem__))
_VERDICT_DTYPE = pd.CategoricalDtype(categories=["static", "probe"])
_PROBE_DNS_DTYPE = pd.CategoricalDtype(categories=list(get_args(ProbeDNS)))
_PROBE_CONNECT_DTYPE = pd.CategoricalDtype(categories=list(get_args(ProbeConnect)))
_PROBE_HEALTH_DTYPE = pd.CategoricalDtype(categories=list(get_args(ProbeHealth)))

MATRIX_TOTALS = ("broken", "total")

_Column = tuple[str, Any, Callable[[Edge], Any]]


def _meant_namespace(edge: Edge) -> str | None:
    meant = edge.target or edge.resolves_to
    return None if meant is None else meant.namespace


def _probe(field: str) -> Callable[[Edge], Any]:
    def get(edge: Edge) -> Any:
        if edge.probe is None:
            return None
        value = getattr(edge.probe, field)
        return ", ".join(value) if isinstance(value, tuple) else value

    return get


COLUMNS: tuple[_Column, ...] = (
    ("id", "string", lambda e: e.id),
    ("source_namespace", "string", lambda e: e.reference.namespace),
    ("source_kind", "string", lambda e: e.source.kind),
    ("source_name", "string", lambda e: e.source.name),
    ("container", "string", lambda e: e.reference.container),
    ("env", "string", lambda e: e.reference.env),
    ("origin", "string", lambda e: e.reference.origin),
    ("location", "string", lambda e: e.reference.location),
    ("reference", "string", lambda e: e.reference.reference),
    ("host", "string", lambda e: e.reference.host),
    ("port", "Int64", lambda e: e.reference.port),
    ("target_namespace", "string", _meant_namespace),
    ("target_name", "string", lambda e: None if (m := e.target or e.resolves_to) is None else m.name),
    ("resolves_namespace", "string", lambda e: None if e.resolves_to is None else e.resolves_to.namespace),
    ("resolves_name", "string", lambda e: None if e.resolves_to is None else e.resolves_to.name),
    ("status", STATUS_DTYPE, lambda e: e.status),
    ("broken", "bool", lambda e: e.broken),
    ("cross_namespace", "bool", lambda e: e.cross_namespace),
    ("detail", "string", lambda e: e.detail),
    ("fix", "string", lambda e: e.fix),
    ("init_container", "bool", lambda e: e.reference.init_container),
    ("verdict_from", _VERDICT_DTYPE, lambda e: e.verdict_from),
    ("predicted", STATUS_DTYPE, lambda e: e.predicted or e.status),
    ("probe_dns", _PROBE_DNS_DTYPE, _probe("dns")),
    ("probe_addresses", "string", _probe("addresses")),
    ("probe_answered_by", "string", _probe("answered_by")),
    ("probe_connect", _PROBE_CONNECT_DTYPE, _probe("connect")),
    ("probe_health", _PROBE_HEALTH_DTYPE, _probe("health")),
    ("probe_agrees", "boolean", _probe("agrees")),
    ("probe_error", "string", _probe("error")),
)
"""(name, dtype, getter) of every column of :func:`to_frame`, in order."""


def to_frame(report: Report) -> pd.DataFrame:
    """One row per edge, in report order; ``target_*`` is the Service meant (NA when none)."""
    data = {name: pd.Series([get(e) for e in report.edges], dtype=dtype) for name, dtype, get in COLUMNS}
    return pd.DataFrame(data)


def namespace_matrix(report: Report, *, status: str | None = None) -> pd.DataFrame:
    """Edge counts between namespaces.

    Args:
        status: None for the long form: one row per (source, target) namespace
            pair that has edges, one int column per status plus ``broken`` and
            ``total``. A status name, ``"broken"`` or ``"total"`` for the square
            form: sources as rows, targets as columns, that count in each cell
            (zero where no edge). Targets outside the cluster are ``(external)``,
            names that match no Service ``(unknown)``.
    """
    long = _long_matrix(report)
    if status is None:
        return long
    if status not in long.columns:
        allowed = ", ".join([*STATUS_DTYPE.categories, *MATRIX_TOTALS])
        raise ValueError(f"unknown status {status!r}; choose one of {allowed}")
    names = matrix_namespaces(namespace_counts(report.edges))
    sources = [n for n in names if n in set(long.index.get_level_values("source"))]
    square = long[status].unstack("target", fill_value=0).reindex(index=sources, columns=names, fill_value=0)
    square.index.name, square.columns.name = "source", "target"
    return square.astype("int64")


def _long_matrix(report: Report) -> pd.DataFrame:
    counts = namespace_counts(report.edges)
    statuses = list(STATUS_DTYPE.categories)
    rank = {ns: i for i, ns in enumerate(matrix_namespaces(counts))}
    rows = []
    for (source, target), by_status in sorted(counts.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        row = [by_status.get(s, 0) for s in statuses]
        broken = sum(n for s, n in by_status.items() if s in BROKEN_STATUSES)
        rows.append([source, target, *row, broken, sum(row)])
    frame = pd.DataFrame(rows, columns=["source", "target", *statuses, *MATRIX_TOTALS])
    frame = frame.astype({c: "int64" for c in [*statuses, *MATRIX_TOTALS]})
    return frame.set_index(["source", "target"])
