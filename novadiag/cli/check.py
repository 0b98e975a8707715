"""``novadiag check``: success criteria files run under pytest."""

from __future__ import annotations

import argparse
import os

from novadiag.cli import EXIT_ERROR
from novadiag.criteria.context import read_baseline
from novadiag.errors import ConfigError


def run_check(args: argparse.Namespace) -> int:
    """Criteria files run under pytest, isolated from the pytest config of the repo they sit in.

    That config (``addopts``, ``timeout`` from a plugin the user's CI may not
    install, ``filterwarnings = error``) belongs to the repo's own tests; the
    criteria only need novadiag's plugin, so ``-c /dev/null`` skips it.

    Exit codes: 0 every criterion passed, 1 some failed or could not be checked,
    2 bad input (a missing criteria file, a bad baseline, a criteria file that
    does not parse). The baseline is read here first so that a bad one is one
    line and exit 2, not a criterion that fails.
    """
    import pytest  # deferred: pytest and its plugins load only for `novadiag check`

    for path in args.files:
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such criteria file")
    if args.baseline:
        read_baseline(args.baseline)
    argv = [*args.files, "-c", os.devnull, "--rootdir", os.getcwd(), "-p", "no:cacheprovider", "-q"]
    for flag, value in (
        ("--novadiag-kubeconfig", args.kubeconfig),
        ("--novadiag-context", args.context),
        ("--novadiag-lab", args.lab),
        ("--novadiag-baseline", args.baseline),
        ("--junitxml", args.junitxml),
    ):
        if value:
            argv += [flag, value]
    for path in args.manifests:
        argv += ["--novadiag-manifests", path]
    if args.no_probe:
        argv.append("--novadiag-no-probe")
    code = pytest.main(argv)
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(code)
    # pytest's usage and internal errors, a file holding no criteria, and collection errors (which
    # pytest reports as INTERRUPTED, like Ctrl-C; a real Ctrl-C reaches main() as KeyboardInterrupt
    # only outside pytest): pytest has said why above.
    return EXIT_ERROR
