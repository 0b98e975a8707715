"""The plan as a directory: cleaned manifests in apply order, and the runbook that uses them.

One YAML file per object the plan creates, named ``<step>-<resource>-<namespace>-<name>.yaml``
so that ``ls`` shows the apply order, plus ``rollback-<step>-...yaml`` for the
objects a cleanup step deletes (what recreating them takes). Secrets are never
written: their copies are made at run time (``copy_secret`` in the script,
the API runner in ``--apply``); ``README.md`` is the runbook, whose commands
name these files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from novadiag.errors import ConfigError
from novadiag.planning.commands import manifest_filename
from novadiag.planning.model import Plan
from novadiag.planning.runbook import render_runbook


def write_manifests(plan: Plan, directory: str | Path) -> list[str]:
    """Write the directory (created if needed; refused when it holds other files); returns the paths."""
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a directory")
    if out.exists() and any(p.name != "README.md" and not p.name.endswith(".yaml") for p in out.iterdir()):
        raise ConfigError(f"{out}: holds other files; choose an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for step in plan.steps:
        ops = [("", step.operation)] + [(f"rollback{i or ''}-", op) for i, op in enumerate(step.rollback)]
        for prefix, op in ops:
            if op.action not in ("create", "create-namespace") or op.manifest is None:
                continue
            path = out / manifest_filename(step.id, op.ref, prefix=prefix)
            path.write_text(yaml.safe_dump(dict(op.manifest), sort_keys=False), encoding="utf-8")
            written.append(str(path))
    readme = out / "README.md"
    readme.write_text(render_runbook(plan), encoding="utf-8")
    written.append(str(readme))
    return written
