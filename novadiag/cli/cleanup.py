"""``novadiag cleanup``: delete the probe pods and ConfigMaps a killed run left behind."""

from __future__ import annotations

import argparse

from novadiag.cli import EXIT_OK
from novadiag.errors import ConfigError
from novadiag.kube import KubeClient, KubeSettings
from novadiag.probing import cleanup


def run_cleanup(args: argparse.Namespace) -> int:
    older = _duration(args.older_than) if args.older_than else None
    settings = KubeSettings(kubeconfig=args.kubeconfig, context=args.context, request_timeout=args.request_timeout)
    with KubeClient(settings) as client:
        gone = cleanup(client, older_than=older)
    for line in gone:
        print(f"deleted {line}")
    print(f"cleanup: {len(gone)} object(s) deleted")
    return EXIT_OK


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"--older-than {text!r}: expected a duration like 90s, 10m, 2h") from exc
