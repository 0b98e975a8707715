"""The lab's cluster DNS, queried over the wire with dnspython (never the system resolver)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from novadiag.lab.daemon import BlockLease
from novadiag.lab.dns import LabDns
from novadiag.lab.store import Store

pytestmark = pytest.mark.lab

ZONE = "cluster.local"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(ns: str, name: str, ip: str | None, *ports: tuple[str, int], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports], **spec}
    if ip is not None:
        body.setdefault("clusterIP", ip)
        body.setdefault("clusterIPs", [ip])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": body}


def endpoint_slice(
    ns: str,
    svc: str,
    *endpoints: tuple[str, str | None, bool],
    suffix: str = "abcde",
    ports: tuple[tuple[str, int], ...] = (),
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-{suffix}", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip], **({"hostname": host} if host else {}), "conditions": {"ready": ready}}
            for ip, host, ready in endpoints
        ],
        "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    for ns in ("nova-backend", "nova-content", "kafka", "nova-staging"):
        s.create(namespace(ns))
    s.create(service("nova-content", "content-service", "127.200.128.1", ("http", 9081), ("grpc", 9090)))
    s.create(service("kafka", "kafka-headless", "None", ("tcp-kafka", 9092)))
    s.create(
        endpoint_slice(
            "kafka",
            "kafka-headless",
            ("127.200.1.5", "kafka-0", True),
            ("127.200.1.6", "kafka-1", False),
            ports=(("tcp-kafka", 9092),),
        )
    )
    s.create(service("kafka", "zookeeper-headless", "None", ("tcp-zk", 2181)))
    s.create(
        service(
            "nova-staging",
            "content-alias",
            None,
            type="ExternalName",
            externalName=f"content-service.nova-content.svc.{ZONE}",
        )
    )
    s.create(service("nova-staging", "payments-api", None, type="ExternalName", externalName="api.payments.example"))
    return s


@pytest.fixture
def server(store: Store) -> Iterator[LabDns]:
    with LabDns(
        store,
        address=("127.0.0.1", 0),
        cluster_domain=ZONE,
        extra_records={"db.example.com": "127.0.0.99"},
        rewrites=[{"from": "legacy.example.com", "to": f"kafka-headless.kafka.svc.{ZONE}"}],
    ) as srv:
        yield srv


def ask(srv: LabDns, name: str, rdtype: str = "A", *, tcp: bool = False, timeout: float = 2.0) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    host, port = srv.address
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=timeout)
    return dns.query.udp(query, host, port=port, timeout=timeout)


def addresses(msg: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rr in msg.answer if rr.rdtype == dns.rdatatype.A for rd in rr)


def rcode(msg: dns.message.Message) -> str:
    return dns.rcode.to_text(msg.rcode())


def has_soa(msg: dns.message.Message) -> bool:
    return any(rr.rdtype == dns.rdatatype.SOA for rr in msg.authority)


# -- ClusterIP Services and the names a search list produces ------------------------------------


def test_cluster_ip_service_answers_its_cluster_ip(server: LabDns) -> None:
    reply = ask(server, f"content-service.nova-content.svc.{ZONE}")
    assert rcode(reply) == "NOERROR"
    assert addresses(reply) == ["127.200.128.1"]
    assert reply.flags & dns.flags.AA


def test_names_are_case_insensitive_and_echo_the_question(server: LabDns) -> None:
    reply = ask(server, f"Content-Service.NOVA-content.svc.{ZONE}")
    assert addresses(reply) == ["127.200.128.1"]
    assert reply.answer[0].name.to_text() == f"Content-Service.NOVA-content.svc.{ZONE}."


@pytest.mark.parametrize(
    "name",
    [
        f"content-service.nova-backend.svc.{ZONE}",  # the short name from nova-backend's first search domain
        f"content-service.svc.{ZONE}",
        f"content-service.{ZONE}",
        f"content-service.nowhere.svc.{ZONE}",
        f"x.content-service.nova-content.svc.{ZONE}",  # not headless, no such endpoint
        f"a.b.c.d.e.f.svc.{ZONE}",
    ],
)
def test_names_that_do_not_exist_in_the_zone_are_nxdomain_with_soa(server: LabDns, name: str) -> None:
    reply = ask(server, name)
    assert rcode(reply) == "NXDOMAIN"
    assert has_soa(reply)


@pytest.mark.parametrize("name", [ZONE, f"svc.{ZONE}", f"pod.{ZONE}", f"nova-content.svc.{ZONE}"])
def test_empty_non_terminals_are_nodata(server: LabDns, name: str) -> None:
    reply = ask(server, name)
    assert rcode(reply) == "NOERROR"
    assert reply.answer == []
    assert has_soa(reply)


def test_aaaa_for_an_existing_name_is_nodata(server: LabDns) -> None:
    reply = ask(server, f"content-service.nova-content.svc.{ZONE}", "AAAA")
    assert rcode(reply) == "NOERROR"
    assert reply.answer == []


def test_apex_soa_and_spec_version(server: LabDns) -> None:
    assert ask(server, ZONE, "SOA").answer[0].rdtype == dns.rdatatype.SOA
    txt = ask(server, f"dns-version.{ZONE}", "TXT")
    assert txt.answer[0][0].to_text() == '"1.1.0"'


# -- headless Services -------------------------------------------------------------------------


def test_headless_service_answers_ready_endpoints_only(server: LabDns) -> None:
    assert addresses(ask(server, f"kafka-headless.kafka.svc.{ZONE}")) == ["127.200.1.5"]


def test_headless_endpoint_hostnames_resolve(server: LabDns) -> None:
    assert addresses(ask(server, f"kafka-0.kafka-headless.kafka.svc.{ZONE}")) == ["127.200.1.5"]
    assert rcode(ask(server, f"kafka-1.kafka-headless.kafka.svc.{ZONE}")) == "NXDOMAIN"  # not ready


def test_endpoints_without_hostname_are_named_by_their_dashed_ip(store: Store, server: LabDns) -> None:
    store.create(endpoint_slice("kafka", "zookeeper-headless", ("127.200.1.7", None, True)))
    assert addresses(ask(server, f"127-200-1-7.zookeeper-headless.kafka.svc.{ZONE}")) == ["127.200.1.7"]
    assert rcode(ask(server, f"127-200-1-5.kafka-headless.kafka.svc.{ZONE}")) == "NXDOMAIN"  # has a hostname


def test_headless_service_without_ready_endpoints_is_nxdomain(server: LabDns) -> None:
    reply = ask(server, f"zookeeper-headless.kafka.svc.{ZONE}")
    assert rcode(reply) == "NXDOMAIN"


def test_headless_falls_back_to_endpoints_when_there_is_no_slice(store: Store, server: LabDns) -> None:
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "zookeeper-headless", "namespace": "kafka"},
            "subsets": [
                {
                    "addresses": [{"ip": "127.200.1.9", "hostname": "zookeeper-0"}],
                    "notReadyAddresses": [{"ip": "127.200.1.10"}],
                    "ports": [{"name": "tcp-zk", "port": 2181}],
                }
            ],
        }
    )
    assert addresses(ask(server, f"zookeeper-headless.kafka.svc.{ZONE}")) == ["127.200.1.9"]
    assert addresses(ask(server, f"zookeeper-0.zookeeper-headless.kafka.svc.{ZONE}")) == ["127.200.1.9"]


def test_large_headless_answer_is_truncated_over_udp_and_complete_over_tcp(store: Store, server: LabDns) -> None:
    store.create(service("kafka", "big", "None", ("tcp", 1)))
    ips = [f"127.200.2.{i}" for i in range(1, 61)]
    store.create(endpoint_slice("kafka", "big", *[(ip, None, True) for ip in ips], ports=(("tcp", 1),)))
    udp = ask(server, f"big.kafka.svc.{ZONE}")
    assert udp.flags & dns.flags.TC
    assert sorted(addresses(ask(server, f"big.kafka.svc.{ZONE}", tcp=True))) == sorted(ips)


# -- ExternalName, SRV, pods -------------------------------------------------------------------


def test_external_name_inside_the_zone_is_a_cname_chased_to_the_cluster_ip(server: LabDns) -> None:
    reply = ask(server, f"content-alias.nova-staging.svc.{ZONE}")
    kinds = [dns.rdatatype.to_text(rr.rdtype) for rr in reply.answer]
    assert kinds == ["CNAME", "A"]
    assert addresses(reply) == ["127.200.128.1"]


def test_external_name_outside_the_zone_is_a_cname_that_is_not_chased(server: LabDns) -> None:
    reply = ask(server, f"payments-api.nova-staging.svc.{ZONE}")
    assert rcode(reply) == "NOERROR"
    assert [rr.rdtype for rr in reply.answer] == [dns.rdatatype.CNAME]
    assert reply.answer[0][0].to_text() == "api.payments.example."


def test_srv_for_a_named_port_of_a_cluster_ip_service(server: LabDns) -> None:
    reply = ask(server, f"_grpc._tcp.content-service.nova-content.svc.{ZONE}", "SRV")
    assert [rd.to_text() for rd in reply.answer[0]] == [f"0 100 9090 content-service.nova-content.svc.{ZONE}."]
    assert [rd.to_text() for rr in reply.additional for rd in rr] == ["127.200.128.1"]
    assert rcode(ask(server, f"_nope._tcp.content-service.nova-content.svc.{ZONE}", "SRV")) == "NXDOMAIN"


def test_srv_of_a_headless_service_names_each_endpoint(server: LabDns) -> None:
    reply = ask(server, f"_tcp-kafka._tcp.kafka-headless.kafka.svc.{ZONE}", "SRV")
    assert [rd.to_text() for rd in reply.answer[0]] == [f"0 100 9092 kafka-0.kafka-headless.kafka.svc.{ZONE}."]


def test_pod_records_answer_loopback_addresses_in_existing_namespaces(server: LabDns) -> None:
    assert addresses(ask(server, f"127-200-1-5.kafka.pod.{ZONE}")) == ["127.200.1.5"]
    assert rcode(ask(server, f"10-0-0-1.kafka.pod.{ZONE}")) == "NXDOMAIN"  # nothing outside 127/8
    assert rcode(ask(server, f"127-200-1-5.nowhere.pod.{ZONE}")) == "NXDOMAIN"


# -- outside the zone ----------------------------------------------------------------------------


def test_names_outside_the_zone_are_nxdomain_and_never_forwarded(server: LabDns) -> None:
    reply = ask(server, "example.com")
    assert rcode(reply) == "NXDOMAIN"
    assert not reply.flags & dns.flags.AA


def test_scenario_records_answer_names_outside_the_zone(server: LabDns) -> None:
    assert addresses(ask(server, "db.example.com")) == ["127.0.0.99"]


def test_scenario_records_outside_loopback_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="127.0.0.0/8"):
        LabDns(store, address=("127.0.0.1", 0), extra_records={"db.example.com": "10.1.2.3"})


def test_rewrite_answers_one_name_with_anothers_records(server: LabDns) -> None:
    reply = ask(server, "legacy.example.com")
    assert addresses(reply) == ["127.200.1.5"]
    assert reply.answer[0].name.to_text() == "legacy.example.com."


# -- following the Store ------------------------------------------------------------------------


def test_a_new_service_resolves_within_a_second_and_a_deleted_one_stops(store: Store, server: LabDns) -> None:
    name = f"feed-service.nova-backend.svc.{ZONE}"
    assert rcode(ask(server, name)) == "NXDOMAIN"
    store.create(service("nova-backend", "feed-service", "127.200.128.7", ("http", 8089)))
    assert _eventually(lambda: addresses(ask(server, name)) == ["127.200.128.7"])
    store.delete("Service", "nova-backend", "feed-service")
    assert _eventually(lambda: rcode(ask(server, name)) == "NXDOMAIN")


def test_an_endpoint_turning_ready_shows_up(store: Store, server: LabDns) -> None:
    def ready_all(obj: dict[str, Any]) -> None:
        for ep in obj["endpoints"]:
            ep["conditions"]["ready"] = True

    store.mutate("EndpointSlice", "kafka", "kafka-headless-abcde", ready_all)
    assert _eventually(
        lambda: addresses(ask(server, f"kafka-headless.kafka.svc.{ZONE}")) == ["127.200.1.5", "127.200.1.6"]
    )


def test_a_namespace_created_later_is_served(store: Store, server: LabDns) -> None:
    store.create(namespace("nova-prod"))
    store.create(service("nova-prod", "content-service", "127.200.128.9", ("http", 9081)))
    assert addresses(ask(server, f"content-service.nova-prod.svc.{ZONE}")) == ["127.200.128.9"]


def _eventually(check: Any, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


# -- wire protocol, faults, metrics --------------------------------------------------------------


def test_tcp_answers_like_udp(server: LabDns) -> None:
    assert addresses(ask(server, f"content-service.nova-content.svc.{ZONE}", tcp=True)) == ["127.200.128.1"]


def test_garbage_gets_formerr_and_other_opcodes_notimp(server: LabDns) -> None:
    bad = server.handle(b"\x12\x34" + b"\x00" * 10 + b"\xff\xff", transport="udp")
    assert bad is not None and dns.rcode.from_flags(bad[3], 0) == dns.rcode.FORMERR
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = dns.message.from_wire(server.handle(notify.to_wire()) or b"")
    assert reply.rcode() == dns.rcode.NOTIMP


def test_servfail_fault(server: LabDns) -> None:
    server.set_faults(servfail=True)
    assert rcode(ask(server, f"content-service.nova-content.svc.{ZONE}")) == "SERVFAIL"
    server.clear_faults()
    assert rcode(ask(server, f"content-service.nova-content.svc.{ZONE}")) == "NOERROR"


def test_truncate_udp_fault_sends_clients_to_tcp(server: LabDns) -> None:
    server.set_faults(truncate_udp=True)
    name = f"content-service.nova-content.svc.{ZONE}"
    udp = ask(server, name)
    assert udp.flags & dns.flags.TC and udp.answer == []
    assert addresses(ask(server, name, tcp=True)) == ["127.200.128.1"]


def test_drop_udp_fault_leaves_udp_unanswered_but_tcp_works(server: LabDns) -> None:
    server.set_faults(drop_udp=True)
    name = f"content-service.nova-content.svc.{ZONE}"
    with pytest.raises(dns.exception.Timeout):
        ask(server, name, timeout=0.3)
    assert addresses(ask(server, name, tcp=True)) == ["127.200.128.1"]


def test_delay_fault_delays_answers(server: LabDns) -> None:
    server.set_faults(delay_ms=200)
    began = time.monotonic()
    ask(server, f"content-service.nova-content.svc.{ZONE}")
    assert time.monotonic() - began >= 0.19


def test_queries_are_counted(server: LabDns) -> None:
    ask(server, f"content-service.nova-content.svc.{ZONE}")
    ask(server, "nothing.example.com", tcp=True)
    counts = server.metrics()
    assert counts["queries"] == 2 and counts["udp"] == 1 and counts["tcp"] == 1
    assert counts["NOERROR"] == 1 and counts["NXDOMAIN"] == 1


def test_a_repeated_question_is_answered_again_with_its_own_id_and_counted(server: LabDns) -> None:
    name = f"content-service.nova-content.svc.{ZONE}"
    first = dns.message.make_query(name, "A")
    again = dns.message.make_query(name, "A")
    again.id = (first.id + 1) % 65536
    replies = [dns.message.from_wire(server.handle(q.to_wire()) or b"") for q in (first, again)]
    assert [r.id for r in replies] == [first.id, again.id]
    assert [addresses(r) for r in replies] == [["127.200.128.1"], ["127.200.128.1"]]
    assert server.metrics()["NOERROR"] == 2


def test_a_remembered_answer_follows_a_changed_cluster_ip(store: Store, server: LabDns) -> None:
    name = f"content-service.nova-content.svc.{ZONE}"
    assert addresses(ask(server, name)) == ["127.200.128.1"]

    def move(obj: dict[str, Any]) -> None:
        obj["spec"]["clusterIP"] = obj["spec"]["clusterIPs"][0] = "127.200.128.99"

    store.mutate("Service", "nova-content", "content-service", move)
    assert _eventually(lambda: addresses(ask(server, name)) == ["127.200.128.99"])


def test_stop_closes_the_sockets(store: Store) -> None:
    srv = LabDns(store, address=("127.0.0.1", 0))
    srv.start()
    host, port = srv.address
    srv.stop()
    again = LabDns(store, address=(host, port))
    again.start()  # the port is free again
    again.stop()


# -- scale ----------------------------------------------------------------------------------------


def test_twenty_thousand_services_all_answer_and_follow_changes() -> None:
    store = Store()
    for i in range(200):
        store.create(namespace(f"gen-{i:04d}"))
    for n in range(20_000):
        ns = f"gen-{n % 200:04d}"
        store.create(service(ns, f"svc-{n}", f"127.201.{128 + n // 254 % 128}.{1 + n % 254}", ("http", 80)))
    with LabDns(store, address=("127.0.0.1", 0)) as srv:
        for n in range(0, 20_000, 100):
            assert rcode(ask(srv, f"svc-{n}.gen-{n % 200:04d}.svc.{ZONE}")) == "NOERROR"
        store.create(service("gen-0000", "late", "127.201.1.1", ("http", 80)))
        assert addresses(ask(srv, f"late.gen-0000.svc.{ZONE}")) == ["127.201.1.1"]


# -- glibc's own resolver walking the search list (root only) -------------------------------------


@pytest.fixture
def port53_server(store: Store, tmp_path: Path) -> Iterator[LabDns]:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("getent") is None:
        pytest.skip("needs root, unshare and getent")
    for block in range(250, 200, -1):
        lease = BlockLease(block)
        if not lease.acquire():
            continue
        srv = LabDns(store, address=(f"127.{block}.0.10", 53), cluster_domain=ZONE)
        try:
            srv.start()
        except OSError:
            lease.release()
            continue
        try:
            yield srv
        finally:
            srv.stop()
            lease.release()
        return
    pytest.fail("no free address block among 127.201-250.0.0/16 for a DNS server on port 53", pytrace=False)


def getent_in_pod(resolv_conf: Path, name: str) -> subprocess.CompletedProcess[str]:
    script = f'mount --bind "{resolv_conf}" /etc/resolv.conf && exec getent ahosts "{name}"'
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=20, check=False
    )


def test_glibc_walks_the_search_list_against_the_lab_dns(port53_server: LabDns, tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        f"nameserver {port53_server.address[0]}\n"
        f"search nova-backend.svc.{ZONE} svc.{ZONE} {ZONE}\n"
        "options ndots:5 timeout:1 attempts:1\n"
    )
    short = getent_in_pod(resolv, "content-service")
    assert short.returncode == 2, short  # not found: the short name only searches nova-backend
    qualified = getent_in_pod(resolv, "content-service.nova-content")
    assert qualified.returncode == 0, qualified
    assert qualified.stdout.split()[0] == "127.200.128.1"
    full = getent_in_pod(resolv, f"content-service.nova-content.svc.{ZONE}")
    assert full.stdout.split()[0] == "127.200.128.1"
    assert port53_server.metrics()["NXDOMAIN"] >= 4  # every search-list candidate was asked


@pytest.mark.skipif(os.geteuid() != 0, reason="without root the buffer is capped by net.core.rmem_max")
def test_the_udp_socket_queues_bursts_of_queries(server: LabDns) -> None:
    """Hundreds of probe resolvers ask at once; the kernel's ~200 KB default dropped their queries."""
    udp = server._udp
    assert udp is not None
    assert udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 4 << 20
