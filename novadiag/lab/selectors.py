"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Label selectors follow ``k8s.io/apimachinery/pkg/labels``: comma-separated
requirements that must all hold, equality-based (``a=b``, ``a==b``, ``a!=b``),
set-based (``a in (x,y)``, ``a notin (x)``), existence (``a``, ``!a``) and the
numeric ``a>1`` / ``a<1``. ``!=`` and ``notin`` also match objects without the
label, as in Kubernetes.

Field selectors follow ``k8s.io/apimachinery/pkg/fields``: ``field=value``,
``field==value``, ``field!=value`` joined by commas, with ``\\``, ``\\,`` and ``\\=``
escapes. Each kind supports only a fixed set of fields (``metadata.name`` and
``metadata.namespace`` everywhere; ``status.phase``, ``spec.nodeName`` and a few more
on Pods); any other field is a 400, exactly as the real server answers, so a
client that relies on an unsupported field fails here as it would in a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SPECIAL = "(),=!<>"
_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion",
              "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
              "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}
_FIELD_PATHS = {"source": "source.component"}


class SelectorError(ValueError):
    """A selector that does not parse, or names an unsupported field (HTTP 400)."""


# -- label selectors -------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        return present and _compare(value, self.op, self.values[0])


def _compare(value: str | None, op: str, bound: str) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > int(bound) if op == "gt" else number < int(bound)


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self.matches((obj.get("metadata") or {}).get("labels"))

    @property
    def empty(self) -> bool:
        return not self.requirements


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(ch)
            i += 1
        elif ch in "=!<>":
            two = text[i:i + 2]
            op = two if two in ("==", "!=") else ch
            tokens.append(op)
            i += len(op)
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of selector")
        self.pos += 1
        return token

    def error(self, why: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: {why} in {self.text!r}")

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            token = self.peek()
            if token is None:
                break
            if token != ",":
                raise self.error(f"expected ',' but found {token!r}")
            self.take()
            if self.peek() is None:
                raise self.error("trailing ','")
        return LabelSelector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.key(), "!")
        key = self.key()
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.take()
        if op in ("=", "==", "!="):
            value = self.value_token()
            return Requirement(key, "!=" if op == "!=" else "=", (value,))
        if op in ("in", "notin"):
            return Requirement(key, op, self.value_set())
        if op in ("<", ">"):
            bound = self.take()
            if not re.fullmatch(r"-?\d+", bound):
                raise self.error(f"for 'gt', 'lt' operators, the value must be an integer: {bound}")
            return Requirement(key, "gt" if op == ">" else "lt", (bound,))
        raise self.error(f"found {op!r}, expected: in, notin, =, ==, !=, gt, lt")

    def key(self) -> str:
        key = self.take()
        if key in _SPECIAL or not _KEY_RE.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            raise self.error(f"invalid label key {key!r}")
        return key

    def value_token(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""
        value = self.take()
        if value in _SPECIAL or len(value) > 63 or not _VALUE_RE.match(value):
            raise self.error(f"invalid label value {value!r}")
        return value

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            raise self.error("expected '(' after set operator")
        values: list[str] = []
        while True:
            token = self.take()
            if token == ")":
                break
            if token == ",":
                continue
            if token in _SPECIAL or not _VALUE_RE.match(token):
                raise self.error(f"invalid label value {token!r}")
            values.append(token)
        if not values:
            raise self.error("for 'in', 'notin' operators, values set can't be empty")
        return tuple(values)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector``; an empty or missing one matches everything."""
    if not text or not text.strip():
        return LabelSelector()
    return _LabelParser(text).parse()


def selector_from_match_labels(match: Mapping[str, Any] | None) -> LabelSelector:
    """The ``LabelSelector`` of a ``{matchLabels, matchExpressions}`` object (or a Service's
    plain map); ``None``/empty matches everything."""
    if not match:
        return LabelSelector()
    if "matchLabels" not in match and "matchExpressions" not in match:
        return LabelSelector(tuple(Requirement(k, "=", (str(v),)) for k, v in match.items()))
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (match.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in match.get("matchExpressions") or []:
        op = ops.get(str(expr.get("operator")))
        if op is None:
            raise SelectorError(f"invalid selector operator {expr.get('operator')!r}")
        reqs.append(Requirement(str(expr.get("key")), op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(reqs))


# -- field selectors -------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.field)
        return actual == self.value if self.op == "=" else actual != self.value


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(req.matches(obj) for req in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact(self, field: str) -> str | None:
        """The value an ``=`` term pins ``field`` to, if any (lets list skip a scan)."""
        for req in self.requirements:
            if req.field == field and req.op == "=":
                return req.value
        return None


def supported_fields(kind: str) -> tuple[str, ...]:
    return COMMON_FIELDS + KIND_FIELDS.get(kind, ())


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    """Parse ``fieldSelector`` for ``kind``; unsupported fields are a SelectorError."""
    if not text or not text.strip():
        return FieldSelector()
    allowed = supported_fields(kind)
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        field, op, value = _split_term(term)
        if field not in allowed:
            raise SelectorError(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, op, value))
    return FieldSelector(tuple(requirements))


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares against (``""`` when unset)."""
    node: Any = obj
    for part in _FIELD_PATHS.get(field, field).split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        raise SelectorError(f"invalid field selector {text!r}: trailing backslash")
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _split_term(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        index = _find_unescaped(term, op)
        if index >= 0:
            field = term[:index].strip()
            value = _unescape(term[index + len(op):])
            return field, ("!=" if op == "!=" else "="), value
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
