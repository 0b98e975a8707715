#!/usr/bin/env python3
"""novadiag probe: resolve and connect, from inside a pod, exactly as the app would.

Runs inside a short-lived probe pod that copies the source workload's DNS
settings (dnsPolicy, dnsConfig, hostNetwork), so the resolv.conf it sees is the
one the source's containers see. For every check it reports:

- ``system``: what ``getaddrinfo`` answers — the C library walking the search
  list, i.e. what the application itself would get;
- ``candidates``: each name of the search list asked in order, with its answer
  (NXDOMAIN / NODATA / SERVFAIL / timeout / addresses), asked directly of the
  nameserver with dnspython when installed, else with the small stub resolver
  below, so a report can say *which* name answered;
- ``connect``: a TCP connect to the port (ok / refused / timeout);
- ``health``: for http ports a GET (or the given request), for grpc ports the
  ``grpc.health.v1.Health/Check`` RPC (needs grpcio; ``skipped`` without it).

Standard library only, so it runs on any ``python:3.x`` image; one JSON
document on stdout. Usage: ``probe.py CHECKS.json`` (see novadiag/probes.py for
the format).
"""

from __future__ import annotations

import concurrent.futures
import errno
import http.client
import json
import os
import random
import socket
import struct
import sys
import time

SCHEMA = "novadiag.probe/v1"
RESOLV_CONF = "/etc/resolv.conf"


# -- resolv.conf -------------------------------------------------------------------------
def read_resolv_conf(path=RESOLV_CONF):
    conf = {"nameservers": [], "search": [], "ndots": 1, "options": [], "path": path}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        conf["error"] = str(exc)
        return conf
    for line in lines:
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            conf["nameservers"].append(parts[1])
        elif parts[0] in ("search", "domain"):
            conf["search"] = [p.rstrip(".").lower() for p in parts[1:]]
        elif parts[0] == "options":
            for opt in parts[1:]:
                conf["options"].append(opt)
                if opt.startswith("ndots:"):
                    try:
                        conf["ndots"] = min(15, int(opt.split(":", 1)[1]))
                    except ValueError:
                        pass
    return conf


def cluster_domain(conf):
    """The zone of a ClusterFirst search list: ``<ns>.svc.<zone> svc.<zone> <zone>``."""
    for domain in conf["search"]:
        if domain.startswith("svc."):
            return domain[len("svc."):]
    return None


def candidates(name, conf):
    name = name.lower()
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{d}." for d in conf["search"]]
    if name.count(".") >= conf["ndots"]:
        return [name + "."] + searched
    return searched + [name + "."]


# -- a tiny DNS stub resolver (A records) ---------------------------------------------------
RCODES = {0: "ok", 2: "servfail", 3: "nxdomain", 5: "refused"}


def _encode_query(name, qid):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".") if p)
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)


def _skip_name(msg, offset):
    while True:
        length = msg[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def _decode_answer(msg, qid):
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid:
        raise ValueError("answer id mismatch")
    rcode = flags & 0x000F
    truncated = bool(flags & 0x0200)
    offset = 12
    for _ in range(qd):
        offset = _skip_name(msg, offset) + 4
    addresses = []
    for _ in range(an):
        offset = _skip_name(msg, offset)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[offset:offset + 10])
        offset += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(msg[offset:offset + 4]))
        offset += rdlen
    return rcode, truncated, addresses


def stub_query(name, server, timeout, port=53):
    """One A query over UDP (TCP on truncation); returns (result, addresses)."""
    qid = random.randint(0, 0xFFFF)
    query = _encode_query(name, qid)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(query, (server, port))
            data, _ = sock.recvfrom(4096)
        rcode, truncated, addresses = _decode_answer(data, qid)
        if truncated:
            with socket.create_connection((server, port), timeout=timeout) as sock:
                sock.sendall(struct.pack(">H", len(query)) + query)
                size = struct.unpack(">H", _recv_exact(sock, 2))[0]
                rcode, _, addresses = _decode_answer(_recv_exact(sock, size), qid)
    except socket.timeout:
        return "timeout", []
    except (OSError, ValueError, struct.error, IndexError) as exc:
        return f"error: {exc}", []
    result = RCODES.get(rcode, f"rcode-{rcode}")
    if result == "ok" and not addresses:
        result = "nodata"
    return result, addresses


def _recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


def load_dnspython():
    """dnspython's modules when installed, else None; called once, before any thread starts.

    Importing ``dns.query`` from sixteen threads at once can hand one of them the
    half-initialized ``dns`` package ("module 'dns' has no attribute 'query'"),
    so the import happens here, in the main thread, and the checks only use it.
    """
    try:
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode
        import dns.rdatatype
    except ImportError:
        return None
    return dns


def query_candidate(name, conf, timeout, dnspython=None):
    for server in conf["nameservers"] or ["127.0.0.1"]:
        if dnspython is None:
            result, addresses = stub_query(name, server, timeout)
        else:
            result, addresses = _dnspython_query(dnspython, name, server, timeout)
        if result != "timeout":
            return result, addresses
    return "timeout", []


