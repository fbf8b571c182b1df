"""The one clock. Services take `now` as an argument; only edges (HTTP, CLI, jobs) call `utc_now()`."""

from __future__ import annotations

from datetime import UTC, datetime

from api.domain.errors import BadInput


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, field: str) -> datetime:
    """Return `value` in UTC, refusing naive datetimes (they have no meaning for a patient in another zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(field, "must carry a UTC offset")
    return value.astimezone(UTC)
