"""Criteria files (``*.novadiag.yaml``): parsed with line numbers, validated up front.

A criteria file is a list of criteria (or a mapping with a ``criteria`` list);
each entry names a built-in ``check`` and its parameters, and may give a
``name`` for the report::

    criteria:
      - name: zero pods in CrashLoopBackOff
        check: no-crashloop
        namespaces: [nova-prod]

Problems (YAML errors, unknown checks, unknown or mistyped parameters) are
reported as ``file:line: message`` at collection time, so a typo cannot make a
criterion silently disappear from CI.

A criterion's ``name`` becomes its pytest test id, printed on every run and
written to JUnit XML, so URL credentials in it (userinfo, ``?token=``) are
masked here, once, before pytest sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from novadiag.criteria.builtin import validate
from novadiag.errors import ConfigError
from novadiag.redaction import redact

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RESERVED = frozenset({"check", "name", "id"})


class CriteriaFileError(ConfigError):
    """A criteria file that cannot be used; the message is ``file:line: problem``."""


@dataclass(frozen=True)
class CriterionSpec:
    check: str
    name: str
    params: dict[str, Any]
    path: str
    line: int


def load_criteria_file(path: str | Path) -> list[CriterionSpec]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=_LOADER)
    except OSError as exc:
        raise CriteriaFileError(f"{p}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CriteriaFileError(f"{p}: not a criteria file (not UTF-8 text)") from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise CriteriaFileError(f"{p}:{line}: invalid YAML: {exc.problem}") from exc
    if root is None:
        raise CriteriaFileError(f"{p}:1: empty criteria file")
    entries = _entries(root, p)
    specs = [_spec(node, p) for node in entries]
    if not specs:
        raise CriteriaFileError(f"{p}:{root.start_mark.line + 1}: no criteria in file")
    return specs


def _entries(root: yaml.Node, path: Path) -> list[yaml.Node]:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "criteria":
                root = value
                break
        else:
            raise CriteriaFileError(f"{path}:{root.start_mark.line + 1}: expected a 'criteria:' list")
    if not isinstance(root, yaml.SequenceNode):
        raise CriteriaFileError(f"{path}:{root.start_mark.line + 1}: criteria must be a list")
    return list(root.value)


def _spec(node: yaml.Node, path: Path) -> CriterionSpec:
    line = node.start_mark.line + 1
    try:
        data = yaml.load(yaml.serialize(node), Loader=_LOADER)  # noqa: S506 - safe loader
    except (yaml.YAMLError, ValueError) as exc:  # an unknown tag; a date like 2024-13-45 (the value is not echoed)
        problem = getattr(exc, "problem", None) or "a value YAML cannot read"
        raise CriteriaFileError(f"{path}:{line}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise CriteriaFileError(f"{path}:{line}: each criterion must be a mapping with a 'check'")
    check = data.get("check")
    if not isinstance(check, str):
        raise CriteriaFileError(f"{path}:{line}: criterion without a 'check' name")
    params = {k: v for k, v in data.items() if k not in RESERVED}
    problems = validate(check, params)
    if problems:
        raise CriteriaFileError(f"{path}:{line}: {'; '.join(problems)}")
    return CriterionSpec(check, redact(str(data.get("name") or check)), params, str(path), line)
