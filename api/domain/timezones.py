"""IANA time zone validation."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from api.domain.errors import BadInput


@cache
def _known_zones() -> frozenset[str]:
    # Read once: scanning the tz database costs milliseconds. Excludes oddities such as "Factory".
    return frozenset(available_timezones())


def check_timezone(name: str, field: str = "timezone") -> str:
    if name not in _known_zones():
        raise BadInput(field, "is not an IANA time zone, e.g. Europe/Berlin")
    return name
