"""Kubernetes REST semantics over the lab Store, independent of HTTP.

The API server's HTTP layer (``apiserver.py``) parses a request into a
:class:`Route` and calls one method of :class:`RestStorage`; this module owns what
the verbs *mean*: which fields the server sets and which it ignores, how a list is
paginated and filtered, when an update conflicts, how a delete cascades. It
follows the generic registry of kube-apiserver closely enough that clients cannot
tell the difference for the verbs novadiag, the Python client and kubectl use:

- list: ``labelSelector``, ``fieldSelector``, ``limit`` and an opaque ``continue``
  token holding the list's resourceVersion and the last key served. Pages after
  the first are read from the current state, after that key (the lab keeps no
  snapshots); a token older than the Store's event log is 410 Expired, as a token
  older than etcd's compaction is in a cluster.
- create: server-owned fields are dropped, ``generateName`` honoured, status reset
  for kinds with a status subresource, the namespace must exist and not be
  terminating, then :func:`admission.admit`.
- update/patch: atomic against the Store (``Store.mutate``), stale
  ``resourceVersion`` is 409, the main resource ignores ``status`` of kinds with a
  status subresource and ``/status`` changes only ``status``.
- delete: dependents (``ownerReferences``) are deleted too unless
  ``propagationPolicy: Orphan``; a Namespace turns Terminating and is emptied and
  removed in the background.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from novadiag.lab import admission, resources
from novadiag.lab.apierrors import (
    StatusError,
    bad_request,
    conflict,
    details_for,
    from_store_error,
    method_not_allowed,
    namespace_not_found,
)
from novadiag.lab.network import LabNetwork
from novadiag.lab.patch import APPLY_PATCH_JSON, APPLY_PATCH_YAML, PatchError, apply_patch
from novadiag.lab.resources import Resource
from novadiag.lab.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from novadiag.lab.store import Obj, Store, StoreError, now_rfc3339, storage_key

Query = Mapping[str, str]
LogProvider = Callable[[str, str, str], "str | None"]

SERVER_OWNED_META = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                     "deletionGracePeriodSeconds", "generation", "managedFields", "selfLink")
RETURNS_OBJECT_ON_DELETE = frozenset({"Pod", "Service", "Namespace"})
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAMESPACE_GRACE_SECONDS = 0.3
SNAPSHOT_CACHE_SIZE = 16


@dataclass(frozen=True)
class Route:
    """A parsed resource URL."""

    resource: Resource
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    legacy_watch: bool = False


def parse_route(path: str) -> Route | None:
    """Map a URL path to a :class:`Route`; ``None`` when it names no resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = resources.lookup(group, version, rest[0])
    if resource is None or len(rest) > 3:
        return None
    if namespace is not None and not resource.namespaced:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in resource.subresources:
        return None
    return Route(resource, namespace, name, sub, legacy_watch)


