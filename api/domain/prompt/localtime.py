"""Wall-clock times in a patient's IANA zone, resolved to instants without DST surprises.

A local time that does not exist (spring forward) moves to the first instant after the gap; an ambiguous one
(fall back) takes the first occurrence. Occurrences are keyed by local date, so a day is never doubled or skipped.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Longest DST gap in the tz database is 2 hours (e.g. Antarctica/Troll, Europe before 1950s: 1 h is usual).
_MAX_GAP_MINUTES = 180
# Steps to the end of quiet hours: each reaches their end or passes a clock change, and a night has at most one.
_MAX_STEPS = 6


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the naive wall time occurs in the zone (False inside a spring-forward gap)."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def resolve(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `at` on `day` in `zone`."""
    wall = datetime.combine(day, at)
    if not exists(wall, zone):
        # Walk to the end of the gap; gaps end on a whole minute in every zone of the tz database.
        wall = wall.replace(second=0, microsecond=0)
        for _ in range(_MAX_GAP_MINUTES):
            wall += timedelta(minutes=1)
            if exists(wall, zone):
                break
    # fold=0 is the first of two occurrences in a fall-back overlap.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def parse_hhmm(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(instant: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """Quiet hours [start, end) in local time; they may cross midnight (21:30–08:00)."""
    if start == end:
        return False
    now = instant.astimezone(zone).time()
    if start < end:
        return start <= now < end
    return now >= start or now < end


def quiet_hours_end(instant: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """The first instant at or after `instant` outside quiet hours.

    Not simply the next `end` on the clock: when clocks fall back the wall time repeats, so quiet hours may end at
    the second `end` of the night (the first is already past), or early, when the clock is set back to before
    `start`. Each step goes to the next `end` on the clock, or to a clock change before it, and looks again.
    """
    at = instant
    for _ in range(_MAX_STEPS):
        if not in_quiet_hours(at, zone, start, end):
            return at
        leaving = _next_wall_time(at, zone, end)
        at = _clock_change(at, leaving, zone) or leaving
    return at


def _next_wall_time(after: datetime, zone: ZoneInfo, at: time) -> datetime:
    """The first instant after `after` when the clock shows `at`, or jumps past it."""
    day = local_date(after, zone)
    # From the day before: a clock set back across midnight shows yesterday's times again.
    days = [day + timedelta(days=n) for n in range(-1, 3)]
    return min(i for d in days for i in _instants_of(d, at, zone) if i > after)


def _instants_of(day: date, at: time, zone: ZoneInfo) -> list[datetime]:
    """Both occurrences of a repeated wall time, the one of an ordinary one, or the end of the gap it falls in."""
    wall = datetime.combine(day, at)
    found = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return [i for i in found if i.astimezone(zone).replace(tzinfo=None) == wall] or [resolve(day, at, zone)]


def _clock_change(after: datetime, until: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant in (after, until] with another UTC offset than `after`, if there is one."""
    offset = after.astimezone(zone).utcoffset()
    if until.astimezone(zone).utcoffset() == offset:
        return None
    # Offsets change on whole seconds; bisect between seconds.
    low, high = math.floor(after.timestamp()), math.ceil(until.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def quiet_hours_start_before(instant: datetime, zone: ZoneInfo, start: time) -> datetime:
    """The most recent start of quiet hours at or before `instant`."""
    day = local_date(instant, zone)
    candidate = resolve(day, start, zone)
    return candidate if candidate <= instant else resolve(day - timedelta(days=1), start, zone)
