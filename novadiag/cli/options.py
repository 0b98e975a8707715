"""Argument types for the command line: a bad number is refused by argparse, before any work.

``--probe-timeout -1`` used to run the whole audit and then report that no probe
pod finished within -1 s; ``--probe-concurrency 0`` was silently taken as 8.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from typing import Any, NoReturn

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def cluster_domain(text: str) -> str:
    """A DNS zone like ``cluster.local``: every verdict is judged against it, so ``..`` must not pass."""
    domain = text.strip().rstrip(".").lower()
    labels = domain.split(".")
    if not domain or len(domain) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise argparse.ArgumentTypeError(f"not a DNS domain like cluster.local: {text!r}")
    return domain


def cluster_dns(text: str) -> str:
    """An IP address like ``10.96.0.10``: compared with ``dnsConfig.nameservers``, so a name will not do."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address like 10.96.0.10: {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_source_options(p: argparse.ArgumentParser) -> None:
    """Where the cluster data comes from: shared by every command that audits (audit, plan, check, ...)."""
    src = p.add_argument_group("source (default: the current kubeconfig context)")
    src.add_argument("--manifests", action="append", metavar="PATH", help="manifest file or directory (repeatable)")
    src.add_argument("--snapshot", metavar="FILE", help="a snapshot saved with 'novadiag snapshot save'")
    src.add_argument("--lab", metavar="SCENARIO", help="start a bundled lab scenario for this command, stop it after")
    src.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    src.add_argument("--context", metavar="NAME", help="kubeconfig context")
    src.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    add_request_timeout(src)
    src.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="only edges from this namespace (repeatable)",
    )
    src.add_argument(
        "--cluster-domain", type=cluster_domain, metavar="DOMAIN", help="cluster DNS domain (default cluster.local)"
    )
    src.add_argument(
        "--cluster-dns",
        type=cluster_dns,
        metavar="IP",
        help="the cluster DNS Service's IP, for pods with dnsPolicy None (default: kube-system/kube-dns's ClusterIP)",
    )
    src.add_argument(
        "--ingress-from",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="namespace of the ingress controllers / Gateway data planes: routing edges are probed from it and"
        " generated policies admit its pods (repeatable; default: found from IngressClasses, parent Gateways"
        " and their data-plane pods)",
    )


def add_request_timeout(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    group.add_argument(
        "--request-timeout",
        type=positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for each API answer before retrying it (default 30)",
    )


def source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`add_source_options` added, as :func:`novadiag.source.source_from` takes them."""
    names = ("manifests", "snapshot", "lab", "kubeconfig", "context", "in_cluster", "request_timeout")
    return {name: getattr(args, name) for name in names}
