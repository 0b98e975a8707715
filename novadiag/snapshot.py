"""Snapshot: one immutable, plain-data view of the objects that matter.

Every later stage reads a :class:`Snapshot` and nothing else, so an audit is the
same whether its objects came from a live cluster, manifest files or a file saved
earlier. Objects stay raw JSON dicts (cheap: no typed-model deserialization), are
grouped by kind and indexed by ``(namespace, name)`` on first use.

Secrets are sanitized on the way in (see :mod:`novadiag.redaction`): a snapshot
never holds a credential, so nothing downstream — reports, saved snapshot files,
plans — can leak one.
"""

from __future__ import annotations

import copy
import gc
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast, get_args

from novadiag.boundedio import MAX_INPUT_BYTES, read_bounded_file
from novadiag.errors import ConfigError
from novadiag.model import (
    SNAPSHOT_KINDS,
    WORKLOAD_KINDS,
    Finding,
    Gap,
    GapVerb,
    ObjectRef,
    RawObject,
    SourceInfo,
    SourceKind,
)
from novadiag.outputs import write_output
from novadiag.redaction import (
    LAST_APPLIED,
    annotation_names_a_secret,
    names_a_secret,
    redact,
    redact_command,
    sanitize_secret,
    sanitize_secret_value,
)
from novadiag.shapes import shape_problem
from novadiag.workloads import EXEC_HANDLERS, Workload, exec_action, iter_workloads, pod_template

SNAPSHOT_SCHEMA = "novadiag.snapshot/v1"

CLUSTER_SCOPED = frozenset({"Namespace", "IngressClass"})


