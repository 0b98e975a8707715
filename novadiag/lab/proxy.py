"""The lab's kube-proxy: Service ClusterIP:port → a ready pod, over real TCP.

kube-proxy programs the node so that a connection to a ClusterIP reaches one ready
endpoint, and a Service without ready endpoints *rejects* (iptables ``REJECT``:
connection refused, not a timeout). novadiag's live probes connect to ClusterIPs and
must see exactly that, so the lab listens on each ``ClusterIP:port`` (an address of
its own 127.N.128.0/17 range, local to the machine) only while the Service has
ready endpoints, and relays each accepted connection to the next ready pod
IP:targetPort, round-robin.

Like kube-proxy it reads EndpointSlices, not pods, and matches a Service port to a
slice port by name. Headless and ExternalName Services get no listener (DNS
answers for them). Established connections survive an endpoint change, as
conntrack entries do.

One asyncio loop in one thread serves every listener and relay, so a lab with a
hundred Services costs one thread and a few sockets, not a thread per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping

from novadiag.lab.endpoints import SERVICE_NAME_LABEL
from novadiag.lab.store import Obj, Store

log = logging.getLogger("novadiag.lab.proxy")

Address = tuple[str, int]
Table = dict[Address, tuple[Address, ...]]
CONNECT_TIMEOUT = 2.0
CHUNK = 65536


def proxy_table(store: Store) -> Table:
    """``(clusterIP, port) -> ready (podIP, targetPort)`` for every proxied Service port."""
    slices, _ = store.list("EndpointSlice")
    by_service: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for s in slices:
        name = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            by_service[(s["metadata"]["namespace"], name)].append(s)
    services, _ = store.list("Service")
    table: Table = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        for port in spec.get("ports") or []:
            if str(port.get("protocol") or "TCP") != "TCP":
                continue
            backends = tuple(_ready_backends(by_service.get(key, []), str(port.get("name") or "")))
            if backends:
                table[(str(ip), int(port["port"]))] = backends
    return table


def _ready_backends(slices: list[Obj], port_name: str) -> Iterator[Address]:
    for s in slices:
        number = next((int(p["port"]) for p in s.get("ports") or []
                       if str(p.get("name") or "") == port_name and p.get("port")), None)
        if number is None:
            continue
        for endpoint in s.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                for address in endpoint.get("addresses") or []:
                    yield (str(address), number)


class ServiceProxy:
    """Listeners on ClusterIPs that relay to ready endpoints; ``apply`` a table to change."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="lab-proxy", daemon=True)
        self._servers: dict[Address, asyncio.Server] = {}
        self._backends: dict[Address, tuple[Address, ...]] = {}
        self._cursors: dict[Address, Iterator[int]] = {}
        self._failed: dict[Address, tuple[Address, ...]] = {}
        self._applied: Table = {}
        # asyncio keeps only weak references to tasks, and a relay whose client has
        # half-closed is reachable from nothing else: without this set the garbage
        # collector would destroy it mid-connection.
        self._relays: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    @property
    def listening(self) -> list[Address]:
        return sorted(self._servers)

    def apply(self, table: Mapping[Address, tuple[Address, ...]]) -> None:
        """Make the listeners match ``table``; returns once they do."""
        table = dict(table)
        if table == self._applied or not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._apply(table), self._loop)
        future.result(timeout=10)
        self._applied = table

    # -- inside the loop -----------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _apply(self, table: Table) -> None:
        for address in [a for a in self._servers if a not in table]:
            server = self._servers.pop(address)
            server.close()
            self._backends.pop(address, None)
        for address, backends in table.items():
            if self._backends.get(address) != backends:
                self._backends[address] = backends
                self._cursors[address] = itertools.count()
            if address not in self._servers:
                await self._listen(address, backends)

    async def _listen(self, address: Address, backends: tuple[Address, ...]) -> None:
        try:
            self._servers[address] = await asyncio.start_server(
                lambda r, w: self._relay(address, r, w), address[0], address[1],
                reuse_address=True)
        except OSError as exc:
            if self._failed.get(address) != backends:
                log.warning("cannot listen on Service address %s:%s: %s", *address, exc)
            self._failed[address] = backends
            self._backends.pop(address, None)
        else:
            self._failed.pop(address, None)

    async def _close_all(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        relays = list(self._relays)
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        for _ in range(3):  # let the closed transports deliver connection_lost
            await asyncio.sleep(0)

    def _pick(self, address: Address) -> Address | None:
        backends = self._backends.get(address)
        if not backends:
            return None
        return backends[next(self._cursors[address]) % len(backends)]

    async def _relay(self, address: Address, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        backend = self._pick(address)
        try:
            if backend is None:
                raise OSError("no ready endpoint")
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*backend), CONNECT_TIMEOUT)
        except (TimeoutError, OSError, asyncio.CancelledError):
            writer.transport.abort()  # the client sees a reset, as from a dead endpoint
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.transport.abort()
