"""Regular expressions compiled on first use.

Compiling a pattern costs tens to hundreds of microseconds, paid at import by
every command; patterns that only some inputs reach (a config file's format, a
rare credential form) are compiled when first asked for instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache


def lazy_pattern(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A function that returns ``re.compile(pattern, flags)``, compiled on its first call."""

    @cache
    def compiled() -> re.Pattern[str]:
        return re.compile(pattern, flags)

    return compiled
