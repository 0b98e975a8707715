"""The lab's object store: what etcd is to a real API server.

One process-wide, thread-safe map from ``(kind, namespace, name)`` to the raw
JSON object, with a global resourceVersion counter and a bounded event log, so
that the API server can serve list/get/watch, the DNS server can answer from
the current Services, and the kubelet can react to changes — all from one truth.

Objects handed out are shared, never copied (listing 50,000 pods must stay
cheap); callers treat them as read-only and write through :meth:`Store.create`,
:meth:`Store.replace`, :meth:`Store.mutate` or :meth:`Store.delete`, which store a
fresh dict each time. Subscribers are called after each change, outside the
lock, in the writing thread: keep them short (the kubelet and DNS only set a
flag or queue work).
"""

from __future__ import annotations

import builtins
import copy
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str | None, str]

CLUSTER_SCOPED_KINDS = frozenset(
    {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
)
EVENT_LOG_SIZE = 20_000
GENERATION_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "NetworkPolicy", "EndpointSlice"}
)
"""Kinds whose registry strategy keeps ``metadata.generation`` (a v1.32 server gives none to a
Service, ConfigMap, Secret, Pod, Namespace or ServiceAccount)."""


class StoreError(Exception):
    """Base of the store's errors; the API server maps each to a Status code."""

    code = 500
    reason = "InternalError"


class NotFound(StoreError):
    code = 404
    reason = "NotFound"


class AlreadyExists(StoreError):
    code = 409
    reason = "AlreadyExists"


class Conflict(StoreError):
    code = 409
    reason = "Conflict"


class Invalid(StoreError):
    code = 422
    reason = "Invalid"


class Gone(StoreError):
    code = 410
    reason = "Expired"


@dataclass(frozen=True)
class Event:
    """One change, as a watch stream reports it."""

    resource_version: int
    type: str  # ADDED | MODIFIED | DELETED
    object: Obj

    @property
    def kind(self) -> str:
        return str(self.object.get("kind"))

    @property
    def namespace(self) -> str | None:
        return (self.object.get("metadata") or {}).get("namespace")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def storage_key(namespace: str | None, name: str) -> str:
    """Where etcd keeps an object, below its resource's prefix: ``<namespace>/<name>`` or ``<name>``.

    A real API server lists in the byte order of these keys, so a cluster-wide list
    runs namespace by namespace with ``/`` as the separator: ``nova-auth/x`` comes
    before ``nova/x`` because ``-`` (0x2d) sorts before ``/`` (0x2f). Comparing
    ``(namespace, name)`` tuples would put ``nova`` first.
    """
    return name if namespace is None else f"{namespace}/{name}"


def key_of(obj: Obj) -> Key:
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(kind, str) or not kind:
        raise Invalid("object has no kind")
    if not isinstance(name, str) or not name:
        raise Invalid(f"{kind} has no metadata.name")
    ns = None if kind in CLUSTER_SCOPED_KINDS else (meta.get("namespace") or "default")
    return (kind, ns, name)


