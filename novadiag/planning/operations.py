"""Operations: the unit of change a plan is made of, below the plan values that order them.

An :class:`Operation` is executed three ways from the same record: simulated
(``simulate.py``), sent through the API (``apply.py``) and printed as
``kubectl`` commands (``kubectl.py``). It lives apart from :mod:`.values` so
that the command builder can sit between the two: a step's JSON carries its
commands, and the commands need only the operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from novadiag.model import ObjectRef
from novadiag.planning.paths import FieldPath, path_text, without
from novadiag.planning.rename import contains_host

Action = Literal[
    "create-namespace",
    "create",
    "copy",
    "edit",
    "copy-secret",
    "rewrite-secret",
    "patch",
    "restart",
    "scale",
    "wait-ready",
    "verify",
    "manual",
    "grace",
    "delete",
]


@dataclass(frozen=True)
class Replacement:
    """Replace host ``old`` by ``new`` (token-wise, see ``rename.replace_host``) in one data key."""

    key: str
    old: str
    new: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class HostEdit:
    """Replace hosts (token-wise, see ``rename.replace_hosts``) in the value at ``path``, nothing else.

    On an ``edit`` the value is read from the live object itself, on a
    ``copy`` from the live ``source``; on a ``patch`` or ``create`` it records
    what the literal payload changed, so verification can check that only the
    hosts did.
    """

    path: FieldPath
    replacements: tuple[tuple[str, str], ...] = ()

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self.replacements)

    def reverse_of(self, original: str) -> HostEdit | None:
        """The edit that turns the edited value back into ``original``, or None when none can.

        None when two old hosts became one, or a new host was in the value
        already: the edited value no longer tells which occurrence was which.
        """
        news = [new.lower() for _, new in self.replacements]
        if len(set(news)) != len(news) or any(contains_host(original, new) for _, new in self.replacements):
            return None
        return HostEdit(self.path, tuple((new, old) for old, new in self.replacements))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": path_text(self.path),
            "replacements": [{"old": old, "new": new} for old, new in self.replacements],
        }


@dataclass(frozen=True, eq=False)
class Operation:
    """One change or check, executable by the simulator, the API runner and kubectl.

    ``manifest`` is the cleaned object for ``create`` and ``copy``; ``patch`` a
    JSON merge patch (or a strategic one when ``strategic``); ``source`` the
    Secret a ``copy-secret`` reads, or the object a ``copy`` (or a ``create`` of
    a moved object) was made from; ``host_edits`` the values an ``edit`` or a
    ``copy`` takes from the live object (see :class:`HostEdit`); ``namespaces``
    the namespaces a ``verify`` audits.
    """

    action: Action
    ref: ObjectRef
    manifest: Mapping[str, Any] | None = None
    patch: Mapping[str, Any] | None = None
    strategic: bool = False
    source: ObjectRef | None = None
    replacements: tuple[Replacement, ...] = ()
    host_edits: tuple[HostEdit, ...] = ()
    replicas: int | None = None
    namespaces: tuple[str, ...] = ()
    note: str = ""
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "object": self.ref.to_dict()}
        if self.manifest is not None:
            doc["manifest"] = self.shown_manifest()
        if self.patch is not None:
            doc["patch"] = self.patch
            doc["patch_type"] = "strategic" if self.strategic else "merge"
        if self.source is not None:
            doc["source"] = self.source.to_dict()
        if self.replacements:
            doc["replacements"] = [r.to_dict() for r in self.replacements]
        if self.host_edits:
            doc["host_edits"] = [e.to_dict() for e in self.host_edits]
        if self.replicas is not None:
            doc["replicas"] = self.replicas
        if self.namespaces:
            doc["namespaces"] = list(self.namespaces)
        if self.note:
            doc["note"] = self.note
        return doc

    @property
    def live_values(self) -> bool:
        """Whether values are read from the live object when the step runs (``edit``, ``copy``)."""
        return self.action in ("edit", "copy")

    def shown_manifest(self) -> Mapping[str, Any] | None:
        """The manifest as plans show it: a ``copy``'s live values are null (they are not known here)."""
        if self.manifest is None or self.action != "copy":
            return self.manifest
        shown: Mapping[str, Any] = without(self.manifest, {e.path for e in self.host_edits})
        return shown
