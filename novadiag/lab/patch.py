"""The three PATCH formats of the Kubernetes API, applied to raw JSON objects.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge
  recursively, ``null`` deletes, lists are replaced whole.
- Strategic merge patch (``application/strategic-merge-patch+json``, what
  ``kubectl apply``/``patch`` and the Python client send for built-in kinds): like a
  merge patch, except that lists with a *patch merge key* are merged element by
  element (containers and env by ``name``, container ports by ``containerPort``,
  volumeMounts by ``mountPath``, Service ports by ``port``, ...), primitive lists with
  the merge strategy (``finalizers``) are unioned, and the directives ``$patch``
  (``merge``/``replace``/``delete``), ``$retainKeys``, ``$setElementOrder/<list>`` and
  ``$deleteFromPrimitiveList/<list>`` are honoured. The merge keys below are those of
  the Kubernetes Go types (``patchMergeKey`` struct tags) for the fields that
  novadiag, kubectl and the lab's kinds use; every other list is atomic (replaced),
  which is also what the real server does for lists without a merge key.
- JSON patch (RFC 6902, ``application/json-patch+json``): add, remove, replace,
  move, copy and test, addressed by JSON pointers.

Inputs are never mutated: each function returns a new object.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
APPLY_PATCH_JSON = "application/apply-patch+json"

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "topologySpreadConstraints": "topologyKey",
}
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})
_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_ORDER_PREFIX = "$setElementOrder/"
_DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"


class PatchError(ValueError):
    """A patch that is malformed (400) or cannot be applied (422)."""

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# -- JSON merge patch ------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: the result of applying ``patch`` to ``target``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch -------------------------------------------------------------------

def merge_key_for(path: Sequence[str], kind: str | None = None) -> str | None:
    """The patch merge key of the list at ``path`` (field names from the object root)."""
    if not path:
        return None
    name = path[-1]
    parent = path[-2] if len(path) > 1 else None
    if name == "ports":
        if parent in _CONTAINER_LISTS:
            return "containerPort"
        if kind == "Service" and tuple(path) == ("spec", "ports"):
            return "port"
        return None
    if name == "addresses":
        return "type" if kind == "Node" and parent == "status" else None
    if name == "conditions" and parent != "status":
        return None
    return _MERGE_KEYS.get(name)


def strategic_merge_patch(original: Obj, patch: Obj, *, kind: str | None = None) -> Obj:
    """Apply a strategic merge patch to ``original`` (a raw object of ``kind``)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object", code=400)
    kind = kind or (original.get("kind") if isinstance(original, dict) else None)
    result = _merge_map(copy.deepcopy(original), patch, (), kind)
    if result is None:
        raise PatchError("a strategic merge patch may not delete the whole object")
    return result


def _merge_map(original: Obj, patch: Obj, path: tuple[str, ...], kind: str | None) -> Obj | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}", code=400)
    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list", code=400)
        original = {k: v for k, v in original.items() if k in retain}
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE_PREFIX):
            field = key[len(_DELETE_PRIMITIVE_PREFIX):]
            drop = value if isinstance(value, list) else []
            if isinstance(original.get(field), list):
                original[field] = [v for v in original[field] if v not in drop]
        elif key.startswith("$"):
            continue
        elif value is None:
            original.pop(key, None)
        else:
            _merge_field(original, key, value, path + (key,), kind)
    for key, value in patch.items():
        if key.startswith(_ORDER_PREFIX) and isinstance(value, list):
            field = key[len(_ORDER_PREFIX):]
            if isinstance(original.get(field), list):
                original[field] = _ordered(original[field], value, merge_key_for(
                    path + (field,), kind))
    return original


def _merge_field(original: Obj, key: str, value: Any, path: tuple[str, ...],
                 kind: str | None) -> None:
    current = original.get(key)
    if isinstance(value, dict):
        base = current if isinstance(current, dict) else {}
        merged = _merge_map(base, value, path, kind)
        if merged is None:
            original.pop(key, None)
        else:
            original[key] = merged
    elif isinstance(value, list):
        original[key] = _merge_list(current if isinstance(current, list) else [], value,
                                    path, kind)
    else:
        original[key] = copy.deepcopy(value)