@dataclass(frozen=True)
class Snapshot:
    """The objects of one cluster (or manifest set), grouped by kind."""

    source: SourceInfo
    objects: Mapping[str, tuple[RawObject, ...]]
    gaps: tuple[Gap, ...] = ()
    findings: tuple[Finding, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> tuple[RawObject, ...]:
        """All objects of one kind (empty when none, or when the kind was not readable)."""
        return self.objects.get(kind, ())

    def get(self, kind: str, namespace: str | None, name: str) -> RawObject | None:
        return self._index.get((kind, namespace, name))

    @cached_property
    def _index(self) -> dict[tuple[str, str | None, str], RawObject]:
        index: dict[tuple[str, str | None, str], RawObject] = {}
        for kind, items in self.objects.items():
            for obj in items:
                meta = obj.get("metadata") or {}
                ns = None if kind in CLUSTER_SCOPED else meta.get("namespace")
                index[(kind, ns, str(meta.get("name")))] = obj
        return index

    @cached_property
    def namespaces(self) -> frozenset[str]:
        """Namespaces that exist: declared ones, plus any an object lives in."""
        names = {str((o.get("metadata") or {}).get("name")) for o in self.of("Namespace")}
        for kind, items in self.objects.items():
            if kind in CLUSTER_SCOPED:
                continue
            for obj in items:
                ns = (obj.get("metadata") or {}).get("namespace")
                if ns:
                    names.add(ns)
        return frozenset(names)

    @cached_property
    def workloads(self) -> tuple[Workload, ...]:
        return tuple(iter_workloads(self.objects))

    def with_extra(self, **extra: Any) -> Snapshot:
        return Snapshot(self.source, self.objects, self.gaps, self.findings, {**self.extra, **extra})

    def missing_namespaces(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` this cluster does not have: an audit or a criterion about them checks nothing.

        None when Namespaces could not be listed (RBAC): then an empty namespace
        and a missing one look the same.
        """
        if any(gap.kind == "Namespace" for gap in self.gaps):
            return []
        return [name for name in names if name not in self.namespaces]

    def count(self) -> dict[str, int]:
        return {kind: len(items) for kind, items in self.objects.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SNAPSHOT_SCHEMA,
            "source": {
                **self.source.to_dict(),
                "kind": self.source.saved_from or self.source.kind,  # a re-saved snapshot keeps its origin
                "locations": list(self.source.locations),
            },
            "objects": {kind: list(items) for kind, items in self.objects.items()},
            "gaps": [g.to_dict() for g in self.gaps],
            "findings": [f.to_dict() for f in self.findings],
        }

    def save(self, path: str | Path) -> None:
        """Write the snapshot as JSON (secrets already sanitized), whole or not at all (a full disk: ConfigError)."""
        write_output(path, json.dumps(self.to_dict(), separators=(",", ":")))


def build_snapshot(
    items: Iterable[RawObject],
    source: SourceInfo,
    *,
    gaps: Iterable[Gap] = (),
    findings: Iterable[Finding] = (),
    trust_sanitized: bool = False,
) -> Snapshot:
    """Group raw objects by kind, skipping (with a finding) what cannot be used.

    Objects without ``metadata.name`` and kinds novadiag does not read are not
    errors: a manifest directory holds Ingresses, CRDs and more. They are counted
    in findings so the user knows they were seen. ``trust_sanitized``: see :func:`scrub`.
    """
    admission = Admission(trust_sanitized=trust_sanitized)
    grouped: dict[str, list[RawObject]] = defaultdict(list)
    for obj in items:
        kept = admission.admit(obj)
        if kept is not None:
            grouped[kept["kind"]].append(kept)
    return assemble(grouped, source, gaps=gaps, findings=[*findings, *admission.findings()])


def assemble(
    grouped: Mapping[str, Iterable[RawObject]],
    source: SourceInfo,
    *,
    gaps: Iterable[Gap] = (),
    findings: Iterable[Finding] = (),
) -> Snapshot:
    """A Snapshot of objects already admitted (:class:`Admission`), kinds in their usual order."""
    objects = {kind: tuple(grouped[kind]) for kind in SNAPSHOT_KINDS if grouped.get(kind)}
    return Snapshot(source, objects, tuple(gaps), tuple(findings))


class Admission:
    """Which raw objects a Snapshot takes, one at a time, and what it says about the rest.

    A separate step so a live listing can admit each kind once it is listed,
    in the thread that listed it, while other kinds are still on the wire.
    """

    def __init__(self, *, trust_sanitized: bool = False) -> None:
        self.trust_sanitized = trust_sanitized  # only for snapshot files novadiag wrote (see scrub)
        self.notes: list[Finding] = []
        self.skipped_kinds: dict[str, int] = defaultdict(int)

    def admit(self, obj: Any) -> RawObject | None:
        """The object as a Snapshot keeps it (namespace defaulted, credentials scrubbed), or None."""
        if not isinstance(obj, Mapping):
            self.notes.append(Finding("warning", "invalid-object", "skipped an entry that is not an object"))
            return None
        kind = obj.get("kind")
        meta = obj.get("metadata")
        if not isinstance(kind, str) or not kind:
            self.notes.append(Finding("warning", "invalid-object", "skipped an object without a kind"))
            return None
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
            self.notes.append(Finding("warning", "invalid-object", f"skipped a {kind} without metadata.name"))
            return None
        if kind not in SNAPSHOT_KINDS:
            self.skipped_kinds[kind] += 1
            return None
        problem = shape_problem(kind, obj)
        if problem is not None:  # what an API server would have refused: skipped, said, never a crash
            self.notes.append(Finding("warning", "invalid-object", f"skipped {kind} {meta['name']!r}: {problem}"))
            return None
        if kind not in CLUSTER_SCOPED and not meta.get("namespace"):
            obj = {**obj, "metadata": {**meta, "namespace": "default"}}
        return scrub(kind, obj, trust_sanitized=self.trust_sanitized)

    def findings(self) -> list[Finding]:
        """The notes about skipped objects, then one ``kind-not-read`` per kind novadiag does not read."""
        skipped = [
            Finding("info", "kind-not-read", f"{n} object(s) of kind {kind} not read")
            for kind, n in sorted(self.skipped_kinds.items())
        ]
        return [*self.notes, *skipped]

    def merge(self, other: Admission) -> None:
        self.notes.extend(other.notes)
        for kind, n in other.skipped_kinds.items():
            self.skipped_kinds[kind] += n


def scrub(kind: str, obj: RawObject, *, trust_sanitized: bool = False) -> RawObject:
    """The object without credentials: Secrets sanitized, inline credentials masked.

    A snapshot is written to disk and shared, so nothing it keeps may hold a
    credential:

    * Secrets: :func:`sanitize_secret` (hosts kept, everything else withheld).
      ``trust_sanitized``: a Secret marked as sanitized holds plain strings
      (snapshot files, snapshots already admitted), which are sanitized again
      all the same (a file can be edited); without it (manifests) the marker
      is ignored and ``data`` read as base64.
    * Annotations of every object: ``last-applied-configuration`` (the whole
      object again, Secret data included) is dropped, other values masked with
      :func:`redact` (a DSN in a ``note`` annotation).
    * ConfigMap values, workload env values, container ``args`` and ``command``
      (of init and ephemeral containers too) and the ``exec`` commands of probes
      and lifecycle hooks: masked with :func:`redact`, which keeps hosts, so
      references still work; an env value or ConfigMap key whose name says it
      is a credential (``DB_PASSWORD``) is sanitized as a Secret value is.

    Objects are copied only when something changes: most have nothing to hide,
    and a big cluster has many.
    """
    if kind == "Secret":
        return sanitize_secret(obj, trust_marker=trust_sanitized)
    obj = _scrub_annotations(obj)
    if kind == "ConfigMap":
        data = obj.get("data") or {}
        masked = {k: _masked_data_value(k, v) for k, v in data.items()}
        return obj if masked == data else {**obj, "data": masked}
    template = pod_template(obj) if kind in WORKLOAD_KINDS else None
    if template is None:
        return obj
    if _has_inline_credentials(template.get("spec") or {}):
        obj = copy.deepcopy(obj)
        _mask_containers((pod_template(obj) or {}).get("spec") or {})
    template = pod_template(obj) or {}
    scrubbed = _scrub_annotations(cast(RawObject, template))  # the pod template's annotations too
    if scrubbed is not template:
        obj = copy.deepcopy(obj)
        copied = pod_template(obj)
        if isinstance(copied, dict):
            copied["metadata"] = scrubbed["metadata"]
    return obj


def _scrub_annotations(obj: RawObject) -> RawObject:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping) or not annotations:
        return obj
    kept = {k: _masked_annotation(k, v) for k, v in annotations.items() if k != LAST_APPLIED}
    if kept == annotations:
        return obj
    return cast(RawObject, {**obj, "metadata": {**meta, "annotations": kept}})


def _masked_data_value(key: object, value: object) -> object:
    """A ConfigMap key named like a credential (``DB_PASSWORD``) is sanitized as a Secret value is, as env is."""
    if not isinstance(value, str):
        return value
    if isinstance(key, str) and names_a_secret(key):
        return sanitize_secret_value(key, value)
    return redact(value)


def _masked_annotation(key: object, value: object) -> object:
    """An annotation named like a credential (``example.com/api-token``) is sanitized as a Secret value is."""
    if not isinstance(value, str):
        return value
    if isinstance(key, str) and annotation_names_a_secret(key):
        return sanitize_secret_value(key, value)
    return redact(value)


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kinds = ("initContainers", "containers", "ephemeralContainers")
    return [c for key in kinds for c in spec.get(key) or () if isinstance(c, Mapping)]


def _exec_handlers(container: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``exec`` blocks of a container's probes and lifecycle hooks: commands that may carry a password
    (``redis-cli -a PW ping``, ``mysql --password PW``) as much as ``args`` do."""
    actions = (exec_action(container, path) for _, path, _ in EXEC_HANDLERS)
    return [a for a in actions if a is not None]


def _masked_env_value(env: Mapping[str, Any]) -> str | None:
    """The value a snapshot keeps for one env entry (None: no plain value)."""
    value = env.get("value")
    if not isinstance(value, str):
        return None
    name = env.get("name")
    if isinstance(name, str) and names_a_secret(name):
        return sanitize_secret_value(name, value)
    return redact(value)


def _has_inline_credentials(spec: Mapping[str, Any]) -> bool:
    for container in _containers(spec):
        for env in container.get("env") or ():
            if type(env) is dict and env.get("value") != _masked_env_value(env):  # JSON and YAML give dicts
                return True
        for key in ("args", "command"):
            items = container.get(key)
            if isinstance(items, list) and redact_command(items) != items:
                return True
        if any(redact_command(e["command"]) != e["command"] for e in _exec_handlers(container)):
            return True
    return False


def _mask_containers(spec: Mapping[str, Any]) -> None:
    for container in _containers(spec):
        for env in container.get("env") or ():
            if isinstance(env, dict) and isinstance(env.get("value"), str):
                env["value"] = _masked_env_value(env)
        for key in ("args", "command"):
            items = container.get(key)
            if isinstance(items, list) and isinstance(container, dict):
                container[key] = redact_command(items)
        for handler in _exec_handlers(container):
            handler["command"] = redact_command(handler["command"])


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big, acyclic structure is built.

    Parsing a cluster creates millions of dicts and lists and not one reference
    cycle, yet every 700 allocations the collector runs, and its older
    generations rescan the whole growing heap: three quarters of ``json.loads``'
    time on a 90 MB snapshot. Reference counting still frees everything while
    paused; collection resumes afterwards (nesting is safe: only the outermost
    pause turns it back on).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _promote_to_oldest()
            gc.enable()


def _promote_to_oldest() -> None:
    """Move every tracked object to the oldest generation without looking at any of them.

    Objects allocated while the collector was paused all sit in the youngest
    generation, so the first collection after the pause would walk every one of
    them (a second on a large cluster), and the next one again when they move up.
    ``freeze`` and ``unfreeze`` splice the generation lists instead: only a full
    collection looks at them, as it would at any old object. Skipped when the
    caller has frozen objects of its own, which ``unfreeze`` would release.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def load_snapshot_file(path: str | Path) -> Snapshot:
    """Read a file written by :meth:`Snapshot.save` (or ``novadiag snapshot save``)."""
    with paused_gc():
        return _load_snapshot_file(Path(path))


def _load_snapshot_file(p: Path) -> Snapshot:
    data_bytes = read_bounded_file(p, limit=MAX_INPUT_BYTES, what="snapshot file")  # /dev/zero, a FIFO
    try:
        data = json.loads(data_bytes)
    except (ValueError, RecursionError) as exc:  # invalid JSON or UTF-8, a huge integer, absurd nesting
        raise ConfigError(f"{p}: not a novadiag snapshot file (invalid JSON)") from exc
    if not isinstance(data, dict) or data.get("schema") != SNAPSHOT_SCHEMA:
        raise ConfigError(f"{p}: not a novadiag snapshot file (schema is not {SNAPSHOT_SCHEMA})")
    problem = _file_shape_problem(data)
    if problem is not None:
        raise ConfigError(f"{p}: not a novadiag snapshot file ({problem})")
    src = data.get("source") or {}
    saved_from = src.get("kind")
    source = SourceInfo(
        kind="snapshot",
        context=src.get("context"),
        cluster_domain=src.get("cluster_domain") or "cluster.local",
        locations=(str(p),),
        saved_from=saved_from if saved_from in get_args(SourceKind) and saved_from != "snapshot" else None,
    )
    objects = data.get("objects") or {}
    gaps = [_gap(g) for g in data.get("gaps") or []]
    items = (obj for kind in SNAPSHOT_KINDS for obj in objects.get(kind, ()))
    return build_snapshot(items, source, gaps=gaps, trust_sanitized=True)


def _gap(raw: Mapping[str, Any]) -> Gap:
    """A gap as saved; files written before ``read_in`` and ``verb`` existed mean a list gap everywhere."""
    verb: GapVerb = "create" if raw.get("verb") == "create" else "list"
    return Gap(
        raw.get("kind", "?"), raw.get("namespace"), raw.get("reason", ""), tuple(raw.get("read_in") or ()), verb
    )


def _file_shape_problem(data: Mapping[str, Any]) -> str | None:
    """Sections of the wrong type in a snapshot file (hand-edited, truncated, another tool's)."""
    source, objects, gaps = data.get("source") or {}, data.get("objects") or {}, data.get("gaps") or []
    if not isinstance(source, dict) or not all(
        isinstance(source.get(k) or "", str) for k in ("context", "cluster_domain")
    ):
        return "source is not a mapping of strings"
    if not isinstance(objects, dict) or not all(isinstance(v, list) for v in objects.values()):
        return "objects is not a mapping of lists"
    if not isinstance(gaps, list) or not all(isinstance(g, dict) for g in gaps):
        return "gaps is not a list of mappings"
    for gap in gaps:
        fields = (gap.get("kind", "?"), gap.get("reason", ""), gap.get("namespace") or "")
        if not all(isinstance(value, str) for value in fields):
            return "a gap's kind, namespace or reason is not a string"
        read_in = gap.get("read_in") or []
        if not isinstance(read_in, list) or not all(isinstance(ns, str) for ns in read_in):
            return "a gap's read_in is not a list of namespace names"
    return None


def object_ref(obj: RawObject) -> ObjectRef:
    """The ObjectRef naming a raw object."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind"))
    ns = None if kind in CLUSTER_SCOPED else meta.get("namespace") or "default"
    return ObjectRef(kind, ns, str(meta.get("name")))
