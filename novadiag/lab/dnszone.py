"""The cluster zone the lab DNS serves: what a name means, as CoreDNS would answer it.

Why apart from the server: this is the *meaning* of a name (which Service, which
endpoints, NXDOMAIN or NODATA); :mod:`.dns` is the wire (sockets, truncation,
faults) and :mod:`.dnsindex` keeps the Store's objects at hand. Each is tested
on its own.

The rules follow the Kubernetes DNS specification as CoreDNS's ``kubernetes``
plugin implements it (``parse.go``/``kubernetes.go``), because that is what a
pod in a real cluster talks to:

- ``<svc>.<ns>.svc.<zone>``: the ClusterIP(s); a headless Service gives one A per
  *ready* endpoint and NXDOMAIN when none is ready; ExternalName gives a CNAME,
  chased only inside the zone (or into the scenario's records).
- ``<endpoint>.<svc>.<ns>.svc.<zone>``: the endpoint whose hostname (or dashed
  IP) is ``<endpoint>``; CoreDNS answers this for any Service with endpoints,
  not only headless ones, and so do we.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for named ports (a bare
  ``<svc>.<ns>.svc`` SRV query lists every port, as CoreDNS does).
- ``a-b-c-d.<ns>.pod.<zone>``: that IP when the namespace exists (CoreDNS's
  ``pods insecure``, the kubeadm default), restricted to 127.0.0.0/8.
- the apex, ``svc.<zone>``, ``pod.<zone>`` and an existing ``<ns>.svc.<zone>``
  are empty non-terminals (NOERROR, no answer); anything else in the zone is
  NXDOMAIN, always with the SOA in the authority section.
- outside the zone: the scenario's ``dns.records`` (the lab's stand-in for the
  internet, loopback addresses only), otherwise NXDOMAIN. Nothing is forwarded.
- ``rewrites`` answer one name with another's records, renamed back to the
  question (CoreDNS ``rewrite name ... answer auto``): a scenario's way to make
  reality disagree with the static model.

No address outside 127.0.0.0/8 is ever answered, whatever the objects say.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from novadiag.lab.dnsindex import NO_PORT, PortSpec, ZoneIndex

TTL = 5
"""CoreDNS's default TTL for cluster records (and our negative-cache TTL)."""

SPEC_VERSION = "1.1.0"
"""Answered for ``dns-version.<zone>`` TXT, as the specification requires."""

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
MAX_CNAME_CHAIN = 8

A = dns.rdatatype.A


@dataclass(frozen=True)
class Answer:
    """A resolution result, before it becomes a wire message."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    authoritative: bool = False


@dataclass(frozen=True)
class _Hit:
    """One record CoreDNS's ``findServices`` would return."""

    host: str  # an IPv4 address, or a domain name (ExternalName)
    port: int
    owner: tuple[str, ...]  # labels under the zone, e.g. ("kafka-0", "kafka", "kafka", "svc")


# -- resolution ----------------------------------------------------------------------------


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def _port_matches(port: str, protocol: str, spec: PortSpec) -> bool:
    return (not port or port == spec.name) and (not protocol or protocol == spec.protocol)


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in LOOPBACK
    except ValueError:
        return False


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def to_name(text: str) -> dns.name.Name:
    """An absolute name from text with or without the trailing dot."""
    return dns.name.from_text(text.rstrip(".") + ".")


