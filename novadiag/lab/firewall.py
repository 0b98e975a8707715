"""The lab's NetworkPolicy enforcement: one nftables table of denied (source, destination, ports).

A CNI plugin turns NetworkPolicies into packet filters on the node; the lab does the
same on the machine's loopback, where every pod has its own ``127.N.x.y`` address.
Whenever Pods, Namespaces, NetworkPolicies, Services or EndpointSlices change, the
controller asks :mod:`.netpolicy` what each running pod may open on each other one,
and replaces the elements of the sets in one table, ``novadiag_lab_<block>``, in one
``nft -f -`` transaction (never a moment without rules). Two rules drop the first
packet of a TCP connection whose ``ip saddr . ip daddr`` (denied on every port) or
``ip saddr . ip daddr . tcp dport`` (denied on some) is in a set, so the client sees
a connect timeout, as behind a real policy drop.

What the set holds:

- pod → pod: the complement of the allowed port ranges, for every ordered pair of
  distinct pods where something is denied;
- pod → ClusterIP:port: denied when every ready backend of that Service port denies
  its ``targetPort`` (in a cluster kube-proxy translates to one backend before the
  policy is checked; with backends that differ, some connections pass here too).

Limits: only TCP is filtered (UDP and SCTP pass); only connections that leave from
the pod's own address are matched, which probe pods do (``POD_IP``) and the lab's
own workload programs do not; the cluster DNS (``127.N.0.10``) and the API server
are not pods and are never filtered, so a policy that forgets DNS egress is caught
by the audit, not by the lab. Without ``nft`` or root the lab runs without
enforcement and its log says why, once. Each update costs (pods × isolated pods)
policy decisions, and one runs before every pod starts: fine for scenarios of tens
of pods, too slow for thousands, which keep ``network_policies: store``.

A table outlives a daemon killed outright; :func:`remove_stale_tables` removes the
tables of labs whose block is no longer held, and the daemon's death watch removes
its own (the table name is written to the state dir).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from novadiag.lab.netpolicy import ALL_PORTS, LabPod, PolicyEngine, complement, contains, lab_pod
from novadiag.lab.network import LabNetwork
from novadiag.lab.proxy import proxy_table
from novadiag.lab.store import Event, NotFound, Obj, Store

log = logging.getLogger("novadiag.lab.firewall")

TABLE_PREFIX = "novadiag_lab_"
TABLE_FILE = "nftables-table"
WATCHED_KINDS = frozenset({"Pod", "Namespace", "NetworkPolicy", "Service", "EndpointSlice"})
SETTLE_SECONDS = 0.05
"""A burst of store events (a Deployment's pods, a namespace's policies) becomes one update."""
NFT_TIMEOUT = 10.0

Entry = tuple[str, str, int, int]
"""(source IP, destination IP, first port, last port): TCP connections the lab drops."""


# -- what to deny ------------------------------------------------------------------------------


def denied_entries(store: Store, starting: Iterable[LabPod] = ()) -> frozenset[Entry]:
    """Every (source, destination, port range) the store's NetworkPolicies deny.

    ``starting``: pods whose containers are about to start, not yet Running in the store.
    """
    policies, _ = store.list("NetworkPolicy")
    if not policies:
        return frozenset()
    namespaces, _ = store.list("Namespace")
    engine = PolicyEngine(policies, namespaces)
    pods = [p for p in (lab_pod(raw) for raw in store.list("Pod")[0]) if p is not None]
    running = {pod.ip for pod in pods}
    pods += [pod for pod in starting if pod.ip not in running]
    entries = set(_pod_entries(engine, pods))
    entries.update(_service_entries(engine, pods, store))
    return frozenset(entries)


def _pod_entries(engine: PolicyEngine, pods: list[LabPod]) -> Iterable[Entry]:
    """Only pairs with an egress-isolated source or an ingress-isolated destination can be denied."""
    egress = [pod for pod in pods if engine.isolated(pod, "Egress")]
    ingress = [pod for pod in pods if engine.isolated(pod, "Ingress")]
    pairs = {(s.ip, d.ip): (s, d) for s in egress for d in pods}
    pairs.update({(s.ip, d.ip): (s, d) for s in pods for d in ingress})
    for source, destination in pairs.values():
        for first, last in complement(engine.allowed_ports(source, destination)):
            yield (source.ip, destination.ip, first, last)


def _service_entries(engine: PolicyEngine, pods: list[LabPod], store: Store) -> Iterable[Entry]:
    by_ip = {pod.ip: pod for pod in pods}
    egress_isolated = [pod for pod in pods if engine.isolated(pod, "Egress")]
    for (cluster_ip, port), backends in proxy_table(store).items():
        targets = [(by_ip[ip], target_port) for ip, target_port in backends if ip in by_ip]
        if len(targets) < len(backends):
            continue  # a backend that is not a running pod (the API server): never filtered
        backend_isolated = any(engine.isolated(pod, "Ingress") for pod, _ in targets)
        for source in pods if backend_isolated else egress_isolated:
            if all(not contains(engine.allowed_ports(source, pod), target_port) for pod, target_port in targets):
                yield (source.ip, cluster_ip, port, port)


# -- nftables ------------------------------------------------------------------------------


def table_name(block: int) -> str:
    return f"{TABLE_PREFIX}{block}"


def nft_script(table: str, entries: Iterable[Entry]) -> str:
    """One transaction: declare the table, empty it, put back the rules and the elements.

    Pairs denied on every port go to a plain hash set of ``saddr . daddr``; the rest to
    an interval set of ``saddr . daddr . dport`` ranges. nft loads a thousand interval
    elements in about a second and a thousand hash elements in milliseconds, and a
    default deny makes nearly every denied pair an all-ports one.
    """
    entries = [_checked(entry) for entry in entries]
    pairs = sorted((src, dst) for src, dst, first, last in entries if (first, last) == ALL_PORTS[0])
    ranges = sorted(e for e in entries if (e[2], e[3]) != ALL_PORTS[0])
    lines = [
        f"table ip {table} {{",
        "  set denied_pairs { type ipv4_addr . ipv4_addr; }",
        "  set denied_ports { type ipv4_addr . ipv4_addr . inet_service; flags interval; }",
        "  chain output { type filter hook output priority filter; policy accept; }",
        "}",
        f"flush chain ip {table} output",
        f"flush set ip {table} denied_pairs",  # `flush table` would keep the sets' elements
        f"flush set ip {table} denied_ports",
        f"add rule ip {table} output ct state new meta l4proto tcp ip saddr . ip daddr @denied_pairs drop",
        f"add rule ip {table} output ct state new ip saddr . ip daddr . tcp dport @denied_ports drop",
    ]
    if pairs:
        lines.append(f"add element ip {table} denied_pairs {{ " + ", ".join(f"{s} . {d}" for s, d in pairs) + " }")
    if ranges:
        elements = (f"{src} . {dst} . {first if first == last else f'{first}-{last}'}"
                    for src, dst, first, last in ranges)
        lines.append(f"add element ip {table} denied_ports {{ " + ", ".join(elements) + " }")
    return "\n".join(lines) + "\n"


def _checked(entry: Entry) -> Entry:
    """The entry, once its addresses are IPv4 literals and its ports numbers (ValueError if not).

    Pod IPs and ClusterIPs come from objects API clients write; the script runs as root,
    so nothing but an address or a number may reach it.
    """
    src, dst, first, last = entry
    return (str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst)), int(first), int(last))


def in_lab(entries: Iterable[Entry], network: LabNetwork) -> frozenset[Entry]:
    """The entries whose both addresses are the lab's own (a status or spec may claim any)."""
    return frozenset(e for e in entries if network.contains(e[0]) and network.contains(e[1]))


