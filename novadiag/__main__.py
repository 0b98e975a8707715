"""``python -m novadiag``."""

from novadiag.cli import run

run()