def verb_for(method: str, route: Route, query: Query) -> str:
    """The Kubernetes verb of a request (what RBAC and the metrics count)."""
    if route.subresource == "exec":
        return "create"  # what RBAC grants for exec, whether it came as a WebSocket GET or a SPDY POST
    watching = route.legacy_watch or query.get("watch") in ("1", "true", "True")
    if method == "GET":
        if watching:
            return "watch"
        return "get" if route.name else "list"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def encode_continue(resource_version: int, last_key: str) -> str:
    """A continue token as kube-apiserver writes it: the list's version and the next storage key.

    ``start`` is the last key served with a NUL appended, the smallest key after it.
    """
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """The list's resourceVersion and the last storage key served, from a continue token."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        start = data["start"]
        if not isinstance(start, str):
            raise TypeError("start is not a key")
        return int(data["rv"]), start.removesuffix("\x00")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise bad_request(f"invalid continue token: {exc}") from exc


def expired_continue() -> StatusError:
    return StatusError(
        410,
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in "
        "this response to retrieve the remainder of the results. Continuing with the provided "
        "token results in an inconsistent list - objects that were created, modified, or "
        "deleted between the time the first chunk was returned and now may show up in the "
        "list.",
        reason="Expired",
    )


def _sort_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return storage_key(meta.get("namespace"), meta["name"])


def selectors_for(resource: Resource, query: Query) -> tuple[LabelSelector, FieldSelector]:
    try:
        return (parse_label_selector(query.get("labelSelector")),
                parse_field_selector(query.get("fieldSelector"), resource.kind))
    except SelectorError as exc:
        raise bad_request(str(exc)) from exc


class RestStorage:
    """The verbs of the Kubernetes API over one Store."""

    def __init__(self, store: Store, *, network: LabNetwork,
                 log_provider: LogProvider | None = None) -> None:
        self.store = store
        self.network = network
        self.log_provider = log_provider
        self._snapshots: OrderedDict[tuple[str, str | None, int], list[Obj]] = OrderedDict()
        self._snapshot_lock = threading.Lock()

    # -- reads -------------------------------------------------------------------------------
    def get(self, route: Route) -> Obj:
        assert route.name is not None
        try:
            obj = self.store.get(route.resource.kind, route.namespace, route.name)
        except StoreError as exc:
            raise from_store_error(exc, route.resource, route.name) from exc
        if route.subresource == "scale":
            return scale_of(obj)
        return obj

    def list_objects(self, route: Route, query: Query, *, expire_continue: bool = False
                     ) -> Obj:
        """One page of a list, as the ``<Kind>List`` document."""
        resource = route.resource
        labels, fields = selectors_for(resource, query)
        limit = _int_param(query, "limit")
        token = query.get("continue")
        if token:
            rv, last_key = decode_continue(token)
            items = self._continue_items(route, rv, expire_continue)
            start = bisect.bisect_right(items, last_key, key=_sort_key)
        else:
            items, rv = self.store.list(resource.kind, route.namespace)
            start = 0
        page, more, rest = _take(items, start, labels, fields, limit)
        meta: Obj = {"resourceVersion": str(rv)}
        if more and page:
            if not token:
                self._remember(route, rv, items)
            meta["continue"] = encode_continue(rv, _sort_key(page[-1]))
            if labels.empty and fields.empty:
                meta["remainingItemCount"] = rest
        return {"kind": resource.list_kind, "apiVersion": resource.api_version,
                "metadata": meta, "items": page}

    def _continue_items(self, route: Route, rv: int, expire: bool) -> list[Obj]:
        """The list a continue token resumes: its snapshot if still cached, else today's."""
        if expire:
            raise expired_continue()
        if self.store.expired(rv):
            raise expired_continue()
        key = (route.resource.kind, route.namespace, rv)
        with self._snapshot_lock:
            snapshot = self._snapshots.get(key)
            if snapshot is not None:
                self._snapshots.move_to_end(key)
                return snapshot
        return self.store.list(route.resource.kind, route.namespace)[0]

    def _remember(self, route: Route, rv: int, items: list[Obj]) -> None:
        """Keep a paginated list's items (references, not copies) for its next pages.

        Pages then come from one consistent snapshot, as etcd serves them at the
        list's resourceVersion, and a page costs a bisect instead of a re-list.
        """
        with self._snapshot_lock:
            self._snapshots[(route.resource.kind, route.namespace, rv)] = items
            while len(self._snapshots) > SNAPSHOT_CACHE_SIZE:
                self._snapshots.popitem(last=False)

    # -- writes ------------------------------------------------------------------------------
    def create(self, route: Route, body: Any, query: Query) -> Obj:
        resource = route.resource
        if route.name is not None and route.subresource is None:
            raise method_not_allowed()
        obj = self._incoming(route, body, for_create=True)
        if resource.has_status and resource.kind != "Namespace":
            obj.pop("status", None)
        if route.namespace is not None:
            self._check_namespace_open(route, obj)
        try:
            admitted = admission.admit(obj, network=self.network, store=self.store)
            if _dry_run(query):
                return admitted
            return self.store.create(admitted)
        except StoreError as exc:
            raise from_store_error(exc, resource, obj["metadata"].get("name")) from exc

    def update(self, route: Route, body: Any, query: Query) -> Obj:
        incoming = self._incoming(route, body, for_create=False)
        if route.subresource == "scale":
            return self._update_scale(route, lambda scale: incoming, query)
        given_rv = incoming["metadata"].get("resourceVersion")
        return self._mutate(route, lambda current: incoming, given_rv, query)

    def patch(self, route: Route, body: Any, content_type: str, query: Query) -> Obj:
        resource = route.resource
        media = content_type.split(";", 1)[0].strip().lower()
        if media in (APPLY_PATCH_YAML, APPLY_PATCH_JSON) and route.subresource is None:
            try:
                self.store.get(resource.kind, route.namespace, route.name or "")
            except StoreError:
                return self.create(Route(resource, route.namespace), body, query)

        def patched(current: Obj) -> Obj:
            try:
                result = apply_patch(current, body, content_type, kind=resource.kind)
            except PatchError as exc:
                raise StatusError(exc.code, str(exc)) from exc
            if not isinstance(result, dict):
                raise StatusError(422, "the patched object is not a JSON object")
            return result

        if route.subresource == "scale":
            return self._update_scale(route, patched, query)
        given_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(
            body, dict) else None
        return self._mutate(route, patched, given_rv, query)

    def _mutate(self, route: Route, compute: Callable[[Obj], Obj], given_rv: Any,
                query: Query) -> Obj:
        resource = route.resource
        assert route.name is not None
        dry_run = _dry_run(query)
        result: list[Obj] = []

        def change(draft: Obj) -> Obj:
            if given_rv and str(given_rv) != draft["metadata"].get("resourceVersion"):
                raise StatusError(409, "", reason="Conflict")
            new = compute(draft)
            new = self._merge_for_update(route, draft, new)
            admitted = admission.admit_update(draft, new, network=self.network,
                                              store=self.store)
            result.append(admitted)
            return draft if dry_run else admitted

        try:
            stored = self.store.mutate(resource.kind, route.namespace, route.name, change)
        except StatusError as exc:
            if exc.code == 409 and not exc.message:
                raise conflict(resource, route.name) from exc
            raise
        except StoreError as exc:
            raise from_store_error(exc, resource, route.name) from exc
        return result[-1] if dry_run and result else stored

    def _merge_for_update(self, route: Route, current: Obj, new: Obj) -> Obj:
        """Keep identity and server-owned fields; route status per subresource."""
        resource = route.resource
        new["kind"] = resource.kind
        new["apiVersion"] = resource.api_version
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("name") not in (None, route.name):
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match "
                              f"the name on the URL ({route.name})")
        meta["name"] = route.name
        if route.namespace is not None:
            meta["namespace"] = route.namespace
        old_meta = current["metadata"]
        for field in SERVER_OWNED_META:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if route.subresource == "status":
            return {**current, "status": new.get("status", {})}
        if resource.has_status:
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
        return new

    def _update_scale(self, route: Route, compute: Callable[[Obj], Any], query: Query) -> Obj:
        def change(draft: Obj) -> Obj:
            scale = compute(scale_of(draft))
            replicas = (scale.get("spec") or {}).get("replicas") if isinstance(
                scale, dict) else None
            if not isinstance(replicas, int) or replicas < 0:
                raise StatusError(422, f'Scale "{route.name}" is invalid: spec.replicas: '
                               "Invalid value: must be greater than or equal to 0")
            if not _dry_run(query):
                draft.setdefault("spec", {})["replicas"] = replicas
            return draft

        try:
            stored = self.store.mutate(route.resource.kind, route.namespace, route.name or "",
                                       change)
        except StoreError as exc:
            raise from_store_error(exc, route.resource, route.name) from exc
        return scale_of(stored)

    def _incoming(self, route: Route, body: Any, *, for_create: bool) -> Obj:
        resource = route.resource
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj: Obj = json.loads(json.dumps(body))
        api_version = obj.get("apiVersion")
        if route.subresource != "scale":
            if obj.get("kind") not in (None, resource.kind):
                raise bad_request(f"the kind in the data ({obj.get('kind')}) does not match "
                                  f"the expected kind ({resource.kind})")
            if api_version not in (None, resource.api_version):
                raise bad_request(f"the API version in the data ({api_version}) does not "
                                  f"match the expected API version ({resource.api_version})")
            obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if route.namespace is not None:
            if meta.get("namespace") not in (None, "", route.namespace):
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = route.namespace
        if for_create:
            for field in SERVER_OWNED_META:
                meta.pop(field, None)
            if not meta.get("name") and meta.get("generateName"):
                suffix = "".join(random.choices(_NAME_ALPHABET, k=5))
                meta["name"] = f"{meta['generateName']}{suffix}"
            if not meta.get("name"):
                raise StatusError(422, f'{resource.kind} "" is invalid: metadata.name: Required '
                               "value: name or generateName is required",
                               details=details_for(resource, None))
        return obj

    def _check_namespace_open(self, route: Route, obj: Obj) -> None:
        namespace = route.namespace or ""
        try:
            ns = self.store.get("Namespace", None, namespace)
        except StoreError as exc:
            raise namespace_not_found(namespace) from exc
        if (ns.get("status") or {}).get("phase") == "Terminating":
            name = obj["metadata"].get("name")
            raise StatusError(
                403,
                f'{route.resource.qualified} "{name}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
                details=details_for(route.resource, name, causes=[{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace"}]),
            )

    # -- delete ------------------------------------------------------------------------------
    def delete(self, route: Route, body: Any, query: Query) -> Obj:
        resource = route.resource
        assert route.name is not None
        options = body if isinstance(body, dict) else {}
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        current = self.get(Route(resource, route.namespace, route.name))
        _check_preconditions(resource, current, options.get("preconditions"))
        if _dry_run(query) or "All" in (options.get("dryRun") or []):
            return current
        if resource.kind == "Namespace":
            return self._delete_namespace(route.name)
        try:
            gone = self.store.delete(resource.kind, route.namespace, route.name)
        except StoreError as exc:
            raise from_store_error(exc, resource, route.name) from exc
        self._collect_dependents(gone, orphan=policy == "Orphan")
        if resource.kind in RETURNS_OBJECT_ON_DELETE:
            return gone
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details_for(resource, route.name, uid=gone["metadata"].get("uid"))}

    def delete_collection(self, route: Route, query: Query) -> Obj:
        listing = self.list_objects(route, {k: v for k, v in query.items()
                                    if k in ("labelSelector", "fieldSelector")})
        deleted = []
        if not _dry_run(query):
            for obj in listing["items"]:
                meta = obj["metadata"]
                try:
                    deleted.append(self.store.delete(route.resource.kind, meta.get("namespace"),
                                                     meta["name"]))
                except StoreError:
                    continue
                self._collect_dependents(deleted[-1], orphan=False)
        listing["items"] = deleted
        return listing

    def _delete_namespace(self, name: str) -> Obj:
        def terminate(ns: Obj) -> None:
            ns.setdefault("metadata", {}).setdefault("deletionTimestamp", now_rfc3339())
            ns.setdefault("status", {})["phase"] = "Terminating"

        try:
            terminating = self.store.mutate("Namespace", None, name, terminate)
        except StoreError as exc:
            raise from_store_error(exc, resources.RESOURCES[0], name) from exc
        threading.Thread(target=self._finish_namespace, args=(name,), daemon=True,
                         name=f"ns-delete-{name}").start()
        return terminating

    def _finish_namespace(self, name: str) -> None:
        # A real namespace controller takes a moment; clients that delete the namespace's
        # objects right after it (``kubectl delete -f`` of a whole app) still find them.
        time.sleep(NAMESPACE_GRACE_SECONDS)
        self.store.delete_namespace_contents(name)
        try:
            self.store.delete("Namespace", None, name)
        except StoreError:
            pass

    def _collect_dependents(self, owner: Obj, *, orphan: bool) -> None:
        """Garbage collection: delete (or orphan) what ``owner`` owned, recursively."""
        uid = owner["metadata"].get("uid")
        namespace = owner["metadata"].get("namespace")
        if not uid:
            return
        kinds: list[str] = list(self.store.kinds())
        for kind in kinds:
            items, _ = self.store.list(kind, namespace)
            for obj in items:
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(ref.get("uid") == uid for ref in refs):
                    continue
                meta = obj["metadata"]
                try:
                    if orphan:
                        self.store.mutate(kind, meta.get("namespace"), meta["name"],
                                          lambda o: _drop_owner(o, uid))
                    else:
                        gone = self.store.delete(kind, meta.get("namespace"), meta["name"])
                        self._collect_dependents(gone, orphan=False)
                except StoreError:
                    continue

    # -- pods/log ----------------------------------------------------------------------------
    def read_log(self, route: Route, query: Query) -> str:
        pod = self.get(Route(route.resource, route.namespace, route.name))
        container = self.log_container(pod, query.get("container"))
        text = None
        if self.log_provider is not None:
            text = self.log_provider(route.namespace or "", route.name or "", container)
        if text is None:
            reason = _waiting_reason(pod, container)
            raise bad_request(f'container "{container}" in pod "{route.name}" is waiting to '
                              f"start: {reason}")
        return tail_log(text, query)

    @staticmethod
    def log_container(pod: Obj, requested: str | None) -> str:
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        init_names = [c.get("name") for c in spec.get("initContainers") or []]
        pod_name = pod["metadata"]["name"]
        if requested:
            if requested not in names + init_names:
                raise bad_request(f"container {requested} is not valid for pod {pod_name}")
            return requested
        if len(names) == 1:
            return str(names[0])
        message = (f"a container name must be specified for pod {pod_name}, choose one of: "
                   f"[{' '.join(str(n) for n in names)}]")
        if init_names:
            message += f" or one of the init containers: [{' '.join(map(str, init_names))}]"
        raise bad_request(message)


def _take(items: list[Obj], start: int, labels: LabelSelector, fields: FieldSelector,
          limit: int | None) -> tuple[list[Obj], bool, int]:
    """Up to ``limit`` matching items from ``start``; whether more match; items left."""
    if labels.empty and fields.empty:
        end = len(items) if limit is None else min(len(items), start + limit)
        return items[start:end], end < len(items), len(items) - end
    page: list[Obj] = []
    for index in range(start, len(items)):
        obj = items[index]
        if not (labels.matches_object(obj) and fields.matches(obj)):
            continue
        if limit is not None and len(page) >= limit:
            return page, True, len(items) - index
        page.append(obj)
    return page, False, 0


def _int_param(query: Query, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise bad_request(f"invalid {name} {raw!r}") from exc
    return value if value > 0 else None


def _dry_run(query: Query) -> bool:
    return query.get("dryRun") == "All"


def _check_preconditions(resource: Resource, current: Obj, pre: Any) -> None:
    if not isinstance(pre, dict):
        return
    meta = current["metadata"]
    for key in ("uid", "resourceVersion"):
        if pre.get(key) and pre[key] != meta.get(key):
            raise StatusError(409, f"Precondition failed: {key} in precondition: {pre[key]}, "
                           f"{key} in object meta: {meta.get(key)}",
                           details=details_for(resource, meta.get("name")))


def _drop_owner(obj: Obj, uid: str) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _waiting_reason(pod: Obj, container: str) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            waiting = (status.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "ContainerCreating")
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                return "trying and failing to pull image"
            return reason
    return "ContainerCreating"


def tail_log(text: str, query: Query) -> str:
    """Apply ``tailLines`` and ``limitBytes``."""
    tail = _int_param(query, "tailLines")
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:])
    elif query.get("tailLines") == "0":
        text = ""
    limit = _int_param(query, "limitBytes")
    if limit is not None:
        text = text.encode()[:limit].decode(errors="ignore")
    return text


def scale_of(obj: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale of a Deployment, StatefulSet or ReplicaSet."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    selector = ((spec.get("selector") or {}).get("matchLabels") or {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }
