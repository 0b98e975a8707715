"""Watch streams: the Store's event log turned into Kubernetes watch events.

Semantics follow kube-apiserver's watch cache:

- no ``resourceVersion`` (or ``"0"``): synthetic ``ADDED`` events for every object
  that matches now, then the changes after it;
- ``resourceVersion=N``: every change after N; when N is older than the event log
  the stream carries a single ``ERROR`` event whose object is a 410 ``Expired``
  Status ("too old resource version"), which is what makes informers and the
  Python client's ``Watch`` re-list;
- label and field selectors are applied to each event's object, and an object that
  stops (or starts) matching on a change is reported ``DELETED`` (or ``ADDED``),
  not ``MODIFIED``;
- ``allowWatchBookmarks`` adds ``BOOKMARK`` events carrying the latest
  resourceVersion while the stream is idle; ``sendInitialEvents`` ends the
  initial ``ADDED`` burst with the ``k8s.io/initial-events-end`` bookmark;
- ``timeoutSeconds`` ends the stream cleanly.

The generator yields ``None`` while idle so the HTTP layer can notice a client
that went away or a server that is stopping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from novadiag.lab.apierrors import bad_request, status_object
from novadiag.lab.rest import Query, Route, selectors_for
from novadiag.lab.store import Event, Gone, Key, Obj, Store

DEFAULT_TIMEOUT_SECONDS = 1800
BOOKMARK_INTERVAL_SECONDS = 5.0
POLL_SECONDS = 0.5


def too_old(resource_version: int, current: int) -> Obj:
    return {"type": "ERROR", "object": status_object(
        410, f"too old resource version: {resource_version} ({current})", reason="Expired")}


class WatchStream:
    """One client's watch: iterate :meth:`events` until it ends."""

    def __init__(self, store: Store, route: Route, query: Query, *,
                 stop: threading.Event) -> None:
        self.store = store
        self.route = route
        self.stop = stop
        self.labels, self.fields = selectors_for(route.resource, query)
        self.bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        self.initial_events = query.get("sendInitialEvents") in ("1", "true", "True")
        self.timeout = _seconds(query.get("timeoutSeconds"))
        self.start_rv = _resource_version(query.get("resourceVersion"))
        self.matched: set[Key] = set()
        self.filtering = not (self.labels.empty and self.fields.empty)

    def events(self) -> Iterator[Obj | None]:
        deadline = time.monotonic() + self.timeout
        last: int
        if self.start_rv is None or self.initial_events:
            last = yield from self._initial()
        else:
            last = self.start_rv
            try:
                self.store.events_since(last)
            except Gone:
                yield too_old(last, self.store.resource_version)
                return
            self._seed_matches()
        idle_since = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                events: list[Event] = list(self.store.events_since(last))
            except Gone:
                yield too_old(last, self.store.resource_version)
                return
            for event in events:
                last = event.resource_version
                translated = self._translate(event)
                if translated is not None:
                    idle_since = time.monotonic()
                    yield translated
            if events:
                continue
            if self.bookmarks and time.monotonic() - idle_since >= BOOKMARK_INTERVAL_SECONDS:
                idle_since = time.monotonic()
                yield self._bookmark(last)
            yield None
            remaining = deadline - time.monotonic()
            if remaining > 0:
                self.store.wait_for_change(last, min(POLL_SECONDS, remaining))

    def _initial(self) -> Generator[Obj, None, int]:
        kind = self.route.resource.kind
        items, rv = self.store.list(kind, self.route.namespace)
        for obj in items:
            if self._matches(obj):
                self.matched.add(_key(kind, obj))
                yield {"type": "ADDED", "object": obj}
        if self.initial_events:
            yield self._bookmark(rv, initial_end=True)
        return rv

    def _seed_matches(self) -> None:
        if not self.filtering:
            return
        kind = self.route.resource.kind
        items, _ = self.store.list(kind, self.route.namespace)
        self.matched = {_key(kind, o) for o in items if self._matches(o)}

    def _matches(self, obj: Obj) -> bool:
        if self.route.name and obj["metadata"].get("name") != self.route.name:
            return False
        return self.labels.matches_object(obj) and self.fields.matches(obj)

    def _translate(self, event: Event) -> Obj | None:
        resource = self.route.resource
        if event.kind != resource.kind:
            return None
        if self.route.namespace is not None and event.namespace != self.route.namespace:
            return None
        obj = event.object
        now = self._matches(obj)
        if not self.filtering and not self.route.name:
            return {"type": event.type, "object": obj}
        key = _key(resource.kind, obj)
        was = key in self.matched
        if event.type == "DELETED":
            self.matched.discard(key)
            return {"type": "DELETED", "object": obj} if (was or now) else None
        if now:
            self.matched.add(key)
            kind = "MODIFIED" if was and event.type == "MODIFIED" else "ADDED"
            return {"type": kind, "object": obj}
        if was:
            self.matched.discard(key)
            return {"type": "DELETED", "object": obj}
        return None

    def _bookmark(self, resource_version: int, *, initial_end: bool = False) -> Obj:
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        resource = self.route.resource
        return {"type": "BOOKMARK", "object": {
            "kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata}}


def _key(kind: str, obj: Obj) -> Key:
    meta = obj["metadata"]
    return (kind, meta.get("namespace"), meta["name"])


def _seconds(raw: str | None) -> float:
    if not raw:
        return float(DEFAULT_TIMEOUT_SECONDS)
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"invalid timeoutSeconds {raw!r}") from exc
    return float(value) if value > 0 else float(DEFAULT_TIMEOUT_SECONDS)


def _resource_version(raw: str | None) -> int | None:
    if raw in (None, "", "0"):
        return None
    try:
        return int(str(raw))
    except ValueError as exc:
        raise bad_request(f"invalid resource version: {raw!r}") from exc
