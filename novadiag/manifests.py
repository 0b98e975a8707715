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

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from novadiag.boundedio import read_manifest_file
from novadiag.errors import ManifestError
from novadiag.model import Finding, RawObject, SourceInfo
from novadiag.snapshot import Snapshot, build_snapshot, paused_gc
from novadiag.sourcelines import SourceLines, record_document, record_json

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_DEPTH = 64


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
        on_node = None if lines is None else _recorder(str(file), lines)
        on_json = None if lines is None else _json_recorder(str(file), lines)
        for doc in read_manifest_file(file, on_node=on_node, on_json=on_json):
            objects.extend(_flatten(doc, findings, file))
    return objects


def _recorder(file: str, lines: SourceLines) -> Callable[[yaml.Node], None]:
    """Records the lines of each YAML document of ``file`` into ``lines`` (see :mod:`novadiag.sourcelines`)."""

    def record(node: yaml.Node) -> None:
        record_document(node, file, lines)

    return record


def _json_recorder(file: str, lines: SourceLines) -> Callable[[str], None]:
    """Records the lines of the JSON manifest ``file`` into ``lines``, from its text.

    With the collector paused: the nodes are acyclic, and its rescans of the heap
    the parsed documents fill were half the recording's time.
    """

    def record(text: str) -> None:
        with paused_gc():
            record_json(text, file, lines)

    return record


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
