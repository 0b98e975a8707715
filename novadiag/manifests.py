"""Load Kubernetes objects from manifest files and directories.

Accepts what people actually have lying around: multi-document YAML, JSON,
``kind: List`` (what ``kubectl get -o yaml`` prints), and ``helm template``
output (multi-document YAML with ``# Source:`` comments and empty documents).

Loading is safe by construction: only PyYAML's safe loader (C accelerated when
available) is used, so a manifest cannot instantiate Python objects, and
limits bound what one file may cost: its size, how deeply a document nests
(deeper than any Kubernetes object; later stages copy and serialize documents
recursively), and how far YAML aliases expand — aliases are shared, not
copied, when loaded, but serializing a snapshot expands them, so a "billion
laughs" document or an alias that contains itself would otherwise hang or
crash ``snapshot save``. A file that cannot be parsed stops the
run with one line naming the file and the line: silently auditing half a
directory would report a clean bill of health for objects never read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from novadiag.boundedio import MAX_INPUT_BYTES, read_bounded_file
from novadiag.errors import InputFileError, ManifestError
from novadiag.model import Finding, RawObject, SourceInfo
from novadiag.snapshot import Snapshot, build_snapshot
from novadiag.sourcelines import SourceLines, record_document

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = MAX_INPUT_BYTES
MAX_DEPTH = 64
MAX_NESTING = 200
MAX_EXPANSION = 1_000_000
"""Values a document may expand to through aliases beyond ten times what it holds."""

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_manifests(paths: Iterable[str | Path], *, cluster_domain: str = "cluster.local") -> Snapshot:
    """Build a Snapshot from files and directories (searched recursively)."""
    paths = list(paths)
    files = list(_manifest_files(paths))
    findings: list[Finding] = []
    lines: SourceLines = {}
    objects = _read_objects(files, findings, lines)
    source = SourceInfo("manifests", cluster_domain=cluster_domain, locations=tuple(map(str, files)))
    snapshot = build_snapshot(objects, source, findings=findings)
    if not snapshot.objects:  # auditing nothing would report OK: a wrong path must not pass a CI gate
        raise ManifestError(", ".join(map(str, paths)), f"no Kubernetes object novadiag reads in {len(files)} file(s)")
    return snapshot.with_extra(source_lines=lines)


def manifest_objects(paths: Iterable[str | Path]) -> list[RawObject]:
    """The raw objects of files and directories, *unmasked*: only for writing the user's values back.

    The planner's ``--format manifests`` takes the credentials a snapshot masks
    from here, so the copies it writes hold the user's own values.
    """
    return _read_objects(list(_manifest_files(paths)), [])


def _read_objects(files: list[Path], findings: list[Finding], lines: SourceLines | None = None) -> list[RawObject]:
    objects: list[RawObject] = []
    for file in files:
        for doc in read_manifest_file(file, lines=lines):
            objects.extend(_flatten(doc, findings, file))
    return objects


def read_manifest_file(path: Path, *, keep_empty: bool = False, lines: SourceLines | None = None) -> list[Any]:
    """Every document of one file; raises ManifestError naming file and line.

    ``keep_empty`` keeps empty YAML documents as ``None``, so that a caller can
    number documents as the file does (the lab's scenario loader names "document 2").
    ``lines``, when given, receives the line of each object, env entry and config
    key of a YAML file (see :mod:`novadiag.sourcelines`).
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
        docs = _load_yaml(path, text, keep_empty=keep_empty, lines=lines)
    for doc in docs:
        _check_shape(doc, path)
    return docs


def _load_yaml(path: Path, text: str, *, keep_empty: bool = False, lines: SourceLines | None = None) -> list[Any]:
    try:
        docs = [d for d in _yaml_documents(path, text, lines) if keep_empty or d is not None]
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


def _yaml_documents(path: Path, text: str, lines: SourceLines | None) -> Iterator[Any]:
    """What ``yaml.load_all`` yields, composing each document's nodes first so their lines can be recorded."""
    loader = _SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if lines is not None and node is not None:
                record_document(node, str(path), lines)
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


def _manifest_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            if not found:
                raise ManifestError(str(path), "holds no .yaml, .yml or .json file")
            yield from found
        elif path.is_file():
            yield path
        elif path.exists():  # a FIFO or a device: reading it could block forever
            raise ManifestError(str(path), "not a regular file")
        elif path.is_symlink():
            raise ManifestError(str(path), "a symbolic link to nothing (or to itself)")
        else:
            raise ManifestError(str(path), "no such file or directory")


def _flatten(doc: Any, findings: list[Finding], file: Path, depth: int = 0) -> Iterator[RawObject]:
    """Unwrap ``kind: List`` / ``*List`` documents into their items."""
    if not isinstance(doc, dict):
        findings.append(Finding("warning", "invalid-object", f"{file}: skipped a document that is not a mapping"))
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        if depth >= MAX_DEPTH:
            raise ManifestError(str(file), "List documents nested too deeply")
        item_kind = kind[: -len("List")] or None
        for item in doc["items"]:
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {**item, "kind": item_kind}
            yield from _flatten(item, findings, file, depth + 1)
        return
    yield doc  # type: ignore[misc]
