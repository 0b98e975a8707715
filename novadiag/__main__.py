"""``python -m novadiag``."""

from novadiag.console import run

run()