def _merge_list(original: list[Any], patch: list[Any], path: tuple[str, ...],
                kind: str | None) -> list[Any]:
    if any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" and len(p) == 1
           for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and _DIRECTIVE in p)]
    key = merge_key_for(path, kind)
    if key is not None and all(isinstance(p, dict) for p in patch):
        return _merge_keyed_list(original, patch, key, path, kind)
    if path and path[-1] in _MERGED_PRIMITIVE_LISTS:
        merged = list(original)
        merged.extend(v for v in patch if v not in merged)
        return merged
    return copy.deepcopy(patch)


def _merge_keyed_list(original: list[Any], patch: list[Obj], key: str,
                      path: tuple[str, ...], kind: str | None) -> list[Any]:
    result = list(original)
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, o in enumerate(result)
                      if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            clean = _merge_map({}, item, path, kind)
            if clean is not None:
                result.append(clean)
            continue
        merged = _merge_map(copy.deepcopy(result[index]), item, path, kind)
        if merged is None:
            result.pop(index)
        else:
            result[index] = merged
    return result


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Reorder ``items`` as ``$setElementOrder`` says; unlisted items keep their place last."""
    def ident(item: Any) -> Any:
        if key is not None and isinstance(item, dict):
            return item.get(key)
        return item

    wanted = [ident(o) for o in order]
    rank = {repr(v): i for i, v in enumerate(wanted)}
    listed = sorted((i for i in items if repr(ident(i)) in rank),
                    key=lambda i: rank[repr(ident(i))])
    return listed + [i for i in items if repr(ident(i)) not in rank]


# -- JSON patch ------------------------------------------------------------------------------

def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: apply ``operations`` in order; any failure leaves ``target`` untouched."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", code=400)
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", code=400)
        doc = _apply_operation(doc, op)
    return doc


def _apply_operation(doc: Any, op: Obj) -> Any:
    kind = op["op"]
    path = _pointer(op["path"])
    if kind == "add":
        return _add(doc, path, copy.deepcopy(_required(op, "value")))
    if kind == "remove":
        _remove(doc, path)
        return doc
    if kind == "replace":
        _resolve(doc, path)
        if not path:
            return copy.deepcopy(_required(op, "value"))
        _remove(doc, path)
        return _add(doc, path, copy.deepcopy(_required(op, "value")))
    if kind in ("move", "copy"):
        source = _pointer(str(_required(op, "from")))
        value = copy.deepcopy(_resolve(doc, source))
        if kind == "move":
            _remove(doc, source)
        return _add(doc, path, value)
    if kind == "test":
        if _resolve(doc, path) != _required(op, "value"):
            raise PatchError(f"testing value {op['path']} failed")
        return doc
    raise PatchError(f"unexpected kind: {kind!r}", code=400)


def _required(op: Obj, field: str) -> Any:
    if field not in op:
        raise PatchError(f"JSON patch operation {op['op']!r} needs {field!r}", code=400)
    return op[field]


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"invalid JSON pointer {text!r}", code=400)
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _resolve(doc: Any, path: list[str]) -> Any:
    node = doc
    for part in path:
        node = _child(node, part)
    return node


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            raise PatchError(f"missing value at {part!r}")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, allow_end=False)]
    raise PatchError(f"cannot descend into a scalar at {part!r}")


def _index(items: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(items)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise PatchError(f"invalid array index {part!r}")
    index = int(part)
    if index > len(items) or (index == len(items) and not allow_end):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _resolve(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"cannot add to a scalar at {last!r}")
    return doc


def _remove(doc: Any, path: list[str]) -> None:
    if not path:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"missing value at {last!r}")
        del parent[last]
    elif isinstance(parent, list):
        parent.pop(_index(parent, last, allow_end=False))
    else:
        raise PatchError(f"cannot remove from a scalar at {last!r}")


def apply_patch(original: Obj, body: Any, content_type: str, *, kind: str | None = None) -> Any:
    """Dispatch on the request's Content-Type (parameters ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == JSON_PATCH:
        return json_patch(original, body)
    if media == MERGE_PATCH:
        if not isinstance(body, dict):
            raise PatchError("a merge patch must be a JSON object", code=400)
        return merge_patch(original, body)
    if media in (STRATEGIC_MERGE_PATCH, APPLY_PATCH_YAML, APPLY_PATCH_JSON):
        return strategic_merge_patch(original, body, kind=kind)
    raise PatchError(f"unsupported patch type {media!r}", code=415)