def run_nft(script: str) -> str | None:
    """Run an nft script; None when it worked, else why not (one line)."""
    if shutil.which("nft") is None:
        return "nft (nftables) is not installed"
    try:
        done = subprocess.run(["nft", "-f", "-"], input=script.encode(), capture_output=True,
                              timeout=NFT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nft failed: {exc}"
    if done.returncode != 0:
        first_line = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0]
        return f"nft failed: {first_line}"
    return None


def delete_table(table: str) -> str | None:
    """Delete one table when it exists; None when it is gone, else why not."""
    if table not in list_tables():
        return None
    return run_nft(f"delete table ip {table}\n")


def list_tables() -> list[str]:
    """The ``ip`` family's table names (empty when nft cannot be asked)."""
    if shutil.which("nft") is None:
        return []
    try:
        done = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, timeout=NFT_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return re.findall(r"^table ip (\S+)$", done.stdout.decode(errors="replace"), re.MULTILINE)


def remove_stale_tables(block_in_use: Callable[[int], bool]) -> list[str]:
    """Delete the tables of labs that are gone (their block is free); the names deleted."""
    removed = []
    for table in list_tables():
        match = re.fullmatch(rf"{TABLE_PREFIX}(\d+)", table)
        if match and not block_in_use(int(match.group(1))) and run_nft(f"delete table ip {table}\n") is None:
            removed.append(table)
    return removed


