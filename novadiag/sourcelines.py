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

A JSON manifest (``.json``: one object, or a ``List`` with ``items``) has no
composer with marks, so :func:`record_json` composes the same kind of node tree
from the JSON text itself: a forward scan that keeps only the members this
module walks (``kind``, ``metadata``, ``spec``/``template``/``jobTemplate``,
``containers``, ``env``, ``command``/``args``, ``data``/``stringData``,
``items``) and steps over every other value with the C decoder
(``raw_decode``), so the cost past ``json.loads`` is one pass of that scanner
plus a Python step per kept member. Lines are counted with ``str.count`` as the
scan moves forward, never from the start again. An object is marked at the
line of its ``"name"`` member when it has one (the line that names a container
or an env var, as ``- name:`` does in YAML), else at its first member's.

A Secret key's line is recorded, never its value.
"""

from __future__ import annotations

import json
import re
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
    """A place in a manifest file: its path and 1-based line (None when not known)."""

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


def record_json(text: str, file: str, into: SourceLines) -> None:
    """Add the lines of every object of a JSON manifest, ``text`` being JSON that ``json.loads`` has read."""
    start = _JSON_SPACE.match(text).end()  # type: ignore[union-attr]
    if text.startswith("{", start):
        record_document(_JsonComposer(text).compose(start, depth=0)[0], file, into)


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


# -- JSON manifests ---------------------------------------------------------------------------------

_CONFIG_SECTIONS = frozenset({"data", "stringData"})
_JSON_KEPT = frozenset(
    {"kind", "items", "metadata", "name", "namespace", "env", "command", "args"}
    | _CONFIG_SECTIONS
    | _CONTAINER_PATH
    | frozenset(_CONTAINER_LISTS)
)
"""The members :func:`record_document` reads; the values of all others are stepped over."""
_JSON_MAX_DEPTH = 32
"""Deeper than any path walked here (a CronJob's env entries are nine levels down): past it, values are skipped."""
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_MEMBER = re.compile(
    r'[ \t\n\r]*"([^"\\]*(?:\\.[^"\\]*)*)"[ \t\n\r]*:[ \t\n\r]*'
    r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"[ \t\n\r]*([,}])[ \t\n\r]*)?'
)
"""A member's key up to its value, and when that is a string (most are), the value and what follows it too:
one match per member. Groups hold the text as written (escapes are rare: see :func:`_unescaped`). A string
is a run of plain characters then escapes each followed by another run: an alternation repeated per
character kept one backtracking entry per character, 1.6 GB for a 10 MB value."""
_JSON_NEXT = re.compile(r"[ \t\n\r]*([,\]}])[ \t\n\r]*")
"""After a value: a comma and the space before the next, or the closing bracket."""
_json_value = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The C scanner (what ``json.loads`` runs): the value at an index, and the index past it."""
_json_string = json.decoder.scanstring  # type: ignore[attr-defined]
_STR_TAG = "tag:yaml.org,2002:str"


class _JsonComposer:
    """JSON text to YAML nodes marked with their lines, for the kept members only.

    Positions only move forward, so each line number is the previous one plus
    the newlines in between. The text has been parsed by ``json.loads`` already:
    the scan meets only well-formed JSON. Only the lines :func:`record_document`
    reads are counted: of objects, of sequence items and of data keys; other
    keys are unmarked, and a member's string value carries its key's mark.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.counted = 0
        self.line = 0
        self.line_start = 0

    def mark(self, index: int) -> yaml.Mark:
        newlines = self.text.count("\n", self.counted, index)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rindex("\n", self.counted, index) + 1
        self.counted = index
        return yaml.Mark("json", index, self.line, index - self.line_start, None, index)

    def compose(self, index: int, depth: int, *, keys_only: bool = False) -> tuple[yaml.Node, int]:
        """The node of the value at ``index`` (no whitespace before it) and the index past it.

        ``keys_only`` composes an object's every key and none of its values (a ConfigMap's or a Secret's ``data``).
        """
        first = self.text[index]
        if depth < _JSON_MAX_DEPTH and first == "{":
            return self._object(index, depth, keys_only=keys_only)
        if depth < _JSON_MAX_DEPTH and first == "[":
            return self._array(index, depth)
        mark = self.mark(index)
        if first == '"':
            value, end = _json_string(self.text, index + 1)
            return yaml.ScalarNode(_STR_TAG, value, mark, mark, style='"'), end
        end = _json_value(self.text, index)[1]
        return yaml.ScalarNode(_STR_TAG, self.text[index:end], mark, mark), end

    def _object(self, index: int, depth: int, *, keys_only: bool) -> tuple[yaml.MappingNode, int]:
        text = self.text
        opening = index
        first = named = None
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        index += 1
        while member := _JSON_MEMBER.match(text, index):
            key = _unescaped(member[1])
            wanted = keys_only or key in _JSON_KEPT
            key_mark = None  # only the lines record_document reads are counted (see the class)
            if keys_only or first is None or key == "name":
                key_mark = self.mark(member.start(1) - 1)
                first = first or key_mark
                named = key_mark if key == "name" else named
            value: yaml.Node | None = None
            if member[3] is not None:  # a string value: the match ran on past it to the comma or the brace
                value = _string_node(member[2], key_mark) if wanted and not keys_only else None
                index, closer = member.end(), member[3]
            else:
                value, index = self._value(member.end(), depth, key, composed=wanted and not keys_only)
                index, closer = _after_value(text, index)
            if wanted:  # of a data section, the key alone: a Secret's value is never kept
                pairs.append((_key_node(key, key_mark), value or yaml.ScalarNode(_STR_TAG, "", key_mark, key_mark)))
            if closer != ",":
                break
        else:
            index = _after_value(text, index)[0]  # an empty object's "}"
        mark = named or first or self.mark(opening)  # nothing inside was marked when there is no first member
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs, mark, mark), index

    def _value(self, index: int, depth: int, key: str, *, composed: bool) -> tuple[yaml.Node | None, int]:
        """A member's value that is not a string: composed, or only stepped over."""
        if composed:
            return self.compose(index, depth + 1, keys_only=key in _CONFIG_SECTIONS)
        return None, _json_value(self.text, index)[1]

    def _array(self, index: int, depth: int) -> tuple[yaml.SequenceNode, int]:
        """A sequence, marked at its first item (at its ``[`` when empty): nothing reads a sequence's own line."""
        text = self.text
        items: list[yaml.Node] = []
        after = _JSON_SPACE.match(text, index + 1).end()  # type: ignore[union-attr]
        if text[after] == "]":
            mark = self.mark(index)
            return yaml.SequenceNode("tag:yaml.org,2002:seq", items, mark, mark), after + 1
        index = after
        while True:
            item, index = self.compose(index, depth + 1)
            items.append(item)
            index, closer = _after_value(text, index)
            if closer != ",":
                mark = items[0].start_mark
                return yaml.SequenceNode("tag:yaml.org,2002:seq", items, mark, mark), index


def _unescaped(raw: str) -> str:
    """A JSON string's text as written, without its quotes, as ``json`` reads it."""
    return raw if "\\" not in raw else str(json.loads(f'"{raw}"'))


def _after_value(text: str, index: int) -> tuple[int, str]:
    """Past what follows a value (``,``, ``]`` or ``}``, and the space around it), and which it was."""
    after = _JSON_NEXT.match(text, index)
    return (after.end(), after[1]) if after else (len(text), "")  # always a match: json.loads read the text


def _key_node(key: str, mark: yaml.Mark | None) -> yaml.ScalarNode:
    return yaml.ScalarNode(_STR_TAG, key, mark, mark, style='"')


def _string_node(raw: str, mark: yaml.Mark | None) -> yaml.ScalarNode:
    """A member's string value, marked as its key is: no value's own line is read (a sequence item's is)."""
    return yaml.ScalarNode(_STR_TAG, _unescaped(raw), mark, mark, style='"')
