"""Addresses of one lab, all inside 127.0.0.0/8.

Linux routes the whole of 127.0.0.0/8 to the loopback interface, so a lab can
give every pod and every Service its own address without touching any real
network: traffic between lab pods never leaves the machine. Each lab owns one
``127.N.0.0/16`` block (N picked so that two labs on one machine do not
collide):

- ``127.N.0.1``     the API server (and anything node-like)
- ``127.N.0.10``    the cluster DNS server (port 53 when running as root)
- ``127.N.1.0`` – ``127.N.127.255``   pod IPs
- ``127.N.128.0`` – ``127.N.255.255`` Service ClusterIPs, the first of them
  (``127.N.128.1``) kept for the ``default/kubernetes`` Service, as a cluster
  keeps the first address of its Service range

Allocation is sequential and thread-safe; addresses are never reused within a
lab's lifetime, which keeps stale DNS answers from pointing at a new owner.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

POD_RANGE = (1, 127)
SERVICE_RANGE = (128, 255)


class AddressExhausted(RuntimeError):
    """No free address is left in a range."""


@dataclass
class LabNetwork:
    """The address plan of one lab, ``127.<block>.0.0/16``."""

    block: int
    _next_pod: int = field(default=0, init=False)
    _next_service: int = field(default=1, init=False)  # index 0 is the kubernetes Service's
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.block <= 254:
            raise ValueError(f"lab network block must be 1..254, got {self.block}")

    @property
    def cidr(self) -> str:
        return f"127.{self.block}.0.0/16"

    @property
    def api_ip(self) -> str:
        return f"127.{self.block}.0.1"

    @property
    def dns_ip(self) -> str:
        return f"127.{self.block}.0.10"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the Service range: the ``default/kubernetes`` Service's ClusterIP."""
        return self._address(SERVICE_RANGE, 0)

    def allocate_pod_ip(self) -> str:
        with self._lock:
            ip = self._address(POD_RANGE, self._next_pod)
            self._next_pod += 1
            return ip

    def allocate_service_ip(self) -> str:
        with self._lock:
            ip = self._address(SERVICE_RANGE, self._next_service)
            self._next_service += 1
            return ip

    def contains(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.cidr)
        except ValueError:
            return False

    def _address(self, octet_range: tuple[int, int], index: int) -> str:
        first, last = octet_range
        third = first + index // 254
        fourth = 1 + index % 254
        if third > last:
            raise AddressExhausted(f"no free address left in 127.{self.block}.{first}-{last}.x")
        return f"127.{self.block}.{third}.{fourth}"
