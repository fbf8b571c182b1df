"""A patient's diary as one value per local day: the series every outcome and trend is computed from.

An entry belongs to the local date it was recorded on (its own UTC offset, stored with it). Several entries on one
day are averaged per measure; an entry without a measure does not count as a zero. Days without data are absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import fmean
from typing import NamedTuple, Protocol

from tortoise.queryset import QuerySet

from api.domain.diary.models import DiaryEntry

MEASURES = ("pain_average", "pain_worst", "pain_now", "sleep_hours", "sleep_quality", "mood")


class Dated(Protocol):
    """What a day's fold reads of an entry: a model instance or a `Reading`."""

    @property
    def recorded_at(self) -> datetime: ...
    @property
    def utc_offset_minutes(self) -> int: ...
    @property
    def deleted_at(self) -> datetime | None: ...


class Reading(NamedTuple):
    """An entry's measures read as plain values: a year of them costs a fraction of as many model instances."""

    recorded_at: datetime
    utc_offset_minutes: int
    deleted_at: datetime | None
    pain_average: int | None
    pain_worst: int | None
    pain_now: int | None
    sleep_hours: Decimal | None
    sleep_quality: int | None
    mood: int | None


async def readings(query: QuerySet[DiaryEntry]) -> list[Reading]:
    rows = await query.values_list(*Reading._fields)
    return [Reading(*row) for row in rows]


@dataclass(frozen=True)
class Day:
    day: date
    pain_average: float | None = None
    pain_worst: float | None = None
    pain_now: float | None = None
    sleep_hours: float | None = None
    sleep_quality: float | None = None
    mood: float | None = None

    def value(self, measure: str) -> float | None:
        value: float | None = getattr(self, measure)
        return value


def local_date(entry: Dated) -> date:
    return (entry.recorded_at + timedelta(minutes=entry.utc_offset_minutes)).date()


def daily_series(entries: Iterable[Dated], measures: Sequence[str] = MEASURES) -> list[Day]:
    """Live (not entered-in-error) entries folded into days, oldest first; only `measures` are computed (the
    others stay None)."""
    per_day: dict[date, dict[str, list[float]]] = {}
    for entry in entries:
        if entry.deleted_at is not None:
            continue
        bucket = per_day.setdefault(local_date(entry), {m: [] for m in measures})
        for measure in measures:
            raw: int | Decimal | None = getattr(entry, measure)
            if raw is not None:
                bucket[measure].append(float(raw))
    return [
        Day(day, **{m: (fmean(values) if values else None) for m, values in measures.items()})
        for day, measures in sorted(per_day.items())
    ]


def values_by_date(days: Sequence[Day], measure: str) -> dict[date, float]:
    return {d.day: v for d in days if (v := d.value(measure)) is not None}


def rolling_mean(by_date: dict[date, float], end: date, *, window: int = 7, min_days: int = 4) -> float | None:
    """Mean of the values in the `window` days ending on `end` (inclusive); None with fewer than `min_days`."""
    values = [v for offset in range(window) if (v := by_date.get(end - timedelta(days=offset))) is not None]
    return fmean(values) if len(values) >= min_days else None