def remove_recorded_table(state_dir: Path) -> None:
    """Delete the table a lab's daemon recorded in its state dir (the death watch's part)."""
    try:
        table = (state_dir / TABLE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return
    if re.fullmatch(rf"{TABLE_PREFIX}\d+", table):
        delete_table(table)
    (state_dir / TABLE_FILE).unlink(missing_ok=True)


# -- the controller ------------------------------------------------------------------------


class PolicyFirewall:
    """Keeps the lab's nftables table equal to what the store's NetworkPolicies deny."""

    def __init__(self, store: Store, *, block: int, state_dir: Path) -> None:
        self.store = store
        self.table = table_name(block)
        self.network = LabNetwork(block)
        self.state_dir = state_dir
        self.problem: str | None = None
        """Why policies are not enforced; None while they are."""
        self._applied: frozenset[Entry] | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lab-firewall", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None
        self._synced = threading.Condition()
        self._synced_version = -1
        self._lock = threading.RLock()
        self._starting: dict[tuple[str, str], LabPod] = {}

    def _forget_started(self) -> None:
        """Drop starting pods the store now shows running, finished or gone."""
        for key in list(self._starting):
            try:
                phase = (self.store.get("Pod", key[0], key[1]).get("status") or {}).get("phase")
            except NotFound:
                phase = "gone"
            if phase not in (None, "Pending"):
                del self._starting[key]

    @property
    def enforcing(self) -> bool:
        return self.problem is None

    def start(self) -> None:
        """Program the current state once (so start-up knows whether it works), then follow the store."""
        (self.state_dir / TABLE_FILE).write_text(self.table + "\n", encoding="utf-8")
        self._sync()
        if self.problem is not None:
            log.warning("NetworkPolicies are not enforced: %s", self.problem)
            (self.state_dir / TABLE_FILE).unlink(missing_ok=True)
            return
        log.info("NetworkPolicies enforced with nftables table ip %s", self.table)
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread.is_alive():
            self._thread.join(timeout=NFT_TIMEOUT)
        if self._applied is not None:  # a table was made, even if a later update failed
            problem = delete_table(self.table)
            if problem:
                log.warning("could not remove nftables table %s: %s", self.table, problem)
        (self.state_dir / TABLE_FILE).unlink(missing_ok=True)

    def wait_synced(self, timeout: float) -> bool:
        """True once the table reflects the store as it is now (for tests and start-up)."""
        version = self.store.resource_version
        self._wake.set()
        with self._synced:
            return self._synced.wait_for(lambda: self._synced_version >= version, timeout)

    def pod_starting(self, pod: Obj) -> None:
        """The network plugin's "add": program a new pod's rules before its containers start.

        The kubelet calls this with the pod and the IP it just gave it, before any
        container runs, as a real kubelet sets up the pod's network (CNI ADD) before
        starting containers: without it a probe would connect in the moment between its
        start and the next update, unfiltered.
        """
        status = {**(pod.get("status") or {}), "phase": "Running"}
        starting = lab_pod({**pod, "status": status})
        if starting is None or not self.enforcing:
            return
        with self._lock:
            self._starting[(starting.namespace, starting.name)] = starting
        self._sync()

    def _on_event(self, event: Event) -> None:
        if event.kind in WATCHED_KINDS:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            if self._stopping:
                return
            time.sleep(SETTLE_SECONDS)  # let a burst of events arrive
            self._wake.clear()
            try:
                self._sync()
            except Exception:  # the controller must survive any one bad object
                log.exception("NetworkPolicy firewall update failed")

    def _sync(self) -> None:
        with self._lock:  # the controller thread and the kubelet's pod_starting both sync
            version = self.store.resource_version
            self._forget_started()
            entries = in_lab(denied_entries(self.store, self._starting.values()), self.network)
            if entries != self._applied:
                self.problem = run_nft(nft_script(self.table, entries))
                if self.problem is None:
                    self._applied = entries
                elif self._applied is not None:  # a first failure is start()'s to report
                    log.warning("nftables update failed: %s", self.problem)
        with self._synced:
            self._synced_version = max(self._synced_version, version)
            self._synced.notify_all()
