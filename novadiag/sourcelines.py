"""Where in a manifest file each object, env entry and config key was written.

Code-scanning tools (SARIF, GitHub annotations) mark the exact line of a
broken reference, so an audit of manifests keeps, next to the objects, the
file and line of every workload, of each of its containers' ``env`` entries
and of each ConfigMap or Secret key, and the line of every routing object
(an Ingress or a route: its backends' edges point there). Lines come from the YAML composer's
node marks: the loader composes a document's nodes, records the few marks
needed here, then constructs the document from the same nodes, so the file
is parsed once. Walking only the ``spec``/``template`` path to containers
keeps the cost small next to construction (docs/performance.md).

A Secret key's line is recorded, never its value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

from novadiag.model import ROUTE_KINDS, WORKLOAD_KINDS
from novadiag.shellwords import find_script

if TYPE_CHECKING:
    from novadiag.model import Edge

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name); a namespace left out in the manifest is ``default``, as the snapshot defaults it."""

_CONTAINER_PATH = frozenset({"spec", "template", "jobTemplate"})
_CONTAINER_LISTS = ("containers", "initContainers")
_MAX_CONTAINER_DEPTH = 6
_CONFIG_KINDS = frozenset({"ConfigMap", "Secret"})
_RECORDED_KINDS = _CONFIG_KINDS | frozenset(WORKLOAD_KINDS) | frozenset(ROUTE_KINDS)


@dataclass(frozen=True)
class SourceLine:
    """A place in a manifest file: its path and 1-based line (None when the file is JSON)."""

    file: str
    line: int | None


@dataclass
class ObjectLines:
    """The lines of one object: where it starts, its env entries, its data keys."""

    file: str
    line: int
    env: dict[tuple[str, str], int] = field(default_factory=dict)
    """(container, env var name) -> line of the ``- name:`` entry."""
    keys: dict[str, int] = field(default_factory=dict)
    """ConfigMap/Secret ``data``/``stringData`` key -> line of the key."""
    containers: dict[str, int] = field(default_factory=dict)
    """Container name -> line of its ``- name:`` entry."""
    items: dict[tuple[str, str], int] = field(default_factory=dict)
    """(container, ``args[2]``/``command[0]``) -> line of that item."""
    script_lines: dict[str, int] = field(default_factory=dict)
    """Container -> file line of the first line of its ``sh -c`` script, when written as a ``|`` block."""


SourceLines = dict[ObjectKey, ObjectLines]


def record_document(node: yaml.Node, file: str, into: SourceLines) -> None:
    """Add the lines of every object of one composed YAML document (``kind: List`` items included)."""
    for obj, kind in _object_nodes(node, None):
        meta = _child(obj, "metadata")
        name = _scalar(meta, "name")
        if kind not in _RECORDED_KINDS or name is None:
            continue
        lines = ObjectLines(file, obj.start_mark.line + 1)
        if kind in _CONFIG_KINDS:
            _record_keys(obj, lines)
        elif kind in WORKLOAD_KINDS:
            _record_env(obj, lines)
        into[(kind, _scalar(meta, "namespace") or "default", name)] = lines


def locate(lines: SourceLines, edge: Edge) -> SourceLine | None:
    """Where the edge's reference was written: the config key or mounted file, else the env entry, else the workload."""
    ref = edge.reference
    w = ref.workload
    workload = lines.get((w.kind, w.namespace or "default", w.name))
    config = _config_key_line(lines, ref.origin, ref.env, w.namespace or "default")
    if config is not None:
        return config
    if workload is None:
        return None
    if ref.env is not None:
        return SourceLine(workload.file, workload.env.get((ref.container, ref.env), workload.line))
    return SourceLine(workload.file, _command_line(workload, ref.container, ref.location))


def _command_line(workload: ObjectLines, container: str, location: str | None) -> int:
    """The line of an argument, or of a script line written as a block; else the container's, else the workload's."""
    fallback = workload.containers.get(container, workload.line)
    if location is None:
        return fallback
    if location.startswith("line "):
        first = workload.script_lines.get(container)
        number = location[5:]
        return first + int(number) - 1 if first is not None and number.isdigit() else fallback
    return workload.items.get((container, location), fallback)


