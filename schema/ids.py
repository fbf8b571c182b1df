"""Opaque ids: UUIDs on the wire as strings. An id that cannot exist is simply not found."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.domain.errors import NotFound


def parse_id(value: strawberry.ID | str, what: str, field: str = "id") -> UUID:
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise NotFound(what, field=field) from exc


def to_id(value: UUID) -> strawberry.ID:
    # Not `strawberry.ID(…)`: a NewType's call is a Python-level function returning its argument, as long again as
    # the `str` itself, for every id of every page (bench/README.md).
    return str(value)  # type: ignore[return-value]  # an ID is a str
