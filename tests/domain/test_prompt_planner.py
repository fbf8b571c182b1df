"""Prompt materialisation as a pure function: local times, DST, quiet hours, sessions (design §4.2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from api.domain.prompt.localtime import exists, in_quiet_hours, quiet_hours_end, resolve
from api.domain.prompt.planner import Occurrence, Preferences, SessionState, SessionView, occurrences
from api.domain.prompt.rules import DEFAULT_RULES, Rule, RuleKind

DENVER = ZoneInfo("America/Denver")
SYDNEY = ZoneInfo("Australia/Sydney")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
DIARY = Rule("daily_diary", RuleKind.DAILY, "daily_diary", window=7 * H)


def prefs(
    zone: ZoneInfo,
    *,
    diary: time = time(20, 0),
    quiet: tuple[time, time] = (time(21, 30), time(8, 0)),
    enrolled: date = date(2026, 1, 1),
) -> Preferences:
    return Preferences(zone=zone, diary_time=diary, quiet_start=quiet[0], quiet_end=quiet[1], enrolled_on=enrolled)


def local(o: Occurrence, zone: ZoneInfo) -> str:
    return o.due_at.astimezone(zone).strftime("%m-%d %H:%M%z")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- local time resolution -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected_local"),
    [
        # Spring forward: 02:30 does not exist; the first instant after the gap is 03:00.
        (DENVER, date(2027, 3, 14), time(2, 30), "2027-03-14 03:00-0600"),
        (SYDNEY, date(2026, 10, 4), time(2, 15), "2026-10-04 03:00+1100"),
        # Fall back: 01:30 happens twice; the first occurrence is taken.
        (DENVER, date(2027, 11, 7), time(1, 30), "2027-11-07 01:30-0600"),
        (SYDNEY, date(2027, 4, 4), time(2, 30), "2027-04-04 02:30+1100"),
        # Ordinary days.
        (DENVER, date(2027, 3, 13), time(2, 30), "2027-03-13 02:30-0700"),
        (BERLIN, date(2026, 11, 26), time(20, 0), "2026-11-26 20:00+0100"),
    ],
)
def test_resolve_moves_gaps_forward_and_takes_the_first_of_an_overlap(
    zone: ZoneInfo, day: date, at: time, expected_local: str
) -> None:
    instant = resolve(day, at, zone)
    assert instant.tzinfo is UTC
    assert instant.astimezone(zone).strftime("%Y-%m-%d %H:%M%z") == expected_local


def test_exists_is_false_only_inside_a_gap() -> None:
    assert not exists(datetime(2027, 3, 14, 2, 30), DENVER)
    assert exists(datetime(2027, 3, 14, 3, 0), DENVER)
    assert exists(datetime(2027, 11, 7, 1, 30), DENVER)


@pytest.mark.parametrize(
    ("zone", "first_day", "at"),
    [
        (DENVER, date(2027, 3, 10), time(2, 30)),  # spring gap at the diary time
        (DENVER, date(2027, 11, 4), time(1, 30)),  # autumn overlap at the diary time
        (SYDNEY, date(2026, 10, 1), time(2, 30)),  # southern hemisphere, spring (October)
        (SYDNEY, date(2027, 4, 1), time(2, 30)),  # southern hemisphere, autumn (April)
        (BERLIN, date(2027, 3, 25), time(2, 30)),
    ],
)
def test_daily_rule_gives_exactly_one_prompt_per_local_day_across_dst(
    zone: ZoneInfo, first_day: date, at: time
) -> None:
    rule = Rule("night", RuleKind.DAILY, "daily_diary", at=at, window=H)
    start = resolve(first_day, time(0, 0), zone)
    found = occurrences([rule], prefs(zone), [], start, start + timedelta(days=7))
    days = [o.due_at.astimezone(zone).date() for o in found]
    assert days == [first_day + timedelta(days=i) for i in range(7)]
    assert len({o.anchor for o in found}) == 7
    # Consecutive prompts are 23 to 25 hours apart: never a doubled night, never a skipped one.
    gaps = {b.due_at - a.due_at for a, b in pairwise(found)}
    assert gaps <= {timedelta(hours=h) for h in (23, 23.5, 24, 24.5, 25)}


def test_daily_diary_uses_the_patients_diary_time_in_their_zone() -> None:
    start = utc(2026, 11, 26, 0, 0)
    found = occurrences([DIARY], prefs(SYDNEY, diary=time(19, 15)), [], start, start + timedelta(days=2))
    assert [local(o, SYDNEY) for o in found] == ["11-26 19:15+1100", "11-27 19:15+1100"]
    assert all(o.expires_at - o.due_at == 7 * H for o in found)


def test_every_n_days_counts_from_enrolment_and_weekly_uses_the_weekday() -> None:
    biweekly = Rule("phq9", RuleKind.EVERY_N_DAYS, "phq9", at=time(18, 0), every_days=14, window=H)
    weekly = Rule("weekly", RuleKind.WEEKLY, "phq2", at=time(9, 0), weekday=0, window=H)
    p = prefs(BERLIN, enrolled=date(2026, 11, 3))
    start = utc(2026, 11, 1)
    found = occurrences([biweekly, weekly], p, [], start, start + timedelta(days=35))
    assert [o.due_at.astimezone(BERLIN).date().isoformat() for o in found if o.rule_id == "phq9"] == [
        "2026-11-03",
        "2026-11-17",
        "2026-12-01",
    ]
    assert {o.due_at.astimezone(BERLIN).weekday() for o in found if o.rule_id == "weekly"} == {0}
    # Nothing before enrolment.
    assert min(o.due_at for o in found) >= resolve(date(2026, 11, 3), time(0, 0), BERLIN)


# --- quiet hours ---------------------------------------------------------------------------------------------------


def test_quiet_hours_that_cross_midnight() -> None:
    start, end = time(21, 30), time(8, 0)

    def at(h: int, m: int = 0) -> datetime:
        return resolve(date(2026, 11, 26), time(h, m), BERLIN)

    assert not in_quiet_hours(at(21, 29), BERLIN, start, end)
    assert in_quiet_hours(at(21, 30), BERLIN, start, end)
    assert in_quiet_hours(at(3), BERLIN, start, end)
    assert not in_quiet_hours(at(8), BERLIN, start, end)
    assert quiet_hours_end(at(23), BERLIN, start, end) == resolve(date(2026, 11, 27), time(8, 0), BERLIN)
    assert quiet_hours_end(at(3), BERLIN, start, end) == resolve(date(2026, 11, 26), time(8, 0), BERLIN)
    assert quiet_hours_end(at(12), BERLIN, start, end) == at(12)
    # Daytime quiet hours (a night-shift worker) do not cross midnight.
    assert in_quiet_hours(at(10), BERLIN, time(9, 0), time(17, 0))
    assert not in_quiet_hours(at(18), BERLIN, time(9, 0), time(17, 0))


def test_quiet_hours_delay_delivery_or_skip_the_push_when_the_window_closes_inside_them() -> None:
    late_check = Rule("late", RuleKind.DAILY, "daily_diary", at=time(22, 0), window=12 * H)
    short_check = Rule("short", RuleKind.DAILY, "daily_diary", at=time(22, 0), window=2 * H)
    safety = Rule("safety", RuleKind.DAILY, "phq2", at=time(22, 0), window=2 * H, quiet_hours=False)
    start = resolve(date(2026, 11, 26), time(0, 0), BERLIN)
    found = {
        o.rule_id: o for o in occurrences([late_check, short_check, safety], prefs(BERLIN), [], start, start + 24 * H)
    }
    assert found["late"].deliver_at == resolve(date(2026, 11, 27), time(8, 0), BERLIN)
    assert found["late"].push
    # Listed and answerable at its due time, never pushed into the night.
    assert (found["short"].deliver_at, found["short"].push) == (found["short"].due_at, False)
    assert (found["safety"].deliver_at, found["safety"].push) == (found["safety"].due_at, True)


# --- sessions ------------------------------------------------------------------------------------------------------

COURSE = UUID(int=1)


def session(
    starts: datetime, *, state: SessionState = SessionState.SCHEDULED, minutes: int = 60, course: UUID = COURSE
) -> SessionView:
    return SessionView(
        id=uuid4(), course_id=course, starts_at=starts, ends_at=starts + timedelta(minutes=minutes), state=state
    )


def test_after_session_rules_follow_the_session_end() -> None:
    s = session(utc(2026, 11, 26, 14, 0), state=SessionState.COMPLETED, minutes=45)
    found = occurrences(DEFAULT_RULES, prefs(ZoneInfo("UTC")), [s], utc(2026, 11, 20), utc(2026, 12, 10))
    post = {o.rule_id: o for o in found if o.rule_id.startswith("post_infusion")}
    end = s.ends_at
    assert {k: v.due_at - end for k, v in post.items()} == {
        "post_infusion_2h": 2 * H,
        "post_infusion_24h": 24 * H,
        "post_infusion_72h": 72 * H,
    }
    assert {o.anchor for o in post.values()} == {f"session:{s.id}"}


def test_next_session_supersedes_follow_ups_and_closes_open_windows() -> None:
    first = session(utc(2026, 11, 23, 9, 0), state=SessionState.COMPLETED)
    second = session(utc(2026, 11, 25, 9, 0))  # 48 h later: the 72 h check of the first would ask about the wrong one
    found = occurrences(DEFAULT_RULES, prefs(ZoneInfo("UTC")), [first, second], utc(2026, 11, 20), utc(2026, 12, 10))
    of_first = {o.rule_id: o for o in found if o.session_id == first.id and o.rule_id.startswith("post")}
    assert set(of_first) == {"post_infusion_2h", "post_infusion_24h"}
    assert all(o.expires_at <= second.starts_at for o in of_first.values())
    of_second = {o.rule_id for o in found if o.session_id == second.id}
    assert {"post_infusion_2h", "post_infusion_24h", "post_infusion_72h", "pre_session"} <= of_second


def test_cancelled_sessions_anchor_nothing_and_pre_session_checks_close_at_the_start() -> None:
    cancelled = session(utc(2026, 11, 27, 9, 0), state=SessionState.CANCELLED)
    upcoming = session(utc(2026, 11, 30, 9, 0))
    found = occurrences(
        DEFAULT_RULES, prefs(ZoneInfo("UTC")), [cancelled, upcoming], utc(2026, 11, 20), utc(2026, 12, 10)
    )
    assert not [o for o in found if o.session_id == cancelled.id]
    pre = next(o for o in found if o.rule_id == "pre_session")
    assert pre.due_at == upcoming.starts_at - 24 * H
    assert pre.expires_at == upcoming.starts_at


def test_course_end_waits_for_the_last_scheduled_session() -> None:
    done = [session(utc(2026, 11, d, 9, 0), state=SessionState.COMPLETED) for d in (2, 4, 6)]
    pending = session(utc(2026, 11, 9, 9, 0))
    window = (utc(2026, 11, 1), utc(2026, 12, 31))
    assert not [
        o
        for o in occurrences(DEFAULT_RULES, prefs(ZoneInfo("UTC")), [*done, pending], *window)
        if o.rule_id == "pgic_course_end"
    ]
    found = [
        o for o in occurrences(DEFAULT_RULES, prefs(ZoneInfo("UTC")), done, *window) if o.rule_id == "pgic_course_end"
    ]
    assert [o.due_at for o in found] == [done[-1].ends_at + timedelta(days=7)]
    assert found[0].anchor == f"course:{COURSE}"


def test_planning_is_deterministic() -> None:
    s = [session(utc(2026, 11, 26, 9, 0))]
    args = (DEFAULT_RULES, prefs(DENVER), s, utc(2026, 11, 20), utc(2026, 12, 10))
    assert occurrences(*args) == occurrences(*args)


def test_rules_round_trip_through_json() -> None:
    assert [Rule.from_json(r.to_json()) for r in DEFAULT_RULES] == list(DEFAULT_RULES)
