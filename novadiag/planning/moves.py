"""What a consolidation computes, handed from one pass to the next (``consolidate.py``, ``blue_green.py``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from novadiag.index import ClusterIndex
from novadiag.model import ObjectRef
from novadiag.planning.edits import Edits
from novadiag.planning.layout import Layout
from novadiag.planning.netpol import PodMap
from novadiag.planning.values import PlanOptions, Rewrite
from novadiag.snapshot import Snapshot


@dataclass
class Moves:
    """Everything the consolidation computed, handed from one pass to the next."""

    snapshot: Snapshot
    options: PlanOptions
    layout: Layout
    index: ClusterIndex
    copies: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    final_index: ClusterIndex | None = None
    copy_edits: Edits | None = None
    kept_edits: Edits | None = None
    rewrites: list[Rewrite] = field(default_factory=list)
    edge_map: dict[str, str | None] = field(default_factory=dict)
    needs: dict[ObjectRef, set[ObjectRef]] = field(default_factory=lambda: defaultdict(set))
    needs_retired: dict[ObjectRef, set[ObjectRef]] = field(default_factory=lambda: defaultdict(set))
    problems: dict[str, str] = field(default_factory=dict)
    pods: PodMap | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def into(self) -> str:
        return self.layout.into
