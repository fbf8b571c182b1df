"""Wall-clock times in a patient's IANA zone, resolved to instants without DST surprises.

A local time that does not exist (spring forward) moves to the first instant after the gap; an ambiguous one
(fall back) takes the first occurrence. Occurrences are keyed by local date, so a day is never doubled or skipped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Longest DST gap in the tz database is 2 hours (e.g. Antarctica/Troll, Europe before 1950s: 1 h is usual).
_MAX_GAP_MINUTES = 180


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
    """The first instant at or after `instant` outside quiet hours."""
    if not in_quiet_hours(instant, zone, start, end):
        return instant
    day = local_date(instant, zone)
    if instant.astimezone(zone).time() >= end:
        day += timedelta(days=1)
    return resolve(day, end, zone)


def quiet_hours_start_before(instant: datetime, zone: ZoneInfo, start: time) -> datetime:
    """The most recent start of quiet hours at or before `instant`."""
    day = local_date(instant, zone)
    candidate = resolve(day, start, zone)
    return candidate if candidate <= instant else resolve(day - timedelta(days=1), start, zone)
