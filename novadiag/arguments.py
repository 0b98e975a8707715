"""Argument types for the command line: a bad number is refused by argparse, before any work.

``--probe-timeout -1`` used to run the whole audit and then report that no probe
pod finished within -1 s; ``--probe-concurrency 0`` was silently taken as 8.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

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


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
