"""The program inside every lab pod: ``python -I container.py [--init] launch.json``.

It is started by path (never ``-m``: importing the ``novadiag`` package would cost
more than the whole container start) and imports only the standard library, so a
pod is up in a few tens of milliseconds. Two roles:

**PID 1 bootstrap** (``--init``, root mode; see ``podproc`` for why): inside the
pod's fresh mount, UTS and PID namespaces it builds the pod's private root (bind
mounts through ``mount(2)``), binds the pod's ``resolv.conf``, ``hosts`` and
``nsswitch.conf`` over ``/etc`` and its volumes at their ``mountPath``s,
``chroot``s, mounts ``/proc``, sets the hostname, drops to ``runAsUser`` if asked,
and then either ``exec``s the container's real command (probe pods) or goes on, in
this same process, as the lab workload below.

**The lab workload** — a lab pod has no image to run, so every workload container
runs this, behaving as the services in the scenarios behave where novadiag can
observe them:

1. *Start-up needs.* Env vars named in the pod template annotation
   ``lab.novadiag.dev/startup-needs`` are dependencies the service must reach
   before it serves. Each value is parsed (URL, ``host:port``, ``dns:///host:port``),
   the host is resolved and a TCP connection is attempted. On failure it prints
   ``FATAL: NAME=value: <reason>`` to stderr and exits 1, and the kubelet turns that
   into CrashLoopBackOff, exactly how user-service fails in Nova. As root,
   ``socket.getaddrinfo`` is glibc reading the pod's own ``/etc/resolv.conf`` and
   walking its search list against the lab DNS. In degraded mode (no root, no
   namespaces) the spec carries an explicit resolver (nameserver ip *and port*,
   search list, ndots) and :class:`StubResolver` applies glibc's search rules
   itself; the log says so.
2. *Listeners* on the pod IP for every container port: ports named ``grpc*`` serve
   the standard ``grpc.health.v1.Health`` service (grpcio, imported only by pods
   that have such a port, and only after the start-up needs passed, so a
   crash-looping pod never pays for it); ports named ``http*`` answer HTTP/1.1 with
   200 and a JSON body naming the pod (``http-graphql`` answers ``{ __typename }``);
   any other TCP port accepts and echoes. Why the pod hosts its own gRPC server:
   importing grpcio costs ~0.1 s of CPU, which the 6 serving gRPC pods of Nova can
   afford (the 37-pod lab settles in ~1.3-2 s on a quiet 2-core machine), and a
   listener owned by the pod's process lives and dies with the pod — a kubelet-hosted
   listener would have to emulate that.
3. *Readiness.* Once every listener is bound it writes ``ready`` to the file
   descriptor the kubelet passed (``ready_fd``), which the kubelet treats as a
   passing readiness probe.

The stub resolver is also what a degraded-mode probe pod's ``sitecustomize``
installs in place of ``socket.getaddrinfo`` (see ``podproc``), so that no lab lookup
ever reaches the machine's own resolver.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys
import threading
from concurrent import futures
from typing import Any

IDLE_TIMEOUT = 60.0
CONNECT_TIMEOUT = 1.0
DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 443, "ws": 80, "wss": 443}


def log(message: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


# -- targets -------------------------------------------------------------------


def parse_target(value: str) -> tuple[str, int] | None:
    """``(host, port)`` from a URL, ``host:port`` or ``dns:///host:port``; None if no port."""
    text = value.strip().split(",")[0].strip()
    default = None
    if "://" in text:
        scheme, _, rest = text.partition("://")
        default = DEFAULT_PORTS.get(scheme.lower())
        if scheme.lower() == "dns":
            rest = rest.split("/", 1)[1] if "/" in rest else rest
        text = rest.split("/", 1)[0].split("?", 1)[0]
        text = text.rpartition("@")[2]
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if port_text.isdigit():
        return host, int(port_text)
    return (host, default) if host and default else None


# -- degraded-mode resolver ----------------------------------------------------


