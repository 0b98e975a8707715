"""Views of a Report that several renderers share: the namespace matrix and the order of edges.

Markdown, HTML, pandas, JUnit, SVG, DOT and Mermaid must never disagree about
which namespace an edge lands in, so that decision lives here, once, as plain
data (no pandas, no markup). An edge whose host reaches no Service still needs
a column in the matrix: external hosts go to ``(external)``, in-cluster-looking
names that match nothing go to ``(unknown)``.

Nothing here needs the dependency graph: the Markdown and JUnit reports import
this module and not :mod:`novadiag.report.drawing`, so they never load networkx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from novadiag.model import DISPLAY_ORDER, Edge, Status

EXTERNAL = "(external)"
UNKNOWN = "(unknown)"
PSEUDO_NAMESPACES = (EXTERNAL, UNKNOWN)


def target_namespace(edge: Edge) -> str:
    """The namespace of the Service the edge means, or a pseudo namespace when there is none."""
    meant = edge.target or edge.resolves_to
    if meant is not None:
        return meant.namespace or "default"
    return EXTERNAL if edge.status == "external" else UNKNOWN


def target_label(edge: Edge) -> str:
    """``namespace/name`` of the Service meant, or ``-``."""
    meant = edge.target or edge.resolves_to
    return f"{meant.namespace}/{meant.name}" if meant is not None else "-"


def host_port(edge: Edge) -> str:
    ref = edge.reference
    return ref.host if ref.port is None else f"{ref.host}:{ref.port}"


def sorted_edges(edges: Iterable[Edge]) -> list[Edge]:
    """Broken first, then by source namespace and id: the order every listing uses."""
    return sorted(edges, key=lambda e: (DISPLAY_ORDER[e.status], e.reference.namespace, e.id))


def namespace_counts(edges: Iterable[Edge]) -> dict[tuple[str, str], Counter[Status]]:
    """(source namespace, target namespace) → edge count by status."""
    counts: dict[tuple[str, str], Counter[Status]] = {}
    for edge in edges:
        key = (edge.reference.namespace, target_namespace(edge))
        counts.setdefault(key, Counter())[edge.status] += 1
    return counts


def matrix_namespaces(counts: dict[tuple[str, str], Counter[Status]]) -> list[str]:
    """Every namespace of the matrix, real ones sorted, pseudo ones last."""
    names = {ns for pair in counts for ns in pair}
    real = sorted(n for n in names if n not in PSEUDO_NAMESPACES)
    return real + [p for p in PSEUDO_NAMESPACES if p in names]