def _dnspython_query(dns, name, server, timeout):
    query = dns.message.make_query(name, dns.rdatatype.A)
    try:
        response, _ = dns.query.udp_with_fallback(query, server, timeout=timeout)
    except dns.exception.Timeout:
        return "timeout", []
    except (OSError, dns.exception.DNSException) as exc:
        return f"error: {exc}", []
    rcode = response.rcode()
    addresses = [r.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
    result = RCODES.get(rcode, dns.rcode.to_text(rcode).lower())
    if result == "ok" and not addresses:
        result = "nodata"
    return result, addresses


# -- the checks ----------------------------------------------------------------------------
def system_resolve(host, port):
    try:
        infos = socket.getaddrinfo(host, port or 0, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return {"status": "nxdomain", "addresses": [], "error": exc.strerror}
        if exc.errno == socket.EAI_AGAIN:
            return {"status": "servfail", "addresses": [], "error": exc.strerror}
        return {"status": "error", "addresses": [], "error": exc.strerror or str(exc)}
    except (OSError, UnicodeError) as exc:
        return {"status": "error", "addresses": [], "error": str(exc)}
    addresses = sorted({info[4][0] for info in infos})
    return {"status": "ok", "addresses": addresses, "error": None}


def source_address():
    """``(POD_IP, 0)`` to bind outgoing connections to, or None to let the kernel choose.

    In a cluster a pod has one address and the kernel picks it anyway. In the lab
    every pod shares the machine's loopback, where an unbound socket speaks from
    127.0.0.1; binding to the pod's own IP is what lets the lab's NetworkPolicy
    firewall tell which pod is connecting. A pod's own IP is always bindable, so a
    bind that fails (EADDRNOTAVAIL: a hostNetwork pod, a stale value) falls back
    to an unbound socket rather than failing the check.
    """
    pod_ip = os.environ.get("POD_IP", "").strip()
    return (pod_ip, 0) if pod_ip else None


def open_connection(address, port, timeout):
    """A connected TCP socket from the pod's own address when it can be bound."""
    source = source_address()
    if source is not None:
        try:
            return socket.create_connection((address, port), timeout=timeout, source_address=source)
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise
    return socket.create_connection((address, port), timeout=timeout)


def tcp_connect(address, port, timeout):
    try:
        with open_connection(address, port, timeout):
            return "ok", None
    except socket.timeout:
        return "timeout", f"no answer from {address}:{port} within {timeout}s"
    except ConnectionRefusedError:
        return "refused", f"{address}:{port} refused the connection"
    except OSError as exc:
        return "refused", str(exc)


def http_check(address, port, check, timeout):
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.sock = open_connection(address, port, timeout)
        body = check.get("body")
        headers = {"Host": f"{check['host']}:{port}", "User-Agent": "novadiag-probe"}
        if body is not None:
            headers["Content-Type"] = check.get("content_type") or "application/json"
        conn.request(check.get("method") or "GET", check.get("path") or "/", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return "failed", f"HTTP request failed: {exc}"
    finally:
        conn.close()
    expected = check.get("expect_status")
    ok = response.status == expected if expected else 200 <= response.status < 400
    if ok and check.get("expect_body") and check["expect_body"] not in text:
        return "failed", f"HTTP {response.status}: body does not contain {check['expect_body']!r}"
    return ("ok" if ok else "failed"), f"HTTP {response.status}"


def grpc_check(address, port, check, timeout):
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        return "skipped", "grpcio is not installed in the probe image"
    # grpcio offers no way to pick a channel's source address; tcp_connect, from the
    # pod's own address, has already shown whether a policy lets this connection through.
    channel = grpc.insecure_channel(f"{address}:{port}")
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=check.get("service") or ""), timeout=timeout)
    except grpc.RpcError as exc:
        return "failed", f"grpc.health.v1 Check failed: {exc.code().name}"
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return ("ok" if status == "SERVING" else "failed"), f"grpc health: {status}"


def run_check(check, conf, timeout, dnspython=None):
    started = time.monotonic()
    host, port = check["host"], check.get("port")
    result = {"id": check["id"], "host": host, "port": port}
    result["candidates"] = []
    if not check.get("skip_candidates"):
        for name in candidates(host, conf):
            answer, addresses = query_candidate(name, conf, timeout, dnspython)
            result["candidates"].append({"name": name, "result": answer, "addresses": addresses})
            if answer == "ok":
                break
    result["system"] = system_resolve(host, port)
    result["connect"], result["health"], result["detail"] = "skipped", "skipped", None
    addresses = result["system"]["addresses"]
    if addresses and port:
        result["connect"], result["detail"] = tcp_connect(addresses[0], port, timeout)
        protocol = check.get("protocol") or "tcp"
        if result["connect"] == "ok" and protocol == "http":
            result["health"], result["detail"] = http_check(addresses[0], port, check, timeout)
        elif result["connect"] == "ok" and protocol == "grpc":
            result["health"], result["detail"] = grpc_check(addresses[0], port, check, timeout)
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def main(argv):
    if len(argv) != 2:
        print("usage: probe.py CHECKS.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    timeout = float(spec.get("timeout", 3.0))
    conf = read_resolv_conf(spec.get("resolv_conf") or RESOLV_CONF)
    checks = spec.get("checks") or []
    workers = max(1, min(int(spec.get("concurrency", 16)), len(checks) or 1))
    dnspython = load_dnspython()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda c: run_check(c, conf, timeout, dnspython), checks))
    doc = {
        "schema": SCHEMA,
        "run_id": spec.get("run_id"),
        "group": spec.get("group"),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "resolv_conf": conf,
        "cluster_domain": cluster_domain(conf),
        "resolver": "stub" if dnspython is None else "dnspython",
        "results": results,
    }
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