class StubResolver:
    """A glibc-like stub resolver pointed explicitly at the lab DNS (degraded mode).

    Implements what matters for novadiag: ``/etc/hosts``-style file first, then the
    search list with glibc's ndots rule (fewer dots than ndots: search list first,
    then the name as is; otherwise as is first; a trailing dot: as is only), A
    records only, UDP with a TCP retry on truncation.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.nameservers = [(str(ip), int(port)) for ip, port in config["nameservers"]]
        self.search = [str(s) for s in config.get("search") or []]
        self.ndots = int(config.get("ndots", 1))
        self.hosts_file = config.get("hosts_file")
        self.timeout = float(config.get("timeout", 2.0))

    def candidates(self, name: str) -> list[str]:
        if name.endswith("."):
            return [name[:-1]]
        as_is = [name]
        searched = [f"{name}.{domain}" for domain in self.search]
        if name.count(".") >= self.ndots:
            return as_is + searched
        return searched + as_is

    def resolve(self, name: str) -> list[str]:
        """IPv4 addresses for ``name``; raises ``socket.gaierror`` like getaddrinfo."""
        if _is_ipv4(name):
            return [name]
        from_file = self._from_hosts(name)
        if from_file:
            return from_file
        temporary = False
        for candidate in self.candidates(name):
            try:
                addresses = self._query(candidate)
            except OSError:
                temporary = True
                continue
            if addresses:
                return addresses
        if temporary:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def _from_hosts(self, name: str) -> list[str]:
        if not self.hosts_file:
            return []
        try:
            with open(self.hosts_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) > 1 and name.rstrip(".") in fields[1:] and _is_ipv4(fields[0]):
                found.append(fields[0])
        return found

    def _query(self, name: str) -> list[str]:
        query_id = int.from_bytes(os.urandom(2), "big")
        packet = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + _encode_name(name)
        packet += struct.pack("!HH", 1, 1)
        for server in self.nameservers:
            reply = self._exchange_udp(packet, server)
            if reply is not None and reply[2] & 0x02:  # truncated: retry over TCP
                reply = self._exchange_tcp(packet, server)
            if reply is not None:
                return _answers(reply, query_id)
        raise OSError("no nameserver answered")

    def _exchange_udp(self, packet: bytes, server: tuple[str, int]) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.sendto(packet, server)
                return sock.recv(65535)
            except OSError:
                return None

    def _exchange_tcp(self, packet: bytes, server: tuple[str, int]) -> bytes | None:
        try:
            with socket.create_connection(server, timeout=self.timeout) as sock:
                sock.sendall(struct.pack("!H", len(packet)) + packet)
                size = struct.unpack("!H", _recv_exact(sock, 2))[0]
                return _recv_exact(sock, size)
        except (OSError, struct.error):
            return None

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list[Any]:
        """Drop-in for ``socket.getaddrinfo`` (IPv4 only)."""
        if host is None:
            return _ORIGINAL_GETADDRINFO(host, port, family, type, proto, flags)
        name = host.decode() if isinstance(host, bytes) else str(host)
        addresses = [name] if _is_ipv4(name) or name == "localhost" else self.resolve(name)
        number = int(port) if isinstance(port, int) or str(port).isdigit() else 0
        kinds = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
        result = []
        for address in addresses:
            ip = "127.0.0.1" if address == "localhost" else address
            for kind in kinds:
                result.append((socket.AF_INET, kind, proto, "", (ip, number)))
        return result


_ORIGINAL_GETADDRINFO = socket.getaddrinfo


def install_stub_resolver(config: dict[str, Any]) -> StubResolver:
    """Route this interpreter's ``socket`` lookups through a :class:`StubResolver`."""
    resolver = StubResolver(config)
    socket.getaddrinfo = resolver.getaddrinfo
    socket.gethostbyname = lambda name: resolver.resolve(name)[0]
    return resolver


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return text.count(".") == 3


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("idna") if label else b""
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def _answers(reply: bytes, query_id: int) -> list[str]:
    reply_id, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    if reply_id != query_id:
        raise OSError("mismatched DNS reply id")
    rcode = flags & 0x0F
    if rcode == 3:
        return []
    if rcode != 0:
        raise OSError(f"DNS rcode {rcode}")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(reply, offset) + 4
    found = []
    for _ in range(ancount):
        offset = _skip_name(reply, offset)
        rtype, _rclass, _ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return found


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


# -- pod bootstrap (root mode) ---------------------------------------------------------

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1


class _Sys:
    """The few syscalls the pod side needs, through ctypes ."""

    def __init__(self) -> None:
        self._ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
        if self.libc.mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
            errno = self._ctypes.get_errno()
            raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")

    def bind(self, source: str, target: str, *, readonly: bool = False) -> None:
        self.mount(source, target, None, MS_BIND | MS_REC)
        if readonly:
            self.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self.libc.sethostname(raw, len(raw))

    def pdeathsig(self, signal_number: int) -> None:
        self.libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def _placeholder(path: str, like: str) -> None:
    if os.path.isdir(like) and not os.path.islink(like):
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        open(path, "a").close()


