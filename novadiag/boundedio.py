"""Read a file the user named, at a bounded cost: the one rule for manifests and snapshots.

A path on the command line may name anything: ``/dev/zero`` (endless, and
``stat`` says 0 bytes), a FIFO (``open`` blocks until a writer comes, which may
be never), a sparse 1 GB file. Each is refused with one line naming the file:

* the file is opened with ``O_NONBLOCK``, so a FIFO opens at once, and then
  checked with ``fstat`` on the open descriptor, so a path swapped for a FIFO
  between a check and the open cannot block the run either;
* only regular files are read; a device, a FIFO or a socket is refused;
* at most ``limit`` bytes are read, whatever ``stat`` says (``/proc`` files
  report 0 bytes and still have content).

Documents in such a file (YAML or JSON) are parsed here too, with PyYAML's safe
loader only and bounded nesting and alias expansion (see
:func:`read_manifest_file`): the manifest loader and the lab's scenario loader
read the same way, and the lab imports nothing of novadiag but its errors and
this module.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from novadiag.errors import InputFileError, ManifestError

MAX_INPUT_BYTES = 256 * 1024 * 1024
"""What one input file (manifest, snapshot, baseline) may hold: far past a real cluster's, short of all memory."""


def read_bounded_file(path: str | Path, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``what`` names the file in messages (``"file"``, ``"snapshot file"``).
    Raises :class:`~novadiag.errors.InputFileError` when the file cannot be
    read, is not a regular file, or holds more than ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read {what}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(str(path), f"a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(
                str(path), "not a regular file (a pipe, a device or a socket could block or never end)"
            )
        if info.st_size > limit:
            raise InputFileError(str(path), f"{what} is {info.st_size >> 20} MiB, over the {limit >> 20} MiB limit")
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise InputFileError(str(path), f"cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputFileError(str(path), f"{what} is over the {limit >> 20} MiB limit")
    return data


MAX_FILE_BYTES = MAX_INPUT_BYTES
MAX_NESTING = 200
MAX_EXPANSION = 1_000_000
"""Values a document may expand to through aliases beyond ten times what it holds."""

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_manifest_file(
    path: Path,
    *,
    keep_empty: bool = False,
    on_node: Callable[[yaml.Node], None] | None = None,
    on_json: Callable[[str], None] | None = None,
) -> list[Any]:
    """Every document of one file; raises ManifestError naming file and line.

    ``keep_empty`` keeps empty YAML documents as ``None``, so that a caller can
    number documents as the file does (the lab's scenario loader names "document 2").
    ``on_node``, when given, sees each YAML document's node tree before it is
    built, with its lines (the manifest loader records where objects are).
    ``on_json`` sees the text of a JSON file once its document is read and
    checked: ``json`` keeps no positions, so lines are found in the text itself.
    """
    try:
        text = read_bounded_file(path, limit=MAX_FILE_BYTES, what="file").decode("utf-8")
    except InputFileError as exc:
        raise ManifestError(exc.path, exc.problem) from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), "not UTF-8 text") from exc
    if path.suffix == ".json":
        docs = _load_json(path, text)
    else:
        docs = _load_yaml(path, text, keep_empty=keep_empty, on_node=on_node)
    for doc in docs:
        _check_shape(doc, path)
    if on_json is not None and path.suffix == ".json":
        on_json(text)
    return docs


def parse_documents(text: str, *, name: str, as_json: bool = False) -> list[Any]:
    """The documents of a text that is not a file of its own (a ConfigMap key), with the same bounds.

    ``name`` says where the text came from in messages. Raises
    :class:`~novadiag.errors.ManifestError` naming it, as a file's would.
    """
    where = Path(name)
    docs = _load_json(where, text) if as_json else _load_yaml(where, text)
    for doc in docs:
        _check_shape(doc, where)
    return docs


def _load_yaml(
    path: Path, text: str, *, keep_empty: bool = False, on_node: Callable[[yaml.Node], None] | None = None
) -> list[Any]:
    try:
        docs = [d for d in _yaml_documents(text, on_node) if keep_empty or d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(str(path), f"invalid YAML: {exc.problem or exc.context}", line=line) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(str(path), f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError(str(path), "document nested too deeply") from exc
    except ValueError as exc:  # a tagged value YAML cannot build (2024-13-45, !!float abc, a 5,000-digit int)
        raise ManifestError(str(path), "invalid YAML: a value of a date, number or tag that cannot be read") from exc
    return docs


def _yaml_documents(text: str, on_node: Callable[[yaml.Node], None] | None) -> Iterator[Any]:
    """What ``yaml.load_all`` yields, composing each document's nodes first so ``on_node`` can see them."""
    loader = _SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if on_node is not None and node is not None:
                on_node(node)
            yield loader.construct_document(node)
    finally:
        loader.dispose()


def _load_json(path: Path, text: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise ManifestError(str(path), f"invalid JSON: {exc.msg}", line=exc.lineno) from exc
    except RecursionError as exc:
        raise ManifestError(str(path), "document nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ManifestError(str(path), "invalid JSON: a number too long to read") from exc


def _check_shape(doc: Any, path: Path) -> None:
    """Bound nesting and alias expansion (iteratively: the point is not to recurse on hostile input)."""
    expanded: dict[int, int] = {}  # id of a list/dict -> values it expands to
    unique = 0
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    open_ids: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            open_ids.discard(key)
            expanded[key] = 1 + sum(expanded.get(id(c), 1) for c in children)
            continue
        if key in open_ids:
            raise ManifestError(str(path), "a YAML alias contains itself")
        if key in expanded:
            continue
        if depth > MAX_NESTING:
            raise ManifestError(str(path), f"document nested deeper than {MAX_NESTING} levels")
        unique += 1 + len(children)
        open_ids.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children)
    total = expanded.get(id(doc), 1)
    if total > MAX_EXPANSION and total > 10 * unique:
        raise ManifestError(str(path), f"YAML aliases expand to {total:,} values (over {MAX_EXPANSION:,})")
