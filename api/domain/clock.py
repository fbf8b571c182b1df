"""The one clock. Services take `now` as an argument; only edges (HTTP, CLI, jobs) call `utc_now()`."""

from __future__ import annotations

from datetime import UTC, datetime

from api.domain.errors import BadInput


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, field: str) -> datetime:
    """`value` in UTC. Refuses naive datetimes (meaningless for a patient in another zone) and instants with no
    UTC equivalent (0001-01-01 at +01:00).

    Stored and compared instants are always UTC: SQLite compares them as text, so a "-05:00" would sort wrongly.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(field, "must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise BadInput(field, "is out of range") from exc
