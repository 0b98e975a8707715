"""Pytest collectors for criteria files: one test item per criterion.

A failing criterion shows its summary and the offending objects or edges, one
per line — never a traceback — because that list is what the person reading
CI needs; ``reportinfo`` points at the criterion's line in its file.

Every text pytest prints or writes to JUnit XML from a criterion passes
through :func:`~novadiag.redaction.redact`: a criteria file may hold a URL
with a password or a ``?token=``, and that text reaches CI logs, which are
read by more people than the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from novadiag.criteria.builtin import REGISTRY, Outcome, evaluate
from novadiag.criteria.context import CheckContext
from novadiag.criteria.files import CriteriaFileError, CriterionSpec, load_criteria_file
from novadiag.errors import NovadiagError
from novadiag.redaction import redact

CONTEXT_KEY = pytest.StashKey[CheckContext]()
MAX_LISTED = 25


class CriterionFailed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary)
        self.outcome = outcome


class CriterionError(Exception):
    """A criterion could not be evaluated (bad input, cluster not reachable)."""


class CriteriaFile(pytest.File):
    def collect(self) -> Iterator[CriterionItem]:
        for spec in load_criteria_file(self.path):
            yield CriterionItem.from_parent(self, name=spec.name, spec=spec)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CriteriaFileError):
            return redact(str(excinfo.value))
        return str(super().repr_failure(excinfo))


class CriterionItem(pytest.Item):
    def __init__(self, *, spec: CriterionSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.add_marker(pytest.mark.novadiag)

    def runtest(self) -> None:
        context = self.config.stash[CONTEXT_KEY]
        definition = REGISTRY[self.spec.check]
        try:
            outcome = evaluate(definition, self.spec.params, context)
        except (NovadiagError, ValueError) as exc:
            raise CriterionError(str(exc)) from exc
        if not outcome.passed:
            raise CriterionFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return "\n".join(redact(line) for line in self._failure_lines(excinfo).splitlines())

    def _failure_lines(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
        where = f"{self.spec.path}:{self.spec.line}"
        if isinstance(excinfo.value, CriterionFailed):
            outcome = excinfo.value.outcome
            lines = [f"{where}: {self.spec.check} failed: {outcome.summary}"]
            lines += [f"  - {o}" for o in outcome.offenders[:MAX_LISTED]]
            if len(outcome.offenders) > MAX_LISTED:
                lines.append(f"  … and {len(outcome.offenders) - MAX_LISTED} more")
            return "\n".join(lines)
        if isinstance(excinfo.value, CriterionError):
            return f"{where}: {self.spec.check} could not be checked: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.spec.line - 1, f"{self.spec.check}: {self.spec.name}"
