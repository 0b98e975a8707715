"""Bearer tokens and authorization rules of the lab API server.

The lab must be able to say "no" the way a cluster does, so novadiag's handling of
missing permissions (a gap in the report, never a silent hole) is tested on the
real code path. Two mechanisms, both configured by the scenario's ``rbac`` block
or at run time through ``POST /lab/v1/tokens``:

- **Tokens with allow-lists.** Each token maps to a user and a list of rules
  (verbs x apiGroups x resources x namespaces), the union of what RoleBindings and
  ClusterRoleBindings would grant. A rule limited to namespaces grants nothing at
  the cluster scope, exactly like a RoleBinding: such a user gets 403 for
  ``list pods --all-namespaces`` but may list pods namespace by namespace.
- **A deny list** that applies to every token, the admin's included (real RBAC
  has no denials; the lab needs them to make the admin blind to, say, Secrets in
  ``nova-auth``). A denial limited to namespaces also denies the cluster-wide
  request, since that would reveal the denied namespace's objects.

Scenario format::

    rbac:
      deny:
        - {verbs: [list, watch], resources: [secrets], namespaces: [nova-auth]}
      tokens:
        - token: viewer-token
          user: viewer
          rules:
            - {verbs: [get, list, watch], apiGroups: ["*"], resources: ["*"],
               namespaces: [nova-backend]}

Omitted fields mean "any" (``apiGroups``, ``namespaces``, ``resourceNames``);
``verbs`` and ``resources`` are required. Denials are answered with the standard
Forbidden message, e.g. ``pods is forbidden: User "viewer" cannot list resource
"pods" in API group "" at the cluster scope``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ADMIN_USER = "lab-admin"


class RbacConfigError(ValueError):
    """A malformed rule or token entry (a scenario or request error)."""


@dataclass(frozen=True)
class RequestAttributes:
    """What a request asks to do, in RBAC terms."""

    verb: str
    api_group: str
    resource: str
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    namespaced: bool = True

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule; ``None`` sets mean "any"."""

    verbs: frozenset[str]
    resources: frozenset[str]
    api_groups: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None
    resource_names: frozenset[str] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        if not isinstance(data, Mapping):
            raise RbacConfigError(f"an RBAC rule must be a mapping, got {data!r}")
        verbs = _string_set(data.get("verbs"), "verbs")
        resources = _string_set(data.get("resources"), "resources")
        if not verbs or not resources:
            raise RbacConfigError(f"an RBAC rule needs verbs and resources: {dict(data)!r}")
        return cls(
            verbs=verbs,
            resources=resources,
            api_groups=_optional_set(data.get("apiGroups"), "apiGroups"),
            namespaces=_optional_set(data.get("namespaces"), "namespaces"),
            resource_names=_optional_set(data.get("resourceNames"), "resourceNames"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": sorted(self.verbs), "resources": sorted(self.resources)}
        for key, value in (("apiGroups", self.api_groups), ("namespaces", self.namespaces),
                           ("resourceNames", self.resource_names)):
            if value is not None:
                out[key] = sorted(value)
        return out

    def _matches_action(self, attrs: RequestAttributes) -> bool:
        if not ("*" in self.verbs or attrs.verb in self.verbs):
            return False
        if self.api_groups is not None and not (
            "*" in self.api_groups or attrs.api_group in self.api_groups
        ):
            return False
        wanted = attrs.full_resource
        if not ("*" in self.resources or wanted in self.resources
                or (attrs.subresource and f"*/{attrs.subresource}" in self.resources)):
            return False
        return self.resource_names is None or (
            attrs.name is not None and attrs.name in self.resource_names
        )

    def allows(self, attrs: RequestAttributes) -> bool:
        if not self._matches_action(attrs):
            return False
        if self.namespaces is None or "*" in self.namespaces:
            return True
        return attrs.namespace is not None and attrs.namespace in self.namespaces

    def denies(self, attrs: RequestAttributes) -> bool:
        if not self._matches_action(attrs):
            return False
        if self.namespaces is None or "*" in self.namespaces:
            return True
        if attrs.namespace is None:
            return attrs.namespaced
        return attrs.namespace in self.namespaces


def _string_set(value: Any, field: str) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if not isinstance(value, Iterable):
        raise RbacConfigError(f"RBAC field {field!r} must be a list of strings")
    return frozenset(str(v) for v in value)


def _optional_set(value: Any, field: str) -> frozenset[str] | None:
    return None if value is None else _string_set(value, field)


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to; ``rules is None`` means unrestricted (the admin)."""

    user: str
    rules: tuple[Rule, ...] | None = None

    @property
    def is_admin(self) -> bool:
        return self.rules is None


class Authorizer:
    """Token lookup and the allow/deny decision for each request."""

    def __init__(self, admin_token: str, config: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Identity] = {admin_token: Identity(ADMIN_USER)}
        self.admin_token = admin_token
        config = config or {}
        self.deny = tuple(Rule.from_dict(r) for r in config.get("deny") or [])
        for entry in config.get("tokens") or []:
            if not isinstance(entry, Mapping) or not entry.get("token"):
                raise RbacConfigError(f"an RBAC token entry needs a token: {entry!r}")
            self.mint(str(entry.get("user") or entry["token"]), entry.get("rules") or [],
                      token=str(entry["token"]))

    def authenticate(self, token: str | None) -> Identity | None:
        if not token:
            return None
        with self._lock:
            return self._tokens.get(token)

    def mint(self, user: str, rules: Iterable[Mapping[str, Any]], *,
             token: str | None = None) -> str:
        """Register a token for ``user`` limited to ``rules``; returns the token."""
        parsed = tuple(Rule.from_dict(r) for r in rules)
        token = token or secrets.token_urlsafe(24)
        with self._lock:
            if token == self.admin_token:
                raise RbacConfigError("that token is the admin token")
            self._tokens[token] = Identity(user, parsed)
        return token

    def forbidden_message(self, identity: Identity, attrs: RequestAttributes) -> str | None:
        """``None`` when allowed, else the API server's Forbidden message."""
        if any(rule.denies(attrs) for rule in self.deny):
            return forbidden_message(identity.user, attrs)
        if identity.rules is None or any(rule.allows(attrs) for rule in identity.rules):
            return None
        return forbidden_message(identity.user, attrs)


def forbidden_message(user: str, attrs: RequestAttributes) -> str:
    """The exact wording of kube-apiserver's RBAC denials."""
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    scope = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'{subject} is forbidden: User "{user}" cannot {attrs.verb} resource '
            f'"{attrs.full_resource}" in API group "{attrs.api_group}" {scope}')
