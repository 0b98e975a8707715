"""Addressing one value inside a Kubernetes object, the way the API merges it.

A plan that must not hold a credential cannot carry the value it changes; it
carries *where* the value is and which hosts in it change, and the value is
read from the live object when the step runs. A :data:`FieldPath` names that
place so it survives between the snapshot and the live object:

- a plain segment is a mapping key (``spec``, ``data``, ``DB_URL``);
- ``name=X`` picks the list element whose ``name`` is ``X`` (containers and env
  vars are merged by name, so the same path finds them whatever their order);
- ``#N`` picks the N-th list element (``args``, ``command``).

Nothing in a path can be confused with a key: env var names, data keys and
annotation keys cannot hold ``=``, and no Kubernetes key starts with ``#``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from novadiag.redaction import MASK, REDACTED, annotation_names_a_secret, names_a_secret

FieldPath = tuple[str, ...]


def is_masked(text: str) -> bool:
    """Whether a snapshot value hides part of the real one (``***``) or all of it (``<redacted>``)."""
    return MASK in text or REDACTED in text


def is_rewritten(name: str, text: str) -> bool:
    """Whether the snapshot holds less than the real value named ``name`` (an env var, a data key).

    Besides masks, a value whose name says it is a credential (``DB_CREDENTIALS``)
    is kept only as the hosts it names (``db:1433``), with no mark at all: the
    real value is somewhere else, and only the live object has it.
    """
    return is_masked(text) or names_a_secret(name)


def path_text(path: FieldPath) -> str:
    """``spec.template.spec.containers[name=app].env[name=DB_URL].value``: for plans and messages."""
    out = ""
    for segment in path:
        if "=" in segment or segment.startswith("#"):
            out += f"[{segment.lstrip('#')}]"
        else:
            out += ("." if out else "") + segment
    return out


def get_at(obj: Any, path: FieldPath) -> Any:
    """The value at ``path`` (None when any part of it is missing)."""
    node = obj
    for segment in path:
        node = _child(node, segment)
        if node is None:
            return None
    return node


def _child(node: Any, segment: str) -> Any:
    if isinstance(node, list):
        if segment.startswith("#"):
            index = int(segment[1:])
            return node[index] if index < len(node) else None
        field, _, value = segment.partition("=")
        return next((item for item in node if isinstance(item, Mapping) and item.get(field) == value), None)
    if isinstance(node, Mapping):
        return node.get(segment)
    return None


def set_at(obj: Any, path: FieldPath, value: Any) -> None:
    """Set the value at ``path`` in place; KeyError when the place does not exist."""
    parent = get_at(obj, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and "=" not in last and not last.startswith("#"):
        parent[last] = value
        return
    if isinstance(parent, list) and last.startswith("#") and int(last[1:]) < len(parent):
        parent[int(last[1:])] = value
        return
    raise KeyError(path_text(path))


def masked_paths(obj: Any, prefix: FieldPath = ()) -> Iterator[FieldPath]:
    """Every place in ``obj`` holding a string the snapshot masked or rewrote, in document order."""
    if isinstance(obj, str):
        if is_masked(obj) or _named_like_a_credential(prefix):
            yield prefix
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from masked_paths(value, (*prefix, str(key)))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            name = item.get("name") if isinstance(item, Mapping) else None
            segment = f"name={name}" if isinstance(name, str) and "=" not in name else f"#{i}"
            yield from masked_paths(item, (*prefix, segment))


def _named_like_a_credential(path: FieldPath) -> bool:
    """A place the snapshot keeps as its hosts only, by its name: see :func:`is_rewritten`.

    An env entry's ``value`` or a ConfigMap's ``data`` key named like a
    credential, and an annotation whose key says so (the snapshot's
    ``_masked_annotation``), wherever the annotations are (object or pod template).
    """
    if len(path) >= 2 and path[-1] == "value" and path[-2].startswith("name="):
        return names_a_secret(path[-2][len("name=") :])
    if len(path) >= 2 and path[-2] == "annotations":
        return annotation_names_a_secret(path[-1])
    return len(path) == 2 and path[0] == "data" and names_a_secret(path[1])


def without(obj: Any, paths: set[FieldPath]) -> Any:
    """A copy of ``obj`` with the values at ``paths`` set to None: what a plan document shows for them."""
    out = copy.deepcopy(obj)
    for path in paths:
        if get_at(out, path) is not None:
            set_at(out, path, None)
    return out


def patch_for(values: Mapping[FieldPath, Any]) -> dict[str, Any]:
    """The patch that sets each value (a string or a whole list) at its path; ``name=X`` segments merge by name.

    Used as a strategic merge patch for workloads (containers and env merge by
    ``name``) and as a merge patch for ConfigMaps (whose paths hold no list).
    """
    root: dict[str, Any] = {}
    for path, value in values.items():
        node: Any = root
        for segment, following in zip(path, path[1:], strict=False):
            node = _descend(node, segment, following)
        _assign(node, path[-1], value)
    return root


def _descend(node: Any, segment: str, following: str) -> Any:
    if "=" in segment:
        field, _, name = segment.partition("=")
        item = next((i for i in node if i.get(field) == name), None)
        if item is None:
            item = {field: name}
            node.append(item)
        return item
    if segment.startswith("#"):
        raise ValueError(f"a patch cannot address list position {segment}: the list is replaced whole")
    empty: Any = [] if "=" in following else {}
    return node.setdefault(segment, empty)


def _assign(node: Any, segment: str, value: Any) -> None:
    if not isinstance(node, dict) or "=" in segment or segment.startswith("#"):
        raise ValueError(f"cannot set {segment} in a patch")
    node[segment] = value
