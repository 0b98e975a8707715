"""The lab's cluster DNS server: UDP and TCP, answering from the Store.

Pods in a lab resolve names with glibc's own stub resolver against this server
(their ``/etc/resolv.conf`` names ``127.N.0.10``), so it must speak real DNS on
the wire: UDP first, TCP when the UDP answer is truncated (glibc only retries
over TCP on the TC bit, never on silence), the 512-byte limit without EDNS,
FORMERR/NOTIMP for what it does not serve. What each name means lives in
:mod:`.dnszone`; this module is sockets, wire format (dnspython's message
functions, never its resolver), faults and counters.

One thread serves both the UDP socket and the TCP listener through a selector;
UDP queries are answered inline (microseconds each), TCP connections get a
short-lived thread each. Faults are set at run time for reliability tests:
``servfail`` answers everything with SERVFAIL, ``drop_udp`` ignores UDP (clients
time out), ``truncate_udp`` sets TC on every UDP answer (clients move to TCP),
``delay_ms`` delays every answer.

Nothing is ever forwarded: a name the zone does not know is NXDOMAIN, so a lab
pod never reaches the machine's own resolver through us.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import struct
import threading
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype

from novadiag.lab.dnsindex import ZoneIndex
from novadiag.lab.dnszone import Answer, Zone
from novadiag.lab.store import Store

log = logging.getLogger(__name__)

UDP_LIMIT = 512
EDNS_LIMIT = 1232
TCP_IDLE_SECONDS = 10.0
MAX_TCP_CONNECTIONS = 64
ANSWER_CACHE_SIZE = 50_000
"""Replies kept before the cache starts over (a few hundred bytes each)."""
UDP_RECEIVE_BUFFER = 16 << 20
"""Bytes of queries the UDP socket may queue (the kernel doubles it for bookkeeping)."""


@dataclass(frozen=True)
class DnsFaults:
    """Faults the server applies to every query until cleared."""

    servfail: bool = False
    drop_udp: bool = False
    truncate_udp: bool = False
    delay_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rewrites(rewrites: Iterable[Mapping[str, str] | tuple[str, str]] | None) -> list[tuple[str, str]]:
    """``[{from: a, to: b}]`` (the scenario form) or ``[(a, b)]`` into pairs."""
    pairs = []
    for item in rewrites or ():
        if isinstance(item, Mapping):
            pairs.append((str(item["from"]), str(item["to"])))
        else:
            pairs.append((str(item[0]), str(item[1])))
    return pairs


class LabDns:
    """A DNS server for one lab's cluster zone, on ``address`` (UDP and TCP).

    >>> from novadiag.lab.store import Store
    >>> server = LabDns(Store(), address=("127.0.0.1", 0), cluster_domain="cluster.local")
    >>> server.resolve("kubernetes.default.svc.cluster.local").rcode.name  # no such Service
    'NXDOMAIN'
    """

    def __init__(
        self,
        store: Store,
        *,
        address: tuple[str, int],
        cluster_domain: str = "cluster.local",
        extra_records: Mapping[str, str] | None = None,
        rewrites: Iterable[Mapping[str, str] | tuple[str, str]] | None = None,
    ) -> None:
        self._requested = address
        self._address = address
        self.cluster_domain = cluster_domain.strip(".")
        self.index = ZoneIndex(store)
        self.zone = Zone(
            self.index,
            cluster_domain=self.cluster_domain,
            extra_records=extra_records,
            rewrites=parse_rewrites(rewrites),
            nameserver_ip=address[0],
        )
        self._faults = DnsFaults()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections = threading.BoundedSemaphore(MAX_TCP_CONNECTIONS)
        self._answers = _AnswerCache()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port once started, when port 0 was asked for)."""
        return self._address

    def start(self) -> None:
        """Bind UDP and TCP on the address and start serving; OSError when it cannot bind."""
        if self._thread is not None:
            return
        self._udp, self._tcp = _bind_pair(self._requested)
        self._wake = socket.socketpair()
        self._address = self._udp.getsockname()[:2]
        self.index.attach()
        self._thread = threading.Thread(target=self._serve, name="lab-dns", daemon=True)
        self._thread.start()
        log.info("cluster DNS for %s listening on %s:%d", self.cluster_domain, *self._address)

    def stop(self) -> None:
        self._stopping.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.index.detach()
        for sock in (self._udp, self._tcp, *(self._wake or ())):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake = None

    def __enter__(self) -> LabDns:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and metrics ----------------------------------------------------------------
    @property
    def faults(self) -> DnsFaults:
        return self._faults

    def set_faults(
        self,
        *,
        servfail: bool | None = None,
        drop_udp: bool | None = None,
        truncate_udp: bool | None = None,
        delay_ms: int | None = None,
    ) -> DnsFaults:
        """Change some faults (None keeps the current value); returns the new set."""
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "servfail": servfail,
                "drop_udp": drop_udp,
                "truncate_udp": truncate_udp,
                "delay_ms": delay_ms,
            }.items()
            if v is not None
        }
        if changes.get("delay_ms", 0) < 0:
            raise ValueError("delay_ms must be >= 0")
        self._faults = replace(self._faults, **changes)
        log.info("DNS faults now %s", self._faults)
        return self._faults

    def clear_faults(self) -> DnsFaults:
        self._faults = DnsFaults()
        return self._faults

    def metrics(self) -> dict[str, int]:
        """Counters: ``queries``, ``udp``, ``tcp``, one per rcode name, ``truncated``, ``dropped``."""
        with self._counts_lock:
            return dict(self._counts)

    def _count(self, *keys: str) -> None:
        with self._counts_lock:
            self._counts.update(keys)

    # -- in-process use --------------------------------------------------------------------
    def resolve(self, name: str, rdtype: str = "A") -> Answer:
        """Answer one question without the wire (tests, and the kubelet's degraded mode)."""
        return self.zone.resolve(dns.name.from_text(name.rstrip(".") + "."), dns.rdatatype.from_text(rdtype))

    # -- the sans-IO core ------------------------------------------------------------------
    def handle(self, wire: bytes, *, transport: str = "udp") -> bytes | None:
        """The answer to one query message (None: send nothing).

        Answers are remembered by the query's bytes after its ID, for as long as
        the zone does not change (see :class:`_AnswerCache`): a probe pod asks
        each name twice (glibc, then its own walk of the search list) and many
        pods ask the same FQDNs, and parsing and building each message in
        Python is what bounds a busy lab's DNS.
        """
        faults = self._faults
        if transport == "udp" and faults.drop_udp:
            self._count("queries", "udp", "dropped")
            return None
        key = (transport, faults, wire[2:])
        generation = self.index.generation
        known = self._answers.get(key, generation)
        if known is not None:
            self._count("queries", transport, *known.counters)
            return wire[:2] + known.tail
        reply, counters = self._answer(wire, transport, faults)
        self._count("queries", transport, *counters)
        if reply is not None and len(wire) > 2:
            self._answers.put(key, generation, _Reply(reply[2:], counters))
        return reply

    def _answer(self, wire: bytes, transport: str, faults: DnsFaults) -> tuple[bytes | None, tuple[str, ...]]:
        """The reply and what to count for it: its rcode, and ``truncated`` when it was."""
        try:
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
        except dns.exception.DNSException:  # unparsable, or a response sent to us
            return _formerr(wire), ("FORMERR",)
        response.flags |= dns.flags.RA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        elif faults.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            question = query.question[0]
            _fill(response, self.zone.resolve(question.name, question.rdtype))
        rcode = dns.rcode.to_text(response.rcode())
        if transport != "udp":
            return response.to_wire(), (rcode,)
        reply, truncated = _udp_wire(query, response, force_tc=faults.truncate_udp)
        return reply, (rcode, "truncated") if truncated else (rcode,)

    # -- sockets ---------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._wake is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._udp, selectors.EVENT_READ, "udp")
            sel.register(self._tcp, selectors.EVENT_READ, "tcp")
            sel.register(self._wake[0], selectors.EVENT_READ, "wake")
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "udp":
                        self._serve_udp()
                    elif key.data == "tcp":
                        self._accept_tcp()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        try:
            wire, peer = self._udp.recvfrom(65535)
        except OSError:
            return
        try:
            reply = self.handle(wire, transport="udp")
        except Exception:  # a bug must not kill the server thread
            log.exception("DNS query from %s failed", peer)
            return
        if reply is None:
            return
        delay = self._faults.delay_ms / 1000
        if delay > 0:
            timer = threading.Timer(delay, self._send_udp, (reply, peer))
            timer.daemon = True
            timer.start()
        else:
            self._send_udp(reply, peer)

    def _send_udp(self, reply: bytes, peer: Any) -> None:
        udp = self._udp
        if udp is not None:
            try:
                udp.sendto(reply, peer)
            except OSError:
                pass

    def _accept_tcp(self) -> None:
        assert self._tcp is not None
        try:
            conn, _ = self._tcp.accept()
        except OSError:
            return
        if not self._connections.acquire(blocking=False):
            conn.close()
            return
        threading.Thread(target=self._serve_tcp, args=(conn,), name="lab-dns-tcp", daemon=True).start()

    def _serve_tcp(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(TCP_IDLE_SECONDS)
            while not self._stopping.is_set():
                header = _recv_exact(conn, 2)
                if header is None:
                    return
                wire = _recv_exact(conn, struct.unpack("!H", header)[0])
                if wire is None:
                    return
                reply = self.handle(wire, transport="tcp")
                if reply is None:
                    return
                if self._faults.delay_ms:
                    self._stopping.wait(self._faults.delay_ms / 1000)
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return
        except Exception:
            log.exception("DNS over TCP failed")
        finally:
            conn.close()
            self._connections.release()


def _udp_wire(
    query: dns.message.Message, response: dns.message.Message, *, force_tc: bool
) -> tuple[bytes, bool]:
    """The response within the client's UDP size (EDNS or 512), else empty with TC set: (wire, truncated)."""
    limit = min(max(query.payload, UDP_LIMIT), EDNS_LIMIT) if query.edns >= 0 else UDP_LIMIT
    if not force_tc:
        try:
            return response.to_wire(max_size=limit), False
        except dns.exception.TooBig:
            pass
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()
    response.flags |= dns.flags.TC
    return response.to_wire(max_size=limit), True


@dataclass(frozen=True)
class _Reply:
    """A reply without its 2-byte ID, and the counters it adds to the metrics."""

    tail: bytes
    counters: tuple[str, ...]


class _AnswerCache:
    """Replies by query bytes, valid for the zone generation they were computed at.

    Each entry keeps the generation read *before* its answer was computed, so
    an answer that raced a change is never served as current; the cache starts
    over when the zone changes or when it holds :data:`ANSWER_CACHE_SIZE` replies.
    """

    def __init__(self) -> None:
        self._generation = -1
        self._replies: dict[Hashable, _Reply] = {}

    def get(self, key: Hashable, generation: int) -> _Reply | None:
        if generation != self._generation:
            return None
        return self._replies.get(key)

    def put(self, key: Hashable, generation: int, reply: _Reply) -> None:
        if generation < self._generation:
            return  # computed before a change another thread has already seen
        if generation > self._generation or len(self._replies) >= ANSWER_CACHE_SIZE:
            self._replies = {}
            self._generation = generation
        self._replies[key] = reply


def _fill(response: dns.message.Message, answer: Answer) -> None:
    response.set_rcode(answer.rcode)
    if answer.authoritative:
        response.flags |= dns.flags.AA
    response.answer.extend(answer.answer)
    response.authority.extend(answer.authority)
    response.additional.extend(answer.additional)


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR echoing the query id, when at least the header is there."""
    if len(wire) < 12:
        return None
    (query_id,) = struct.unpack("!H", wire[:2])
    flags = dns.flags.QR | dns.rcode.FORMERR
    return struct.pack("!HHHHHH", query_id, flags, 0, 0, 0, 0)


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _enlarge_receive_buffer(udp: socket.socket) -> None:
    """Room for bursts: hundreds of probe resolvers ask at once while the server thread waits for the GIL.

    With the kernel's default (~200 KB) the queue overflowed and queries were
    dropped, so glibc timed out on names that exist. As root the limit
    ``net.core.rmem_max`` does not apply (SO_RCVBUFFORCE); otherwise up to it.
    """
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    for option in (force, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            udp.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER)
            return
        except OSError:
            continue


def _bind_pair(address: tuple[str, int]) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on one (ip, port); with port 0, one free port for both."""
    attempts = 20 if address[1] == 0 else 1
    last: OSError | None = None
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            udp.bind(address)
            tcp.bind((address[0], udp.getsockname()[1]))
            tcp.listen(64)
        except OSError as exc:
            udp.close()
            tcp.close()
            last = exc
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        _enlarge_receive_buffer(udp)
        return udp, tcp
    assert last is not None
    raise last
