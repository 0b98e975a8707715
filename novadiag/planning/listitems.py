"""Where a host named outside the env is written: one item of a ``command``/``args``/exec list.

The audit locates such a host as the contract shows it (``args[3]``,
``exec.command[2]``, ``line 1`` of a script); the planner needs the field path
of the list item that holds it, so it can rewrite that item and nothing else.
A script's ``line N`` is inside one item: the one the shell runs with ``-c``
(:func:`~novadiag.shellwords.find_script`), found again the way the audit found it.

The whole list is what a patch sends: a strategic merge patch (the one the
plan sends for env values too) replaces a list of strings whole. The patch
carries every item as the snapshot holds it, so a list with any masked item
is never patched: its host stays a manual step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.model import Reference
from novadiag.planning.paths import FieldPath, get_at, path_text
from novadiag.planning.rename import POD_SPEC_PATHS, contains_host, find_container, pod_spec_of
from novadiag.shellwords import find_script
from novadiag.workloads import EXEC_HANDLERS

_INDEXED = re.compile(r"(?P<field>[A-Za-z.]+)(?:\[(?P<index>\d+)\])?")
_HANDLER_PATHS: Mapping[str, tuple[str, ...]] = {origin: path for origin, path, _expands in EXEC_HANDLERS}


@dataclass(frozen=True)
class ItemPlace:
    """One string item of a list in a workload: the list's path and the item's index in it."""

    list_path: FieldPath
    index: int
    container: str

    @property
    def path(self) -> FieldPath:
        return (*self.list_path, f"#{self.index}")

    def describe(self) -> str:
        """``args[3] of container app``, ``livenessProbe.exec.command[2] of container app``: for plans."""
        inside = self.list_path[self.list_path.index(f"name={self.container}") + 1 :]
        return f"{path_text(inside)}[{self.index}] of container {self.container}"


def locate_item(workload: Mapping[str, Any], ref: Reference) -> ItemPlace | str:
    """The list item that names ``ref``'s host, or why there is none to rewrite."""
    kind = str(workload.get("kind"))
    pod_spec = pod_spec_of(workload)
    found = None if pod_spec is None or kind not in POD_SPEC_PATHS else find_container(pod_spec, ref.container)
    if found is None:
        return f"container {ref.container} is not in {ref.workload}"
    container_list, container = found
    base = (*POD_SPEC_PATHS[kind], container_list, f"name={ref.container}")
    handler = _HANDLER_PATHS.get(ref.origin)
    location = ref.location or ""
    if location.startswith("line "):
        return _script_item(base, container, handler, ref)
    match = _INDEXED.fullmatch(location)
    if match is None:
        return f"{ref.slot} does not name a list item"
    field = tuple(match["field"].split("."))
    list_path = (*base, *handler, *field) if handler is not None else (*base, *field)
    index = match["index"]
    if index is None:  # a tool's own reading (``pg_isready -h db``) locates the command, not the item
        items = _strings(get_at(workload, list_path))
        holding = [i for i, item in enumerate(items) if contains_host(item, ref.host)]
        if len(holding) != 1:
            return f"{ref.host} is not named in exactly one item of {path_text(field)} of container {ref.container}"
        index = str(holding[0])
    place = ItemPlace(list_path, int(index), ref.container)
    if not isinstance(get_at(workload, place.path), str):
        return f"{place.describe()} is not in {ref.workload}"
    return place


def _script_item(
    base: FieldPath, container: Mapping[str, Any], handler: tuple[str, ...] | None, ref: Reference
) -> ItemPlace | str:
    """The item holding the ``sh -c`` script: in ``command``/``args``, or in an exec handler's ``command``."""
    if handler is not None:
        command = get_at(container, (*handler, "exec", "command"))
        script = find_script(_strings(command), ())
        if script is None:
            return f"the {ref.origin} of container {ref.container} runs no sh -c script"
        return ItemPlace((*base, *handler, "exec", "command"), script.index, ref.container)
    script = find_script(_strings(container.get("command")), _strings(container.get("args")))
    if script is None:
        return f"container {ref.container} runs no sh -c script"
    return ItemPlace((*base, script.origin), script.index, ref.container)


def _strings(items: object) -> list[str]:
    return [i if isinstance(i, str) else "" for i in items] if isinstance(items, list) else []
