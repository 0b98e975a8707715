"""Accumulating steps: ids, dependencies and phases in one place.

Strategies add steps in the order they think of them; the builder numbers
them and finally sorts them by phase (stable), which is the order every runner
executes: the API runner, the bash script and the runbook all walk the same list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from novadiag.planning.operations import Operation
from novadiag.planning.values import PHASES, Phase, Step


class StepBuilder:
    """Collects :class:`Step` records; :meth:`build` returns them in execution order."""

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._new_ids: dict[str, str] = {}

    def add(
        self,
        phase: Phase,
        title: str,
        operation: Operation,
        *,
        depends_on: Iterable[str | None] = (),
        rollback: Iterable[Operation] = (),
        fixes: Iterable[str] = (),
        warning: str | None = None,
        target_namespace: str | None = None,
        requires_allow_delete: bool = False,
    ) -> str:
        step_id = f"s{len(self._steps) + 1:03d}"
        deps = tuple(dict.fromkeys(d for d in depends_on if d))
        self._steps.append(
            Step(
                id=step_id,
                phase=phase,
                title=title,
                operation=operation,
                target_namespace=target_namespace,
                depends_on=deps,
                rollback=tuple(rollback),
                fixes=tuple(dict.fromkeys(fixes)),
                warning=warning,
                requires_allow_delete=requires_allow_delete,
            )
        )
        return step_id

    def ids(self, phase: Phase) -> list[str]:
        return [s.id for s in self._steps if s.phase == phase]

    def build(self) -> tuple[Step, ...]:
        """Steps sorted by phase (stable) and renumbered in that order (see :meth:`remap`)."""
        rank = {p: i for i, p in enumerate(PHASES)}
        ordered = sorted(self._steps, key=lambda s: rank[s.phase])
        self._new_ids = {s.id: f"s{i + 1:03d}" for i, s in enumerate(ordered)}
        return tuple(
            replace(s, id=self._new_ids[s.id], depends_on=tuple(self._new_ids[d] for d in s.depends_on))
            for s in ordered
        )

    def remap(self, ids: Iterable[str]) -> tuple[str, ...]:
        """Ids handed out by :meth:`add`, as :meth:`build` renumbered them."""
        return tuple(self._new_ids.get(i, i) for i in ids)
