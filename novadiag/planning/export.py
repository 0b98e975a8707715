"""The plan as a directory: cleaned manifests in apply order, and the runbook that uses them.

One YAML file per object the plan creates, named ``<step>-<resource>-<namespace>-<name>.yaml``
so that ``ls`` shows the apply order, plus ``rollback-<step>-...yaml`` for the
objects a cleanup step deletes (what recreating them takes). Secrets are never
written: their copies are made at run time (``copy_secret`` in the script,
the API runner in ``--apply``); ``README.md`` is the runbook, whose commands
name these files.

A ``copy`` holds values the snapshot masked (a password in an env value or a
ConfigMap key). Its file must carry the user's own value, byte for byte but
the host, and never the mask: when the plan was made from manifest files,
those files are read again for the raw values; when it was made from a
cluster, only the cluster has them, and the directory is refused with the
reason (``novadiag plan --apply`` reads them live). A file holding such values
is created readable by its owner only.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from novadiag.errors import ConfigError, PlanError
from novadiag.manifests import manifest_objects
from novadiag.model import ObjectRef, RawObject
from novadiag.planning.kubectl import manifest_filename
from novadiag.planning.operations import Operation
from novadiag.planning.paths import get_at, path_text, set_at
from novadiag.planning.rename import replace_hosts
from novadiag.planning.runbook import render_runbook
from novadiag.planning.values import Plan, Step
from novadiag.snapshot import object_ref

RawIndex = Mapping[ObjectRef, RawObject]


def write_manifests(plan: Plan, directory: str | Path) -> list[str]:
    """Write the directory (created if needed; refused when it holds other files); returns the paths."""
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a directory")
    if out.exists() and any(p.name != "README.md" and not p.name.endswith(".yaml") for p in out.iterdir()):
        raise ConfigError(f"{out}: holds other files; choose an empty directory")
    files = _manifest_files(plan)  # everything decided (or refused) before the first file is written
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for name, manifest, private in files:
        path = out / name
        _write(path, yaml.safe_dump(dict(manifest), sort_keys=False), private=private)
        written.append(str(path))
    readme = out / "README.md"
    readme.write_text(render_runbook(plan), encoding="utf-8")
    written.append(str(readme))
    return written


def _write(path: Path, text: str, *, private: bool) -> None:
    """Write ``text``; a file holding the user's credentials is readable by its owner only (mode 600)."""
    if not private:
        path.write_text(text, encoding="utf-8")
        return
    path.unlink(missing_ok=True)  # a new file, so the mode is set at creation, before any byte is in it
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write(text)


def _manifest_files(plan: Plan) -> list[tuple[str, Mapping[str, Any], bool]]:
    """(file name, manifest, holds live values) for every object the plan creates, in step order."""
    raw: RawIndex | None = None
    files: list[tuple[str, Mapping[str, Any], bool]] = []
    for step in plan.steps:
        ops = [("", step.operation)] + [(f"rollback{i or ''}-", op) for i, op in enumerate(step.rollback)]
        for prefix, op in ops:
            if op.action not in ("create", "create-namespace", "copy") or op.manifest is None:
                continue
            manifest: Mapping[str, Any] = op.manifest
            if op.action == "copy":
                raw = raw if raw is not None else _raw_objects(plan, step)
                manifest = _filled(op, raw, step)
            files.append((manifest_filename(step.id, op.ref, prefix=prefix), manifest, op.action == "copy"))
    return files


def _raw_objects(plan: Plan, step: Step) -> RawIndex:
    """The objects of the manifest files the plan was made from, unmasked; refused for any other source."""
    if plan.source.kind != "manifests" or not plan.source.locations:
        raise PlanError(
            f"refusing to write manifests: step {step.id} ({step.title}) needs values novadiag masked because "
            f"they hold credentials, and a plan made from a {plan.source.kind} does not have them; "
            "run novadiag plan --apply (it reads them live), or plan from your manifest files"
        )
    return {object_ref(obj): obj for obj in manifest_objects(plan.source.locations)}


def _filled(op: Operation, raw: RawIndex, step: Step) -> dict[str, Any]:
    """The manifest with each live value taken from the user's own file (hosts replaced, nothing else)."""
    assert op.manifest is not None and op.source is not None
    body = copy.deepcopy(dict(op.manifest))
    source = raw.get(op.source)
    replace = source is not None
    if source is None:
        source = raw.get(op.ref)  # a rollback recreates the original, which the files hold as it was
    for edit in op.host_edits:
        value = get_at(source, edit.path) if source is not None else None
        if not isinstance(value, str):
            raise PlanError(
                f"refusing to write manifests: step {step.id}: {op.source} {path_text(edit.path)} is not in the "
                "manifest files the plan was made from (they changed since)"
            )
        set_at(body, edit.path, replace_hosts(value, edit.mapping) if replace else value)
    return body