def _splice(sys_: _Sys, root: str, host_dir: str, *, skip: tuple[str, ...] = ()) -> None:
    """Make ``root + host_dir`` a private tmpfs mirroring ``host_dir`` by bind mounts."""
    inside = root + host_dir if host_dir != "/" else root
    sys_.mount("tmpfs", inside, "tmpfs", 0, "mode=755")
    for name in os.listdir(host_dir):
        source = os.path.join(host_dir, name)
        target = os.path.join(inside, name)
        if name in skip:
            os.makedirs(target, exist_ok=True)
        elif os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            _placeholder(target, source)
            sys_.bind(source, target)


def _prepare_target(sys_: _Sys, root: str, target: str, *, is_dir: bool) -> str:
    """A mount point for ``target`` inside the private root, never touching the host."""
    target = os.path.normpath(target)
    target = os.path.join(os.path.realpath(os.path.dirname(target)), os.path.basename(target))
    inside = root + target
    if os.path.lexists(target) and not os.path.islink(target):
        return inside
    ancestor = os.path.dirname(target.rstrip("/"))
    while not os.path.isdir(ancestor) or os.path.islink(ancestor):
        ancestor = os.path.dirname(ancestor)
    if ancestor != "/":
        _splice(sys_, root, ancestor)
    if os.path.islink(inside):
        os.unlink(inside)  # a symlinked /etc/resolv.conf becomes the pod's own file
    if is_dir:
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "a").close()
    return inside


def prepare_root(sys_: _Sys, plan: dict[str, Any]) -> None:
    root = plan["root"]
    os.makedirs(root, exist_ok=True)
    _splice(sys_, root, "/", skip=("proc",))
    for directory in plan.get("expose") or []:
        _splice(sys_, root, directory)
    for mount in sorted(plan["mounts"], key=lambda m: m["target"].count("/")):
        inside = _prepare_target(sys_, root, mount["target"],
                                 is_dir=os.path.isdir(mount["source"]))
        sys_.bind(mount["source"], inside, readonly=mount["readonly"])
    for target, source in plan["etc_files"].items():
        sys_.bind(source, _prepare_target(sys_, root, target, is_dir=False))
    if os.path.isdir("/run/nscd"):
        sys_.mount("tmpfs", root + "/run/nscd", "tmpfs", 0)


def _write_host_pid(path: str) -> None:
    """Record this process's pid as the machine sees it (before /proc is replaced)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("NSpid:"):
                with open(path, "w", encoding="ascii") as out:
                    out.write(line.split()[1] + "\n")
                return


def in_fresh_namespaces(launcher_mount_ns: str | None) -> bool:
    """PID 1 of a new PID namespace, in another mount namespace than the kubelet's."""
    try:
        own = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False
    return os.getpid() == 1 and bool(launcher_mount_ns) and own != launcher_mount_ns


def boot(plan: dict[str, Any]) -> None:
    """PID 1 of a pod (root mode): build the private root, chroot, become the container."""
    if not in_fresh_namespaces(plan.get("launcher_mount_ns")):
        # Every mount below would land in the machine's own mount table.
        raise OSError(1, "--init must run as PID 1 of fresh namespaces "
                         "(unshare --mount --pid --fork); refusing to mount")
    if plan.get("pid_file"):
        _write_host_pid(plan["pid_file"])
    sys_ = _Sys()
    sys_.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates back out
    prepare_root(sys_, plan)
    os.chroot(plan["root"])
    os.chdir("/")
    sys_.mount("proc", "/proc", "proc", 0)
    if plan.get("hostname"):
        sys_.sethostname(plan["hostname"])
    os.chdir(plan.get("cwd") or "/")
    if plan.get("uid") is not None:
        os.setgroups([])
        os.setgid(plan["gid"] if plan.get("gid") is not None else plan["uid"])
        os.setuid(plan["uid"])
        sys_.pdeathsig(signal.SIGKILL)  # a credentials change clears it


# -- start-up needs ------------------------------------------------------------


def check_needs(spec: dict[str, Any], resolver: StubResolver | None) -> str | None:
    """None when every start-up need resolves and connects, else the FATAL line."""
    for name in spec.get("startup_needs") or []:
        value = os.environ.get(name)
        if value is None:
            return f"FATAL: {name} is not set"
        target = parse_target(value)
        if target is None:
            return f"FATAL: {name}={value}: no host:port in value"
        problem = reach(*target, resolver)
        if problem:
            return f"FATAL: {name}={value}: {problem}"
        log(f"start-up need {name}={value}: reachable")
    return None


