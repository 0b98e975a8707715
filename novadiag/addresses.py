"""Telling IP literals from names.

A host that is an IP literal needs no DNS lookup, names no Service and is
judged by ``ipBlock`` rules rather than selectors, so the DNS model, the target
inference and the NetworkPolicy verdicts all ask this first, once per edge.
"""

from __future__ import annotations

import ipaddress


def is_ip_literal(text: str) -> bool:
    """True for an IPv4 or IPv6 literal (brackets allowed, as in a URL's ``[::1]``)."""
    if ":" not in text and not text.replace(".", "").isdigit():
        return False  # the common case, decided without the ipaddress module
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
