"""Host replacements, grouped by the place they are written.

A fix or a move decides "this reference must say ``postgres`` instead of
``postgres.nova``"; :class:`Edits` finds where that text lives (a literal env
value, a ConfigMap key, a Secret key, or the variable a ``$(VAR)`` expansion
pulls it from), checks that it is really there, and groups replacements per
place so that one ConfigMap key holding two hosts is rewritten once, in one
pass. The result is consumed two ways: applied to the copies a consolidation
creates, or turned into in-place patches (``in_place_changes``) with exact
rollbacks.

Hosts named outside the env are rewritten where they are written too: a
``command``/``args``/exec-handler item (an argument, or the ``sh -c`` script
the item holds: :mod:`novadiag.planning.listitems`) in the workload, and a mounted
ConfigMap file in its ConfigMap key, whose consumers then restart (the kubelet
updates the file in place, but programs read their config at start).

A place whose snapshot value is masked (it holds a credential) is never
patched with that value: its change is an ``edit`` that replaces the hosts in
the live value at apply time, and its rollback an ``edit`` that puts them back.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from novadiag.model import ObjectRef, Reference
from novadiag.planning.handwork import file_instruction, manual_change
from novadiag.planning.listitems import ItemPlace, locate_item
from novadiag.planning.operations import HostEdit, Operation, Replacement
from novadiag.planning.paths import FieldPath, get_at, is_masked, is_rewritten, patch_for, set_at
from novadiag.planning.rename import (
    DataKeys,
    Location,
    contains_host,
    env_patch,
    env_value,
    locate_env,
    replace_hosts,
    set_env_value,
    value_path,
)
from novadiag.planning.textchange import file_change, host_change, script_command
from novadiag.snapshot import Snapshot

_EXPANSION = re.compile(r"\$\(([^)]*)\)")

ValueKey = tuple[ObjectRef, str, str]
DataKey = tuple[str, str, str]
ItemKey = tuple[ObjectRef, FieldPath]


@dataclass
class Change:
    """One in-place change: the operation, its exact inverse, and who must restart to see it."""

    operation: Operation
    rollback: Operation
    edges: tuple[str, ...]
    restart: tuple[ObjectRef, ...] = ()
    where: str = ""


@dataclass
class Edits:
    """Replacements by place; ``add_fix`` records one, or says why it cannot."""

    snapshot: Snapshot
    values: dict[ValueKey, tuple[Location, dict[str, str]]] = field(default_factory=dict)
    data: dict[DataKey, dict[str, dict[str, str]]] = field(default_factory=dict)
    items: dict[ItemKey, tuple[ItemPlace, dict[str, str]]] = field(default_factory=dict)
    edges: dict[tuple[str, ...], list[str]] = field(default_factory=lambda: defaultdict(list))
    consumers: dict[DataKey, set[ObjectRef]] = field(default_factory=lambda: defaultdict(set))
    _keys: dict[str, DataKeys] = field(default_factory=dict)

    # -- recording ---------------------------------------------------------------------------
    def add_fix(self, edge_id: str, ref: Reference, new_host: str, new_port: int | None) -> tuple[str | None, str]:
        """Record the rewrite of one reference; returns (reason it is impossible or None, where)."""
        host = ref.host
        if ref.env is None and ref.origin.startswith("file:"):
            return self._add_file(edge_id, ref, new_host, new_port)
        if ref.env is None:
            return self._add_item(edge_id, ref, new_host, new_port)
        if new_port is None or new_port == ref.port:
            return self._add(edge_id, ref, ref.env, host, new_host)
        pair = f"{host}:{ref.port}"
        problem, where = self._add(edge_id, ref, ref.env, pair, f"{new_host}:{new_port}", quiet=True)
        if problem is None:
            return None, where
        if ref.port_env:
            problem, where = self._add(edge_id, ref, ref.env, host, new_host)
            if problem is None:
                problem, _ = self._add(edge_id, ref, ref.port_env, str(ref.port), str(new_port))
            return problem, where
        return self._add(edge_id, ref, ref.env, host, f"{new_host}:{new_port}")

    def _add(
        self, edge_id: str, ref: Reference, env: str, old: str, new: str, *, quiet: bool = False
    ) -> tuple[str | None, str]:
        workload = self.snapshot.get(ref.workload.kind, ref.workload.namespace, ref.workload.name)
        if workload is None:
            return f"{ref.workload} is not in the snapshot", ""
        ns = ref.namespace
        loc = self._find(workload, ref.container, env, old, ns)
        if loc is None:
            why = f"{old} is not written literally in {env} (nor in a variable it expands)"
            return (why if not quiet else why), ""
        mapping = self._mapping(ref.workload, ns, loc)
        if mapping.get(old, new) != new:
            return f"{loc.describe(ns)} must already change {old} to {mapping[old]}", loc.describe(ns)
        mapping[old] = new
        self.edges[self._place(ref.workload, ns, loc)].append(edge_id)
        if loc.kind != "value":
            self.consumers[(loc.kind, ns, str(loc.name))].add(ref.workload)
        return None, loc.describe(ns)

    def _add_file(self, edge_id: str, ref: Reference, new_host: str, new_port: int | None) -> tuple[str | None, str]:
        """A host in a mounted file: rewritten in its ConfigMap or Secret key, whose readers then restart.

        A Secret's key is rewritten in the live value at apply time (the
        snapshot holds only the hosts of the file), and only where the file
        writes ``host:port``: the live text cannot be looked at to tell a bare
        host from a key or a word of the same name.
        """
        source, _, name_key = ref.origin.removeprefix("file:").partition("/")
        name, _, key = name_key.partition("/")
        kind = "Secret" if source == "secret" else "ConfigMap"
        ns = ref.namespace
        text = ((self.snapshot.get(kind, ns, name) or {}).get("data") or {}).get(key)
        old, new = file_change(text if isinstance(text, str) else "", ref, new_host, new_port, kind)
        if old is None:
            return file_instruction(ref, new_host, new_port), ref.slot
        where = f"{kind} {ns}/{name} key {key}"
        mapping = self.data.setdefault((kind, ns, name), {}).setdefault(key, {})
        if mapping.get(old, new) != new:
            return f"{where} must already change {old} to {mapping[old]}", where
        mapping[old] = new
        self.edges[(kind, ns, name, key)].append(edge_id)
        self.consumers[(kind, ns, name)].add(ref.workload)
        return None, where

    def _add_item(self, edge_id: str, ref: Reference, new_host: str, new_port: int | None) -> tuple[str | None, str]:
        """A host in a ``command``/``args``/exec item, or in the script one holds: rewritten in that item.

        A host that came in through ``$(VAR)`` is not in the item: it is
        rewritten in the variable, as an env reference is.
        """
        workload = self.snapshot.get(ref.workload.kind, ref.workload.namespace, ref.workload.name)
        if workload is None:
            return f"{ref.workload} is not in the snapshot", ""
        place = locate_item(workload, ref)
        if isinstance(place, str):
            return manual_change(ref, new_host, new_port, why=place), ref.slot
        text = str(get_at(workload, place.path))
        items = get_at(workload, place.list_path)
        if any(isinstance(i, str) and is_masked(i) for i in items):
            why = "its list holds a credential the snapshot masked, and the plan never writes a masked value"
            return manual_change(ref, new_host, new_port, why=why), ref.slot
        mapping = self.items.get((ref.workload, place.path), (place, {}))[1]
        command = script_command(text, ref)
        if command is not None:  # only the command that names the host changes, not an echo of it
            current = mapping.get(command, command)
            host, new_text = host_change(current, ref, new_host, new_port)
            old, new = (command, replace_hosts(current, {host: new_text})) if host else (None, "")
        else:
            old, new = host_change(text, ref, new_host, new_port)
        if old is None:
            return self._add_expanded(edge_id, ref, text, new_host, new_port, place)
        if command is None and mapping.get(old, new) != new:
            return f"{place.describe()} must already change {old} to {mapping[old]}", place.describe()
        mapping[old] = new
        self.items[(ref.workload, place.path)] = (place, mapping)
        self.edges[("item", str(ref.workload), *place.path)].append(edge_id)
        return None, place.describe()

    def _add_expanded(
        self, edge_id: str, ref: Reference, text: str, new_host: str, new_port: int | None, place: ItemPlace
    ) -> tuple[str | None, str]:
        """The host is not written in the item: the env var a ``$(VAR)`` in it expands holds it, or nobody does."""
        for name in _EXPANSION.findall(text):
            problem, where = self.add_fix(edge_id, replace(ref, env=name), new_host, new_port)
            if problem is None:
                return None, where
        if contains_host(text, ref.host):
            why = f"the port is written apart from the host in {place.describe()}, and it changes too"
        else:
            why = f"{ref.host} is not written literally in {place.describe()} (nor in a variable it expands)"
        return manual_change(ref, new_host, new_port, why=why), ref.slot

    def _find(self, workload: Mapping[str, Any], container: str, env: str, old: str, ns: str) -> Location | None:
        keys = self._data_keys(ns)
        loc = locate_env(workload, container, env, keys)
        if loc is None:
            return None
        if self._holds(workload, loc, old, ns):
            return loc
        if loc.kind == "value":
            for name in _EXPANSION.findall(env_value(workload, loc) or ""):
                inner = locate_env(workload, container, name, keys)
                if inner is not None and self._holds(workload, inner, old, ns):
                    return inner
        return None

    def _holds(self, workload: Mapping[str, Any], loc: Location, old: str, ns: str) -> bool:
        if loc.kind == "value":
            text = env_value(workload, loc)
        else:
            obj = self.snapshot.get(loc.kind, ns, str(loc.name)) or {}
            text = (obj.get("data") or {}).get(str(loc.key))
        return isinstance(text, str) and contains_host(text, old)

    def _data_keys(self, ns: str) -> DataKeys:
        if ns not in self._keys:
            objects = {
                (kind, str((o.get("metadata") or {}).get("name"))): o
                for kind in ("ConfigMap", "Secret")
                for o in self.snapshot.of(kind)
                if (o.get("metadata") or {}).get("namespace") == ns
            }
            self._keys[ns] = DataKeys(objects)
        return self._keys[ns]

    def _mapping(self, workload: ObjectRef, ns: str, loc: Location) -> dict[str, str]:
        if loc.kind == "value":
            key = (workload, loc.container, loc.env)
            if key not in self.values:
                self.values[key] = (loc, {})
            return self.values[key][1]
        per_key = self.data.setdefault((loc.kind, ns, str(loc.name)), {})
        return per_key.setdefault(str(loc.key), {})

    @staticmethod
    def _place(workload: ObjectRef, ns: str, loc: Location) -> tuple[str, ...]:
        if loc.kind == "value":
            return ("value", str(workload), loc.container, loc.env)
        return (loc.kind, ns, str(loc.name), str(loc.key))

    # -- reading -----------------------------------------------------------------------------
    def edges_for_object(self, kind: str, namespace: str, name: str) -> list[str]:
        """Edge ids whose rewrite lands in this object (a workload's env, or a ConfigMap/Secret)."""
        out: list[str] = []
        for place, ids in self.edges.items():
            if place[0] == "value" and kind not in ("ConfigMap", "Secret"):
                if place[1] == str(ObjectRef(kind, namespace, name)):
                    out.extend(ids)
            elif place[:3] == (kind, namespace, name):
                out.extend(ids)
        return out

    def apply_to_workload(self, ref: ObjectRef, obj: dict[str, Any]) -> None:
        """Rewrite the literal env values of a workload copy (the copy is edited in place)."""
        for (workload, _container, _env), (loc, mapping) in self.values.items():
            if workload == ref:
                current = env_value(obj, loc) or ""
                set_env_value(obj, loc, replace_hosts(current, mapping))
        for (workload, path), (_place, mapping) in self.items.items():
            if workload == ref:
                set_at(obj, path, replace_hosts(str(get_at(obj, path)), mapping))

    def apply_to_config_map(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        for key, mapping in self.data.get(("ConfigMap", namespace, name), {}).items():
            data = obj.setdefault("data", {})
            if isinstance(data.get(key), str):
                data[key] = replace_hosts(data[key], mapping)

    def host_edits_for(self, ref: ObjectRef) -> dict[FieldPath, HostEdit]:
        """The host replacements recorded for one workload's env values or one ConfigMap's keys, by path."""
        if ref.kind == "ConfigMap":
            per_key = self.data.get(("ConfigMap", ref.namespace or "default", ref.name), {})
            return {("data", key): host_edit(("data", key), mapping) for key, mapping in per_key.items()}
        out: dict[FieldPath, HostEdit] = {}
        for (workload, _container, _env), (loc, mapping) in self.values.items():
            if workload == ref:
                path = value_path(ref.kind, loc)
                out[path] = host_edit(path, mapping)
        for (workload, path), (_place, mapping) in self.items.items():
            if workload == ref:
                out[path] = host_edit(path, mapping)
        return out

    def secret_replacements(self, namespace: str, name: str) -> tuple[Replacement, ...]:
        per_key = self.data.get(("Secret", namespace, name), {})
        return tuple(
            Replacement(key, old, new) for key, mapping in sorted(per_key.items()) for old, new in mapping.items()
        )

    def in_place_changes(self) -> list[Change]:
        """Patches for every recorded place, with inverses: data first, then one env patch per workload.

        ConfigMap/Secret changes list the workloads that must restart to see them;
        an env patch rolls its workload out by itself, after the data changed.
        """
        changes = [self._data_change(kind, ns, name, keys) for (kind, ns, name), keys in sorted(self.data.items())]
        by_workload: dict[ObjectRef, list[tuple[Location, dict[str, str]]]] = defaultdict(list)
        for (workload, _c, _e), (loc, mapping) in self.values.items():
            by_workload[workload].append((loc, mapping))
        for workload, entries in sorted(by_workload.items()):
            changes.append(self._env_change(workload, entries))
        by_list: dict[ObjectRef, dict[FieldPath, list[tuple[ItemPlace, dict[str, str]]]]] = defaultdict(dict)
        for (workload, _path), (place, mapping) in self.items.items():
            by_list[workload].setdefault(place.list_path, []).append((place, mapping))
        for workload, lists in sorted(by_list.items()):
            changes.append(self._item_change(workload, lists))
        return changes

    def _item_change(
        self, workload: ObjectRef, lists: Mapping[FieldPath, list[tuple[ItemPlace, dict[str, str]]]]
    ) -> Change:
        """One strategic patch setting the rewritten lists of a workload; its rollback sets them back as they were.

        The pod template changes, so the workload rolls its pods out by itself.
        """
        obj = self.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
        old: dict[FieldPath, Any] = {path: list(get_at(obj, path)) for path in lists}
        new: dict[FieldPath, Any] = {path: list(items) for path, items in old.items()}
        edits: list[HostEdit] = []
        edges: list[str] = []
        for path, entries in sorted(lists.items()):
            for place, mapping in sorted(entries, key=lambda entry: entry[0].index):
                new[path][place.index] = replace_hosts(old[path][place.index], mapping)
                edits.append(host_edit(place.path, mapping))
                edges += self.edges[("item", str(workload), *place.path)]
        where = ", ".join(p.describe() for entries in lists.values() for p, _ in entries) + f" of {workload}"
        return Change(
            operation=Operation("patch", workload, patch=patch_for(new), strategic=True, host_edits=tuple(edits)),
            rollback=Operation("patch", workload, patch=patch_for(old), strategic=True),
            edges=tuple(edges),
            where=where,
        )

    def _env_change(self, workload: ObjectRef, entries: list[tuple[Location, dict[str, str]]]) -> Change:
        obj = self.snapshot.get(workload.kind, workload.namespace, workload.name) or {}
        ns = workload.namespace or "default"
        old = {loc: env_value(obj, loc) or "" for loc, _ in entries}
        edits = tuple(host_edit(value_path(workload.kind, loc), mapping) for loc, mapping in entries)
        edges = [e for loc, _ in entries for e in self.edges[self._place(workload, ns, loc)]]
        where = f"env {', '.join(sorted({loc.env for loc in old}))} of {workload}"
        if any(is_rewritten(loc.env, value) for loc, value in old.items()):
            originals = {value_path(workload.kind, loc): value for loc, value in old.items()}
            return _live_change(workload, edits, originals, edges=tuple(edges), restart=(), where=where)
        forward = {loc: replace_hosts(old[loc], mapping) for loc, mapping in entries}
        return Change(
            operation=Operation(
                "patch", workload, patch=env_patch(workload.kind, forward), strategic=True, host_edits=edits
            ),
            rollback=Operation("patch", workload, patch=env_patch(workload.kind, old), strategic=True),
            edges=tuple(edges),
            where=where,
        )

    def _data_change(self, kind: str, ns: str, name: str, per_key: Mapping[str, Mapping[str, str]]) -> Change:
        ref = ObjectRef(kind, ns, name)
        edges = tuple(e for key in per_key for e in self.edges[(kind, ns, name, key)])
        restart = tuple(sorted(self.consumers[(kind, ns, name)]))
        if kind == "Secret":
            forward = tuple(Replacement(k, o, n) for k, m in sorted(per_key.items()) for o, n in m.items())
            backward = tuple(Replacement(r.key, r.new, r.old) for r in forward)
            return Change(
                Operation("rewrite-secret", ref, replacements=forward),
                Operation("rewrite-secret", ref, replacements=backward),
                edges,
                restart,
                f"Secret {ns}/{name}",
            )
        data = (self.snapshot.get(kind, ns, name) or {}).get("data") or {}
        old = {k: str(data.get(k, "")) for k in per_key}
        edits = tuple(host_edit(("data", k), m) for k, m in per_key.items())
        if any(is_rewritten(key, value) for key, value in old.items()):
            originals: dict[FieldPath, str] = {("data", k): value for k, value in old.items()}
            return _live_change(ref, edits, originals, edges=edges, restart=restart, where=f"ConfigMap {ns}/{name}")
        new = {k: replace_hosts(old[k], m) for k, m in per_key.items()}
        return Change(
            Operation("patch", ref, patch={"data": new}, host_edits=edits),
            Operation("patch", ref, patch={"data": old}),
            edges,
            restart,
            f"ConfigMap {ns}/{name}",
        )


def host_edit(path: FieldPath, mapping: Mapping[str, str]) -> HostEdit:
    return HostEdit(path, tuple(sorted(mapping.items())))


def _live_change(
    ref: ObjectRef,
    edits: tuple[HostEdit, ...],
    originals: Mapping[FieldPath, str],
    *,
    edges: tuple[str, ...],
    restart: tuple[ObjectRef, ...],
    where: str,
) -> Change:
    """A change to values the snapshot masked: hosts replaced in the live values, at apply time, both ways.

    ``originals`` are the masked values: their hosts are intact, which is all
    it takes to know whether the reverse edit gives the original back.
    """
    backward = [e.reverse_of(originals[e.path]) for e in edits]
    if all(b is not None for b in backward):
        rollback = Operation("edit", ref, host_edits=tuple(b for b in backward if b is not None))
    else:
        note = f"restore {where} from your own copy: a new host was already in it, so the old value cannot be derived"
        rollback = Operation("manual", ref, note=note)
    return Change(Operation("edit", ref, host_edits=edits), rollback, edges, restart, where)