def reach(host: str, port: int, resolver: StubResolver | None) -> str | None:
    try:
        if resolver is not None:
            addresses = resolver.resolve(host)
        else:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
            addresses = [str(info[4][0]) for info in infos]
    except socket.gaierror as exc:
        return str(exc.strerror)
    last = "no address"
    for address in addresses:
        try:
            with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT):
                return None
        except OSError as exc:
            last = f"connect {address}:{port}: {exc.strerror or exc}"
    return last


# -- listeners -----------------------------------------------------------------


def listen(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(128)
    return sock


def serve_forever(sock: socket.socket, handler: Any, *args: Any) -> None:
    def accept_loop() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.settimeout(IDLE_TIMEOUT)
            threading.Thread(target=_guarded, args=(handler, conn, *args), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()


def _guarded(handler: Any, conn: socket.socket, *args: Any) -> None:
    with conn:
        try:
            handler(conn, *args)
        except OSError:
            pass


def echo(conn: socket.socket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def answer_http(conn: socket.socket, identity: dict[str, Any], graphql: bool) -> None:
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = conn.recv(65536)
        if not chunk or len(raw) > 1 << 16:
            return
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ")[0].upper()
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    payload: dict[str, Any] = {"status": "ok", **identity}
    if graphql and method == "POST":
        payload = {"data": {"__typename": "Query"}} if b"__typename" in body else {
            "data": None, "errors": [{"message": "the lab gateway answers only { __typename }"}]}
    data = json.dumps(payload).encode()
    headers = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    conn.sendall(headers.encode() + (b"" if method == "HEAD" else data))


def start_grpc(ip: str, ports: list[int]) -> Any:
    import grpc  # deferred: grpc loads in a pod only when it serves a grpc port
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for port in ports:
        if server.add_insecure_port(f"{ip}:{port}") != port:
            raise OSError(f"cannot listen on {ip}:{port}")
    server.start()
    return server


def start_listeners(spec: dict[str, Any]) -> list[Any]:
    ip = spec["pod_ip"]
    identity = {"pod": spec["pod"], "namespace": spec["namespace"], "container": spec["container"]}
    keep: list[Any] = []
    grpc_ports = []
    for port in spec.get("ports") or []:
        if str(port.get("protocol") or "TCP").upper() != "TCP":
            continue
        name = str(port.get("name") or "")
        number = int(port["containerPort"])
        if name.startswith("grpc"):
            grpc_ports.append(number)
            continue
        sock = listen(ip, number)
        keep.append(sock)
        if name.startswith("http"):
            serve_forever(sock, answer_http, {**identity, "port": number},
                          name.startswith("http-graphql"))
        else:
            serve_forever(sock, echo)
    if grpc_ports:
        keep.append(start_grpc(ip, grpc_ports))
    return keep


def signal_ready(spec: dict[str, Any]) -> None:
    fd = spec.get("ready_fd")
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
        os.close(int(fd))
    except OSError:
        pass


def wait_forever(keep: list[Any]) -> None:
    """Serve until a signal ends the process (``keep`` holds the listeners alive)."""
    while keep is not None:
        signal.pause()


def serve(spec: dict[str, Any]) -> int:
    """The lab workload: start-up needs, listeners, readiness, then serve until killed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"lab container {spec['container']} ({spec.get('image')}) in pod "
        f"{spec['namespace']}/{spec['pod']} at {spec['pod_ip']}")
    resolver = None
    if spec.get("resolver"):
        resolver = StubResolver(spec["resolver"])
        log("lab degraded mode: no private mount namespace; resolving with an explicit "
            f"resolver {resolver.nameservers} search {resolver.search} ndots:{resolver.ndots}")
    problem = check_needs(spec, resolver)
    if problem:
        log(problem, err=True)
        return 1
    try:
        keep = start_listeners(spec)
    except OSError as exc:
        log(f"FATAL: listen: {exc}", err=True)
        return 1
    ports = ", ".join(f"{p.get('name') or '-'}:{p['containerPort']}" for p in spec.get("ports") or [])
    log(f"serving {ports or 'no ports'}")
    signal_ready(spec)
    wait_forever(keep)
    return 0


def main(argv: list[str]) -> int:
    """``container.py [--init] launch.json``: ``--init`` when PID 1 of a root-mode pod."""
    init = argv[1] == "--init"
    with open(argv[-1], encoding="utf-8") as handle:
        plan = json.load(handle)
    if init:
        try:
            boot(plan)
            if plan.get("program") is None:
                os.execvpe(plan["argv"][0], plan["argv"], plan["env"])
        except OSError as exc:
            log(f"lab pod start failed: {exc}", err=True)
            return 128
        os.environ.clear()
        os.environ.update(plan["env"])
    return serve(plan["program"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