class Store:
    """Thread-safe in-memory object store with resourceVersions and an event log."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._objects: dict[Key, Obj] = {}
        self._by_kind: dict[str, dict[Key, Obj]] = {}
        self._by_namespace: dict[tuple[str, str | None], dict[Key, Obj]] = {}
        self._sorted: dict[tuple[str, str | None], builtins.list[Obj]] = {}
        self._encoded: dict[Key, tuple[Obj, bytes]] = {}
        self._rv = 0
        self._events: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self._subscribers: list[Callable[[Event], None]] = []

    # -- reads ---------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, kind: str, namespace: str | None, name: str) -> Obj:
        ns = None if kind in CLUSTER_SCOPED_KINDS else namespace
        with self._lock:
            obj = self._objects.get((kind, ns, name))
        if obj is None:
            raise NotFound(f'{kind} "{name}" not found')
        return obj

    def list(self, kind: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """Objects of one kind (in one namespace, or all), in :func:`storage_key` order.

        A namespace's objects come from their own bucket: controllers list per
        namespace for every workload, and filtering the whole kind each time made
        that quadratic (50,000 Deployments never settled). The sorted order is
        kept until the kind (or namespace) changes: most lists repeat unchanged.
        """
        with self._lock:
            ordered = self._sorted.get((kind, namespace))
            if ordered is None:
                if namespace is None:
                    bucket = self._by_kind.get(kind, {})
                else:
                    bucket = self._by_namespace.get((kind, namespace), {})
                keys = sorted(bucket, key=lambda k: storage_key(k[1], k[2]))
                ordered = self._sorted[(kind, namespace)] = [bucket[k] for k in keys]
            return list(ordered), self._rv

    def encoded(self, objects: Iterable[Obj]) -> builtins.list[bytes]:
        """Each object as compact JSON, encoded once per version of the object.

        A list page is mostly its items, and the same items go out again at every
        list: encoding them afresh each time made the lab's API server, not the
        client under test, the slow end of every benchmark listing (83% of the
        server's time at M was ``json.dumps``). A real API server encodes in Go,
        far faster. Only the stored version of an object is remembered (a write
        or delete drops its encoding), and an encoding is used only for that very
        object: a continued list reads the snapshot its first page was cut from,
        which may hold versions older than the store's.
        """
        objects = builtins.list(objects)
        keys = [key_of(obj) for obj in objects]
        with self._lock:
            cached = [self._encoded.get(key) for key in keys]
        out: builtins.list[bytes] = []
        fresh: builtins.list[tuple[Key, Obj, bytes]] = []
        for key, obj, hit in zip(keys, objects, cached, strict=True):
            if hit is not None and hit[0] is obj:
                out.append(hit[1])
            else:  # encoded outside the lock: writers never wait on a first listing
                data = json.dumps(obj, separators=(",", ":")).encode()
                fresh.append((key, obj, data))
                out.append(data)
        if fresh:
            with self._lock:
                for key, obj, data in fresh:
                    if self._objects.get(key) is obj:
                        self._encoded[key] = (obj, data)
        return out

    def kinds(self) -> builtins.list[str]:
        with self._lock:
            return sorted(self._by_kind)

    # -- writes --------------------------------------------------------------
    def create(self, obj: Obj) -> Obj:
        """Store a new object, setting the server-owned fields."""
        obj = copy.deepcopy(obj)
        key = key_of(obj)
        meta = obj.setdefault("metadata", {})
        if key[1] is not None:
            meta["namespace"] = key[1]
        with self._lock:
            if key in self._objects:
                raise AlreadyExists(f'{key[0]} "{key[2]}" already exists')
            if key[1] is not None and key[0] != "Namespace" and self._namespace_terminating(key[1]):
                raise Invalid(f'namespace "{key[1]}" is being deleted')
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if key[0] in GENERATION_KINDS:
                meta.setdefault("generation", 1)
            else:
                meta.pop("generation", None)
            event = self._put(key, obj, "ADDED")
        self._notify(event)
        return event.object

    def replace(self, obj: Obj, *, check_version: bool = True) -> Obj:
        """Replace an existing object (PUT); a stale resourceVersion is a Conflict."""
        obj = copy.deepcopy(obj)
        key = key_of(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise NotFound(f'{key[0]} "{key[2]}" not found')
            given = (obj.get("metadata") or {}).get("resourceVersion")
            if check_version and given and given != old["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {key[0]} "{key[2]}": '
                    "the object has been modified; please apply your changes to the latest version"
                )
            event = self._put(key, self._keep_server_fields(old, obj), "MODIFIED")
        self._notify(event)
        return event.object

    def mutate(self, kind: str, namespace: str | None, name: str, change: Callable[[Obj], Obj | None]) -> Obj:
        """Atomic read-modify-write: ``change`` gets a deep copy and edits or returns it."""
        ns = None if kind in CLUSTER_SCOPED_KINDS else namespace
        key = (kind, ns, name)
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise NotFound(f'{kind} "{name}" not found')
            draft = copy.deepcopy(old)
            result = change(draft)
            new = draft if result is None else result
            if key_of(new) != key:
                raise Invalid("a change may not rename an object")
            if new == old:
                return old
            event = self._put(key, self._keep_server_fields(old, new), "MODIFIED")
        self._notify(event)
        return event.object

    def delete(self, kind: str, namespace: str | None, name: str) -> Obj:
        ns = None if kind in CLUSTER_SCOPED_KINDS else namespace
        key = (kind, ns, name)
        with self._lock:
            obj = self._objects.pop(key, None)
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            self._by_kind.get(kind, {}).pop(key, None)
            self._by_namespace.get((kind, ns), {}).pop(key, None)
            self._encoded.pop(key, None)
            self._forget_order(key)
            self._rv += 1
            gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
            event = Event(self._rv, "DELETED", gone)
            self._events.append(event)
            self._changed.notify_all()
        self._notify(event)
        return gone

    def delete_namespace_contents(self, namespace: str) -> int:
        """Cascade of a Namespace deletion: every namespaced object in it goes."""
        with self._lock:
            keys = [k for k in self._objects if k[1] == namespace]
        for kind, ns, name in keys:
            try:
                self.delete(kind, ns, name)
            except NotFound:
                pass
        return len(keys)

    def load(self, objects: Iterable[Obj]) -> None:
        """Create many objects (a scenario's manifests), Namespaces first."""
        ordered = sorted(objects, key=lambda o: o.get("kind") != "Namespace")
        for obj in ordered:
            self.create(obj)

    # -- watch ---------------------------------------------------------------
    def events_since(self, resource_version: int) -> builtins.list[Event]:
        """Events after ``resource_version``; Gone when the log no longer reaches back."""
        with self._lock:
            if self.expired(resource_version):
                raise Gone(f"too old resource version: {resource_version} ({self._rv})")
            return [e for e in self._events if e.resource_version > resource_version]

    def expired(self, resource_version: int) -> bool:
        """True when the event log no longer reaches back to ``resource_version`` (no copy made)."""
        with self._lock:
            return bool(self._events) and resource_version < self._events[0].resource_version - 1

    def wait_for_change(self, resource_version: int, timeout: float) -> bool:
        """Block until something newer than ``resource_version`` exists, or timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._rv > resource_version, timeout)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every change; returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- internals -----------------------------------------------------------
    def _put(self, key: Key, obj: Obj, event_type: str) -> Event:
        """Store under the lock; the caller notifies subscribers after releasing it."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = obj
        self._by_kind.setdefault(key[0], {})[key] = obj
        self._by_namespace.setdefault((key[0], key[1]), {})[key] = obj
        self._encoded.pop(key, None)
        self._forget_order(key)
        event = Event(self._rv, event_type, obj)
        self._events.append(event)
        self._changed.notify_all()
        return event

    def _forget_order(self, key: Key) -> None:
        """Drop the sorted lists a write to ``key`` changes (under the lock)."""
        self._sorted.pop((key[0], None), None)
        if key[1] is not None:
            self._sorted.pop((key[0], key[1]), None)

    def _notify(self, event: Event) -> None:
        subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)

    def _namespace_terminating(self, namespace: str) -> bool:
        ns = self._objects.get(("Namespace", None, namespace))
        return bool(ns and (ns.get("status") or {}).get("phase") == "Terminating")

    @staticmethod
    def _keep_server_fields(old: Obj, new: Obj) -> Obj:
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp"):
            meta[field] = old["metadata"][field]
        desired = ("addressType", "endpoints", "ports") if new.get("kind") == "EndpointSlice" else ("spec",)
        if new.get("kind") not in GENERATION_KINDS:
            meta.pop("generation", None)
        elif any(new.get(field) != old.get(field) for field in desired):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        else:
            meta["generation"] = old["metadata"].get("generation", 1)
        return new