def _config_key_line(lines: SourceLines, origin: str, env: str | None, namespace: str) -> SourceLine | None:
    """``configMapKeyRef:NAME/KEY``, ``envFrom:configMap/NAME`` or ``file:configMap/NAME/KEY``: the key's line."""
    kind_name, _, rest = origin.partition(":")
    if kind_name in ("configMapKeyRef", "secretKeyRef"):
        name, _, key = rest.partition("/")
        kind = "ConfigMap" if kind_name == "configMapKeyRef" else "Secret"
    elif kind_name == "file":
        source, _, name_key = rest.partition("/")
        name, _, key = name_key.partition("/")
        kind = "Secret" if source == "secret" else "ConfigMap"
    elif kind_name == "envFrom" and env is not None:
        source, _, name = rest.partition("/")
        kind = "Secret" if source == "secret" else "ConfigMap"
        key = env
    else:
        return None
    obj = lines.get((kind, namespace, name))
    if obj is None:
        return None
    if key in obj.keys:
        return SourceLine(obj.file, obj.keys[key])
    suffixed = [k for k in obj.keys if env is not None and env.endswith(k)]  # envFrom with a prefix: PREFIX + key
    return SourceLine(obj.file, obj.keys[max(suffixed, key=len)] if suffixed else obj.line)


def _object_nodes(node: yaml.Node, kind: str | None) -> Iterator[tuple[yaml.MappingNode, str | None]]:
    if not isinstance(node, yaml.MappingNode):
        return
    kind = _scalar(node, "kind") or kind
    items = _child(node, "items")
    if kind is not None and kind.endswith("List") and isinstance(items, yaml.SequenceNode):
        for item in items.value:
            yield from _object_nodes(item, kind[: -len("List")] or None)
        return
    yield node, kind


def _record_env(node: yaml.MappingNode, lines: ObjectLines) -> None:
    for container in _containers(node):
        name = _scalar(container, "name")
        if name is None:
            continue
        lines.containers[name] = container.start_mark.line + 1
        _record_command(container, name, lines)
        env = _child(container, "env")
        if not isinstance(env, yaml.SequenceNode):
            continue
        for entry in env.value:
            var = _scalar(entry, "name")
            if var is not None:
                lines.env[(name, var)] = entry.start_mark.line + 1


def _record_command(container: yaml.MappingNode, name: str, lines: ObjectLines) -> None:
    """Lines of each ``command``/``args`` item, and of the first line of a ``|`` block script."""
    words: dict[str, list[str]] = {"command": [], "args": []}
    nodes: dict[tuple[str, int], yaml.Node] = {}
    for key in words:
        items = _child(container, key)
        if not isinstance(items, yaml.SequenceNode):
            continue
        for index, item in enumerate(items.value):
            lines.items[(name, f"{key}[{index}]")] = item.start_mark.line + 1
            words[key].append(str(item.value) if isinstance(item, yaml.ScalarNode) else "")
            nodes[(key, index)] = item
    script = find_script(words["command"], words["args"])
    node = None if script is None else nodes.get((script.origin, script.index))
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        lines.script_lines[name] = node.start_mark.line + 2  # the block's text starts below its "|"
    elif node is not None and "\n" not in str(node.value):
        lines.script_lines[name] = node.start_mark.line + 1


def _containers(node: yaml.MappingNode, depth: int = 0) -> Iterator[yaml.MappingNode]:
    """Container mappings under spec / template / jobTemplate, at the depths workload kinds use.

    The depth is bounded (a CronJob's are five keys down) so that a YAML alias
    that contains itself is left to the loader's own check, not recursed into here.
    """
    if depth > _MAX_CONTAINER_DEPTH:
        return
    for key, value in node.value:
        if not isinstance(value, yaml.MappingNode) and not isinstance(value, yaml.SequenceNode):
            continue
        if key.value in _CONTAINER_PATH and isinstance(value, yaml.MappingNode):
            yield from _containers(value, depth + 1)
        elif key.value in _CONTAINER_LISTS and isinstance(value, yaml.SequenceNode):
            yield from (c for c in value.value if isinstance(c, yaml.MappingNode))


def _record_keys(node: yaml.MappingNode, lines: ObjectLines) -> None:
    for section in ("data", "stringData"):
        data = _child(node, section)
        if isinstance(data, yaml.MappingNode):
            for key, _value in data.value:
                if isinstance(key, yaml.ScalarNode):
                    lines.keys[str(key.value)] = key.start_mark.line + 1


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None


def _scalar(node: yaml.Node | None, key: str) -> str | None:
    value = _child(node, key)
    if isinstance(value, yaml.ScalarNode) and isinstance(value.value, str) and value.value:
        return value.value
    return None
