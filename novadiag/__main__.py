"""``python -m novadiag``."""

import sys

from novadiag.cli import main

sys.exit(main())
