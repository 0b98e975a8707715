"""Argument types for the command line: a bad number is refused by argparse, before any work.

``--probe-timeout -1`` used to run the whole audit and then report that no probe
pod finished within -1 s; ``--probe-concurrency 0`` was silently taken as 8.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


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


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
