"""Text every backend can store: PostgreSQL's text refuses NUL, and no encoding has a lone surrogate (a JSON
string may still carry one, escaped)."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None
