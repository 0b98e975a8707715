"""Fault injection rules for the lab API server.

novadiag must survive what real API servers do under load or misconfiguration:
slow answers, 429 with ``Retry-After``, 500/503, connections dropped mid-request,
continue tokens that expire between pages, credentials revoked during a run. A
scenario lists such rules in ``faults:``; tests add and clear them at run time
through ``/lab/v1/faults``. Each rule is a JSON object:

==========================  =====================================================
``method``                  HTTP method to match (``GET``, ...); default any
``path``                    regular expression searched in the URL path
``namespace``               namespace of the request (``None``: any)
``verb``, ``resource``      Kubernetes verb (``list``, ``watch``, ...) and
                            resource (``pods``, ``pods/log``)
``latency_ms``              delay before answering
``status``                  answer with this code instead (429, 500, 503, ...)
``retry_after``             seconds for ``Retry-After`` (429/503; default 1)
``message``                 Status message for ``status``
``drop_connection``         close the connection without an answer
``times``                   matches before the rule expires (default: forever)
``probability``             chance that a matching request is affected (0..1)
``expire_continue_tokens``  continue tokens presented are answered 410 Expired
``revoke_token``            this token becomes unknown (401) ...
``after_requests``          ... after this many further requests (default 0)
==========================  =====================================================

Admin endpoints (``/lab/v1/...``) are never subject to faults, so a test can
always clear them.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_FIELDS = frozenset({
    "id", "method", "path", "namespace", "verb", "resource", "latency_ms", "status",
    "retry_after", "message", "drop_connection", "times", "probability",
    "expire_continue_tokens", "revoke_token", "after_requests",
})


class FaultConfigError(ValueError):
    """A malformed fault rule."""


@dataclass(frozen=True)
class FaultRequest:
    """The parts of a request that fault rules match on."""

    method: str
    path: str
    namespace: str | None = None
    verb: str | None = None
    resource: str | None = None
    token: str | None = None
    has_continue: bool = False


@dataclass(frozen=True)
class FaultAction:
    """What to do to one request (combined over every matching rule)."""

    latency_ms: int = 0
    status: int | None = None
    retry_after: int = 1
    message: str | None = None
    drop_connection: bool = False
    expire_continue: bool = False


@dataclass
class FaultRule:
    id: str
    spec: dict[str, Any]
    path: re.Pattern[str] | None = None
    remaining: int | None = None
    hits: int = 0
    seen_requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, request: FaultRequest) -> bool:
        spec = self.spec
        if spec.get("method") and str(spec["method"]).upper() != request.method:
            return False
        if self.path is not None and not self.path.search(request.path):
            return False
        for key, actual in (("namespace", request.namespace), ("verb", request.verb),
                            ("resource", request.resource)):
            if spec.get(key) is not None and spec[key] != actual:
                return False
        if spec.get("expire_continue_tokens") and not request.has_continue:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        return {**self.spec, "id": self.id, "hits": self.hits, "remaining": self.remaining}


def _validate(spec: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise FaultConfigError(f"a fault rule must be a mapping, got {spec!r}")
    unknown = set(spec) - _FIELDS - {"hits", "remaining"}
    if unknown:
        raise FaultConfigError(f"unknown fault rule fields: {sorted(unknown)}")
    clean = {k: v for k, v in spec.items() if k not in ("hits", "remaining")}
    status = clean.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultConfigError(f"fault status must be an HTTP error code, got {status!r}")
    probability = clean.get("probability", 1.0)
    if not isinstance(probability, int | float) or not 0 <= probability <= 1:
        raise FaultConfigError(f"fault probability must be within 0..1, got {probability!r}")
    for key in ("latency_ms", "times", "retry_after", "after_requests"):
        value = clean.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise FaultConfigError(f"fault {key} must be a non-negative integer, got {value!r}")
    effects = ("latency_ms", "status", "drop_connection", "expire_continue_tokens",
               "revoke_token")
    if not any(clean.get(k) for k in effects):
        raise FaultConfigError(f"a fault rule needs one of {', '.join(effects)}: {dict(spec)}")
    return clean


class FaultSet:
    """The active fault rules; thread-safe, consulted once per request."""

    def __init__(self, rules: Iterable[Mapping[str, Any]] = (), *,
                 seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)
        for spec in rules:
            self.add(spec)

    def add(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        clean = _validate(spec)
        try:
            pattern = re.compile(str(clean["path"])) if clean.get("path") else None
        except re.error as exc:
            raise FaultConfigError(f"fault path is not a regular expression: {exc}") from exc
        with self._lock:
            rule_id = str(clean.get("id") or f"fault-{next(self._ids)}")
            rule = FaultRule(rule_id, clean, pattern, clean.get("times"))
            self._rules.append(rule)
            return rule.describe()

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self._rules]

    def token_revoked(self, token: str | None) -> bool:
        """Count a request by ``token``; True once a ``revoke_token`` rule has fired."""
        if not token:
            return False
        revoked = False
        with self._lock:
            for rule in self._rules:
                if rule.spec.get("revoke_token") != token:
                    continue
                rule.seen_requests += 1
                if rule.seen_requests > int(rule.spec.get("after_requests") or 0):
                    rule.hits += 1
                    revoked = True
        return revoked

    def action_for(self, request: FaultRequest) -> FaultAction | None:
        """The combined action of every matching rule; consumes their ``times``."""
        latency = 0
        status: FaultRule | None = None
        drop = expire = False
        with self._lock:
            for rule in list(self._rules):
                if rule.spec.get("revoke_token") or not rule.matches(request):
                    continue
                if self._random.random() >= float(rule.spec.get("probability", 1.0)):
                    continue
                rule.hits += 1
                latency += int(rule.spec.get("latency_ms") or 0)
                drop = drop or bool(rule.spec.get("drop_connection"))
                expire = expire or bool(rule.spec.get("expire_continue_tokens"))
                if status is None and rule.spec.get("status"):
                    status = rule
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
        if not (latency or status or drop or expire):
            return None
        return FaultAction(
            latency_ms=latency,
            status=int(status.spec["status"]) if status else None,
            retry_after=int(status.spec.get("retry_after", 1)) if status else 1,
            message=str(status.spec["message"]) if status and status.spec.get("message")
            else None,
            drop_connection=drop,
            expire_continue=expire,
        )