class Zone:
    """Answers a (name, type) question from a :class:`ZoneIndex`, CoreDNS-style."""

    def __init__(
        self,
        index: ZoneIndex,
        *,
        cluster_domain: str,
        extra_records: Mapping[str, str] | None = None,
        rewrites: Iterable[tuple[str, str]] = (),
        nameserver_ip: str | None = None,
    ) -> None:
        self.index = index
        self.origin = to_name(cluster_domain)
        self.extra: dict[dns.name.Name, str] = {}
        for name, ip in (extra_records or {}).items():
            if not _loopback(ip):
                raise ValueError(f"dns record {name} -> {ip}: the lab only answers 127.0.0.0/8")
            self.extra[to_name(name)] = ip
        self.rewrites = {to_name(src): to_name(dst) for src, dst in rewrites}
        self.nameserver = to_name(f"ns.dns.{cluster_domain}")
        self.nameserver_ip = nameserver_ip

    # -- entry point ---------------------------------------------------------------------
    def resolve(self, qname: dns.name.Name, qtype: int) -> Answer:
        target = self.rewrites.get(qname)
        if target is None:
            return self._lookup(qname, qtype, depth=0)
        found = self._lookup(target, qtype, depth=0)
        renamed = tuple(_renamed(rr, target, qname) for rr in found.answer)
        return Answer(found.rcode, renamed, found.authority, found.additional, found.authoritative)

    def _lookup(self, name: dns.name.Name, qtype: int, depth: int) -> Answer:
        if name in self.extra:
            return self._extra_answer(name, qtype)
        if not name.is_subdomain(self.origin):
            return Answer(dns.rcode.NXDOMAIN)
        relative = name.relativize(self.origin).labels
        labels = [label.decode("ascii", "replace").lower() for label in relative]
        special = self._special(name, labels, qtype)
        if special is not None:
            return special
        hits = self._hits(labels)
        if hits is None:
            return self._negative(dns.rcode.NXDOMAIN)
        return self._positive(name, qtype, hits, depth)

    # -- names outside the cluster records -----------------------------------------------
    def _extra_answer(self, name: dns.name.Name, qtype: int) -> Answer:
        if qtype not in (A, dns.rdatatype.ANY):
            return Answer(dns.rcode.NOERROR)
        return Answer(dns.rcode.NOERROR, (_a_rrset(name, [self.extra[name]]),))

    def _special(self, name: dns.name.Name, labels: list[str], qtype: int) -> Answer | None:
        """The apex (SOA, NS), the nameserver's own name and ``dns-version``."""
        if not labels:
            if qtype == dns.rdatatype.SOA:
                return Answer(dns.rcode.NOERROR, (self.soa(),), authoritative=True)
            if qtype == dns.rdatatype.NS:
                rr = _rrset(name, "NS", [self.nameserver.to_text()])
                glue = (_a_rrset(self.nameserver, [self.nameserver_ip]),) if self.nameserver_ip else ()
                return Answer(dns.rcode.NOERROR, (rr,), (), glue, authoritative=True)
            return self._negative(dns.rcode.NOERROR)
        if labels == ["ns", "dns"] and self.nameserver_ip:
            if qtype != A:
                return self._negative(dns.rcode.NOERROR)
            return Answer(dns.rcode.NOERROR, (_a_rrset(name, [self.nameserver_ip]),), authoritative=True)
        if labels == ["dns-version"]:
            if qtype != dns.rdatatype.TXT:
                return self._negative(dns.rcode.NOERROR)
            rr = _rrset(name, "TXT", [f'"{SPEC_VERSION}"'])
            return Answer(dns.rcode.NOERROR, (rr,), authoritative=True)
        return None

    # -- CoreDNS's parseRequest + findServices/findPods ------------------------------------
    def _hits(self, labels: list[str]) -> list[_Hit] | None:
        """Records for a name under the zone: None is NXDOMAIN, [] is NODATA."""
        if labels in (["svc"], ["pod"]):
            return []
        kind = labels[-1]
        if kind not in ("svc", "pod") or len(labels) > 5:
            return None
        ns = labels[-2]
        if not self.index.namespace_exists(ns):
            return None
        rest = labels[:-2]
        if not rest:
            return []
        if kind == "pod":
            return self._pod_hits(rest, ns)
        if len(rest) == 1:
            return self._service_hits(ns, rest[0], "", "", "")
        if len(rest) == 2:
            return self._service_hits(ns, rest[1], rest[0], "", "")
        return self._service_hits(ns, rest[2], "", _strip_underscore(rest[0]), _strip_underscore(rest[1]))

    def _pod_hits(self, rest: list[str], ns: str) -> list[_Hit] | None:
        label = rest[-1]
        if label.count("-") != 3 or "--" in label:
            return None  # IPv6 pod names: the lab has no IPv6
        ip = label.replace("-", ".")
        if not _loopback(ip):
            return None
        return [_Hit(ip, -1, (label, ns, "pod"))]

    def _service_hits(self, ns: str, name: str, endpoint: str, port: str, protocol: str) -> list[_Hit] | None:
        svc = self.index.service(ns, name)
        if svc is None:
            return None
        owner = (name, ns, "svc")
        if svc.external_name is not None:
            if endpoint or _is_ipv4(svc.external_name):
                return None
            return [_Hit(svc.external_name, 0, owner)]
        if svc.headless or endpoint:
            hits = [
                _Hit(ep.ip, p.port, (ep.label, *owner))
                for group in self.index.endpoint_groups(ns, name)
                for ep in group.endpoints
                if not endpoint or ep.label == endpoint
                for p in group.ports or (NO_PORT,)
                if _port_matches(port, protocol, p)
            ]
            return hits or None
        ports = [p for p in svc.ports if _port_matches(port, protocol, p)]
        if not ports:
            return None
        return [_Hit(ip, p.port, owner) for p in ports for ip in svc.cluster_ips]

    # -- building answers -----------------------------------------------------------------
    def _positive(self, name: dns.name.Name, qtype: int, hits: list[_Hit], depth: int) -> Answer:
        aliases = [h for h in hits if not _is_ipv4(h.host)]
        if aliases and qtype != dns.rdatatype.SRV:
            return self._cname(name, qtype, to_name(aliases[0].host), depth)
        if qtype in (A, dns.rdatatype.ANY):
            ips = _unique(h.host for h in hits if _loopback(h.host))
            if ips:
                return Answer(dns.rcode.NOERROR, (_a_rrset(name, ips),), authoritative=True)
        elif qtype == dns.rdatatype.SRV:
            srv = self._srv(name, hits)
            if srv is not None:
                return srv
        return self._negative(dns.rcode.NOERROR)

    def _cname(self, name: dns.name.Name, qtype: int, target: dns.name.Name, depth: int) -> Answer:
        rr = _rrset(name, "CNAME", [target.to_text()])
        if qtype == dns.rdatatype.CNAME or depth >= MAX_CNAME_CHAIN:
            return Answer(dns.rcode.NOERROR, (rr,), authoritative=True)
        if target not in self.extra and not target.is_subdomain(self.origin):
            return Answer(dns.rcode.NOERROR, (rr,), authoritative=True)  # never chased outside
        chased = self._lookup(target, qtype, depth + 1)
        return Answer(chased.rcode, (rr, *chased.answer), chased.authority, chased.additional, True)

    def _srv(self, name: dns.name.Name, hits: list[_Hit]) -> Answer | None:
        usable = [h for h in hits if h.port >= 0 and (_loopback(h.host) or not _is_ipv4(h.host))]
        if not usable:
            return None
        weight = max(1, 100 // len(usable))
        records = []
        extra: dict[dns.name.Name, list[str]] = {}
        for hit in usable:
            if _is_ipv4(hit.host):
                target = dns.name.Name([label.encode() for label in hit.owner]).concatenate(self.origin)
                extra.setdefault(target, []).append(hit.host)
            else:
                target = to_name(hit.host)
            records.append(f"0 {weight} {hit.port} {target.to_text()}")
        rr = _rrset(name, "SRV", _unique(records))
        glue = tuple(_a_rrset(target, _unique(ips)) for target, ips in extra.items())
        return Answer(dns.rcode.NOERROR, (rr,), (), glue, authoritative=True)

    def _negative(self, rcode: dns.rcode.Rcode) -> Answer:
        return Answer(rcode, (), (self.soa(),), (), authoritative=True)

    def soa(self) -> dns.rrset.RRset:
        rname = dns.name.Name((b"hostmaster",)).concatenate(self.origin)
        serial = self.index.serial & 0xFFFFFFFF
        text = f"{self.nameserver} {rname} {serial} 7200 1800 86400 {TTL}"
        return _rrset(self.origin, "SOA", [text])


def _rrset(name: dns.name.Name, rdtype: str, texts: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, TTL, "IN", rdtype, texts)


def _a_rrset(name: dns.name.Name, ips: Iterable[str | None]) -> dns.rrset.RRset:
    return _rrset(name, "A", [ip for ip in ips if ip])


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _renamed(rr: dns.rrset.RRset, old: dns.name.Name, new: dns.name.Name) -> dns.rrset.RRset:
    if rr.name != old:
        return rr
    copy = dns.rrset.RRset(new, rr.rdclass, rr.rdtype)
    for rdata in rr:
        copy.add(rdata, rr.ttl)
    return copy
