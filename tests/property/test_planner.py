"""Which prompts a patient is owed (api/domain/prompt/planner.py), for arbitrary zones, rules, sessions, diary
times, quiet hours and planning windows; instants are drawn near the zone's clock changes as often as not.

Properties:
- every occurrence is due inside the window, and its due, delivery and expiry instants are in UTC;
- delivery: a rule that ignores quiet hours delivers when due; otherwise a prompt is pushed at the first instant
  at or after its due time outside the patient's quiet hours in their local time, before it expires, and never
  pushed when its whole window is inside quiet hours;
- planning is idempotent: the same inputs give the same occurrences, each (rule, anchor) key once, and a window
  planned in two halves gives exactly what it gives planned whole;
- calendar rules: at most one prompt per local day, on that day, days in order; daily rules skip no day;
- anchored rules: an after-session prompt is due exactly `offset` after the session ends (in UTC), expires within
  the rule's window and before the next session starts, and exists for every session it is not superseded for; a
  before-session prompt is due `offset` before a scheduled session and expires by its start; a course-end prompt is
  due `offset` after the last session of a course with none still scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from api.domain.prompt.planner import Occurrence, Preferences, SessionState, SessionView, occurrences
from api.domain.prompt.rules import DEFAULT_RULES, Rule, RuleKind
from tests.property.strategies import checked, first_free, local_times, minute_instants, quiet, zones

COURSES = (UUID(int=1), UUID(int=2))
CALENDAR = (RuleKind.DAILY, RuleKind.EVERY_N_DAYS, RuleKind.WEEKLY)


@dataclass(frozen=True)
class Plan:
    rules: list[Rule]
    prefs: Preferences
    sessions: list[SessionView]
    start: datetime
    end: datetime

    def owed(self, start: datetime | None = None, end: datetime | None = None) -> list[Occurrence]:
        return occurrences(self.rules, self.prefs, self.sessions, start or self.start, end or self.end)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    @property
    def live(self) -> list[SessionView]:
        return sorted((s for s in self.sessions if s.state is not SessionState.CANCELLED), key=lambda s: s.starts_at)


def minutes(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.integers(low, high).map(lambda m: timedelta(minutes=m))


@st.composite
def rule(draw: st.DrawFn, rule_id: str, near: datetime, prefs_zone: object) -> Rule:
    kind = draw(st.sampled_from(RuleKind))
    return Rule(
        id=rule_id,
        kind=kind,
        instrument="phq9",
        window=draw(minutes(1, 7 * 24 * 60)),
        offset=draw(minutes(1, 10 * 24 * 60)),
        at=draw(st.none() | local_times(prefs_zone, near)),  # type: ignore[arg-type]
        every_days=draw(st.integers(1, 21)),
        weekday=draw(st.integers(0, 6)),
        reminders=tuple(draw(st.lists(minutes(1, 24 * 60), max_size=2))),
        quiet_hours=draw(st.booleans()),
    )


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    zone = draw(zones())
    anchor = draw(minute_instants(zone))
    prefs = Preferences(
        zone=zone,
        diary_time=draw(local_times(zone, anchor)),
        quiet_start=draw(local_times(zone, anchor)),
        quiet_end=draw(local_times(zone, anchor)),
        enrolled_on=anchor.astimezone(zone).date() - timedelta(days=draw(st.integers(0, 40))),
    )
    count = draw(st.integers(1, 4))
    rules = [draw(rule(f"r{n}", anchor, zone) | st.sampled_from(DEFAULT_RULES)) for n in range(count)]
    unique = list({r.id: r for r in rules}.values())
    sessions = [draw(session(n, anchor)) for n in range(draw(st.integers(0, 4)))]
    start = anchor - draw(minutes(0, 7 * 24 * 60))
    return Plan(unique, prefs, sessions, start, start + draw(minutes(60, 10 * 24 * 60)))


@st.composite
def session(draw: st.DrawFn, n: int, anchor: datetime) -> SessionView:
    starts = anchor + draw(minutes(-14 * 24 * 60, 14 * 24 * 60))
    return SessionView(
        id=UUID(int=100 + n),
        course_id=draw(st.sampled_from(COURSES)),
        starts_at=starts,
        ends_at=starts + draw(minutes(15, 8 * 60)),
        state=draw(st.sampled_from(SessionState)),
    )


def is_utc(instant: datetime) -> bool:
    return instant.tzinfo is not None and instant.utcoffset() == timedelta(0)


@checked(100)
@given(plans())
def test_every_occurrence_is_due_in_the_window_and_stored_in_utc(plan: Plan) -> None:
    for o in plan.owed():
        assert plan.start <= o.due_at < plan.end
        assert is_utc(o.due_at)
        assert is_utc(o.deliver_at)
        assert is_utc(o.expires_at)


# Found by tests/property/test_localtime.py: the night ends at 01:30 in New York and the check is due at the second
# 01:00 of the night the clocks fall back (06:00 UTC); it was planned for the first 01:30, before it was due.
NEW_YORK_FALL_BACK = Plan(
    rules=[
        Rule("post_2h", RuleKind.AFTER_SESSION, "post_infusion", window=timedelta(hours=4), offset=timedelta(hours=2))
    ],
    prefs=Preferences(
        zone=ZoneInfo("America/New_York"),
        diary_time=time(20, 0),
        quiet_start=time(21, 30),
        quiet_end=time(1, 30),
        enrolled_on=date(2026, 10, 1),
    ),
    sessions=[
        SessionView(
            UUID(int=100),
            COURSES[0],
            datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
            SessionState.COMPLETED,
        )
    ],
    start=datetime(2026, 10, 31, tzinfo=UTC),
    end=datetime(2026, 11, 2, tzinfo=UTC),
)


@checked(200)
@given(plans())
@example(NEW_YORK_FALL_BACK)
def test_a_prompt_is_never_pushed_inside_quiet_hours(plan: Plan) -> None:
    zone, start, end = plan.prefs.zone, plan.prefs.quiet_start, plan.prefs.quiet_end
    for o in plan.owed():
        if not o.respects_quiet_hours:
            assert (o.push, o.deliver_at) == (True, o.due_at)
            continue
        free = first_free(o.due_at, zone, start, end)
        if o.push:
            assert o.deliver_at == free < o.expires_at
            assert not quiet(o.deliver_at, zone, start, end)
        else:
            # The whole window is quiet: listed and answerable, never pushed into the night.
            assert free >= o.expires_at


@checked(120)
@given(plans(), st.floats(0.01, 0.99))
def test_planning_is_idempotent_and_a_split_window_plans_the_same(plan: Plan, split: float) -> None:
    whole = plan.owed()
    middle = plan.start + (plan.end - plan.start) * split

    halves = plan.owed(plan.start, middle) + plan.owed(middle, plan.end)

    assert plan.owed() == whole
    keys = [(o.rule_id, o.anchor) for o in whole]
    assert len(keys) == len(set(keys))
    assert sorted(halves, key=lambda o: (o.due_at, o.rule_id)) == whole


@checked(120)
@given(plans())
def test_calendar_rules_give_one_prompt_per_local_day(plan: Plan) -> None:
    for r in (r for r in plan.rules if r.kind in CALENDAR):
        mine = [o for o in plan.owed() if o.rule_id == r.id]
        days = [date.fromisoformat(o.anchor.removeprefix("date:")) for o in mine]
        assert [o.due_at.astimezone(plan.prefs.zone).date() for o in mine] == days
        assert days == sorted(set(days))
        assert all(d >= plan.prefs.enrolled_on for d in days)
        if r.kind is RuleKind.DAILY and days:
            assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
        if r.kind is RuleKind.WEEKLY:
            assert all(d.weekday() == r.weekday for d in days)
        if r.kind is RuleKind.EVERY_N_DAYS:
            assert all((d - plan.prefs.enrolled_on).days % r.every_days == 0 for d in days)


@checked(150)
@given(plans())
def test_after_session_prompts_land_at_their_offset_from_the_end_of_each_session(plan: Plan) -> None:
    owed = plan.owed()
    live = plan.live
    for r in (r for r in plan.rules if r.kind is RuleKind.AFTER_SESSION):
        by_anchor = {o.anchor: o for o in owed if o.rule_id == r.id}
        for n, s in enumerate(live):
            following = live[n + 1] if n + 1 < len(live) else None
            due = s.ends_at + r.offset
            superseded = following is not None and due >= following.starts_at
            o = by_anchor.pop(f"session:{s.id}", None)
            if superseded or not plan.start <= due < plan.end:
                assert o is None
                continue
            assert o is not None, f"no prompt for session {s.id}"
            assert (o.due_at, o.session_id) == (due, s.id)
            assert o.due_at < o.expires_at <= o.due_at + r.window
            assert following is None or o.expires_at <= following.starts_at
        assert by_anchor == {}


@checked(100)
@given(plans())
def test_before_session_and_course_end_prompts_land_at_their_offset(plan: Plan) -> None:
    sessions = {s.id: s for s in plan.live}
    for o in plan.owed():
        r = plan.rule(o.rule_id)
        if r.kind is RuleKind.BEFORE_SESSION:
            s = sessions[o.session_id]  # type: ignore[index]
            assert s.state is SessionState.SCHEDULED
            assert o.due_at == s.starts_at - r.offset
            assert o.due_at < o.expires_at <= min(o.due_at + r.window, s.starts_at)
        if r.kind is RuleKind.COURSE_END:
            course = [s for s in plan.live if f"course:{s.course_id}" == o.anchor]
            assert all(s.state is not SessionState.SCHEDULED for s in course)
            assert o.due_at == max(s.ends_at for s in course) + r.offset
            assert o.expires_at == o.due_at + r.window
