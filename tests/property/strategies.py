"""Hypothesis strategies shared by the property tests, and the one settings profile they run under.

Time zones are sampled from `zoneinfo.available_timezones()`. Uniformly drawn instants almost never fall in the
hour a clock changes, so instants and local times are drawn near the zone's real transitions (found by scanning
the year) as often as anywhere else: that is where gaps, folds and the quiet hours around them meet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import settings
from hypothesis import strategies as st

T = TypeVar("T")

# Deterministic (a seed derived from each test), no example database written into the repo, no deadline (CI
# machines are shared); few enough examples that each file runs in a few seconds.
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def checked(examples: int = 150) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return settings(PROPERTY, max_examples=examples)


# Text every backend can store (api/domain/text.py): UTF-8 has no lone surrogates, PostgreSQL's text no NUL.
STORABLE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
# Any character at all, lone surrogates included (Hypothesis leaves them out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())

ZONE_NAMES = sorted(available_timezones())
# Years whose rules the tz database knows exactly; all offsets from 1980 on are whole minutes.
YEARS = st.integers(1980, 2045)


def zones() -> st.SearchStrategy[ZoneInfo]:
    return st.sampled_from(ZONE_NAMES).map(ZoneInfo)


@cache
def transitions(zone: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """Every instant of `year` at which the zone's UTC offset changes, to the second (two changes within one day
    that cancel out are missed: the tz database has none since 1980)."""
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    offset = at.astimezone(zone).utcoffset()
    while at.year == year:
        later = at + timedelta(days=1)
        if later.astimezone(zone).utcoffset() != offset:
            found.append(_first_with(zone, at, later))
            offset = later.astimezone(zone).utcoffset()
        at = later
    return tuple(found)


def _first_with(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first second in (before, after] with `after`'s offset."""
    target = after.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high


def minute_instants(zone: ZoneInfo) -> st.SearchStrategy[datetime]:
    """UTC instants on whole minutes: within 90 minutes or 26 hours of a transition of the zone, or anywhere in
    1980–2045."""
    anywhere = st.datetimes(
        min_value=datetime(1980, 1, 2), max_value=datetime(2045, 12, 30), timezones=st.just(UTC)
    ).map(lambda at: at.replace(second=0, microsecond=0))

    @st.composite
    def near_transition(draw: st.DrawFn) -> datetime:
        changes = transitions(zone, draw(YEARS))
        if not changes:
            return draw(anywhere)
        change = draw(st.sampled_from(changes))
        minutes = draw(st.integers(-90, 90) | st.integers(-26 * 60, 26 * 60))
        return (change + timedelta(minutes=minutes)).replace(second=0)

    return st.one_of(near_transition(), anywhere)


def local_times(zone: ZoneInfo, near: datetime) -> st.SearchStrategy[time]:
    """A local time of day: any minute, or the wall time a few minutes around `near` in the zone."""
    around = st.integers(-90, 90).map(lambda m: (near + timedelta(minutes=m)).astimezone(zone).time())
    return st.one_of(st.times().map(lambda t: t.replace(second=0, microsecond=0)), around.map(_minute))


def _minute(t: time) -> time:
    return t.replace(second=0, microsecond=0, tzinfo=None)


def local_days(zone: ZoneInfo, near: datetime) -> st.SearchStrategy[date]:
    return st.integers(-2, 2).map(lambda d: (near.astimezone(zone) + timedelta(days=d)).date())


# --- oracles: what local time means, computed the slow and obvious way -------------------------------------------

MINUTE = timedelta(minutes=1)


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def quiet(instant: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """Quiet hours are the local times of day in [start, end), across midnight when start > end."""
    now = wall(instant, zone).time()
    if start == end:
        return False
    return start <= now < end if start < end else (now >= start or now < end)


def first_free(instant: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """The first instant at or after `instant` (on a whole minute) outside quiet hours, found by walking."""
    at = instant
    for _ in range(28 * 60):
        if not quiet(at, zone, start, end):
            return at
        at += MINUTE
    raise AssertionError("quiet hours never end")
