"""``$(VAR)`` expansion, as the kubelet does it for env values, ``command`` and ``args``.

One home for the rule, read by env resolution (:mod:`novadiag.references`) and
by command reading (:mod:`novadiag.commandrefs`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_EXPAND_RE = re.compile(r"\$(?:\$|\(([^)]*)\))")


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` like the kubelet: ``$$`` escapes, unknown names stay literal.

    >>> expand("http://$(HOST):$(PORT)/$$(HOST)", {"HOST": "api"})
    'http://api:$(PORT)/$(HOST)'
    """
    if "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return variables.get(name, match.group(0))

    return _EXPAND_RE.sub(substitute, value)
