"""Which prompts a patient is owed in a time range: a pure function of rules, preferences and sessions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from api.domain.prompt.localtime import local_date, quiet_hours_end, resolve
from api.domain.prompt.rules import Rule, RuleKind


class SessionState(StrEnum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Preferences:
    zone: ZoneInfo
    diary_time: time
    quiet_start: time
    quiet_end: time
    # EVERY_N_DAYS counts from here: the local date the patient joined their plan.
    enrolled_on: date


@dataclass(frozen=True)
class SessionView:
    id: UUID
    course_id: UUID
    starts_at: datetime
    ends_at: datetime  # actual end once completed, planned end before
    state: SessionState


@dataclass(frozen=True)
class Occurrence:
    rule_id: str
    instrument: str
    anchor: str  # with the patient and rule: the unique key that makes planning idempotent
    session_id: UUID | None
    due_at: datetime
    expires_at: datetime
    deliver_at: datetime
    # False when the window closes inside quiet hours: listed and answerable, but never pushed into the night.
    push: bool
    reminders: tuple[timedelta, ...]
    respects_quiet_hours: bool


def occurrences(
    rules: Iterable[Rule], prefs: Preferences, sessions: Sequence[SessionView], start: datetime, end: datetime
) -> list[Occurrence]:
    """Every occurrence whose due time falls in [start, end)."""
    live = sorted((s for s in sessions if s.state is not SessionState.CANCELLED), key=lambda s: s.starts_at)
    out: list[Occurrence] = []
    for rule in rules:
        out.extend(o for o in _for_rule(rule, prefs, live, start, end) if start <= o.due_at < end)
    return sorted(out, key=lambda o: (o.due_at, o.rule_id))


def _for_rule(
    rule: Rule, prefs: Preferences, live: list[SessionView], start: datetime, end: datetime
) -> Iterable[Occurrence]:
    if rule.kind is RuleKind.AFTER_SESSION:
        return _after_sessions(rule, prefs, live)
    if rule.kind is RuleKind.BEFORE_SESSION:
        return _before_sessions(rule, prefs, live)
    if rule.kind is RuleKind.COURSE_END:
        return _course_ends(rule, prefs, live)
    return _calendar(rule, prefs, start, end)


def _calendar(rule: Rule, prefs: Preferences, start: datetime, end: datetime) -> Iterable[Occurrence]:
    at = rule.at or prefs.diary_time
    day = max(local_date(start, prefs.zone) - timedelta(days=1), prefs.enrolled_on)
    last = local_date(end, prefs.zone) + timedelta(days=1)
    while day <= last:
        if _calendar_day(rule, prefs, day):
            due = resolve(day, at, prefs.zone)
            yield _occurrence(
                rule, prefs, anchor=f"date:{day.isoformat()}", session_id=None, due=due, expires=due + rule.window
            )
        day += timedelta(days=1)


def _calendar_day(rule: Rule, prefs: Preferences, day: date) -> bool:
    if rule.kind is RuleKind.DAILY:
        return True
    if rule.kind is RuleKind.WEEKLY:
        return day.weekday() == rule.weekday
    return (day - prefs.enrolled_on).days % rule.every_days == 0


def _after_sessions(rule: Rule, prefs: Preferences, live: list[SessionView]) -> Iterable[Occurrence]:
    for i, session in enumerate(live):
        due = session.ends_at + rule.offset
        following = live[i + 1] if i + 1 < len(live) else None
        # The next infusion supersedes this session's follow-up: it would ask about the wrong infusion.
        if following is not None and due >= following.starts_at:
            continue
        expires = due + rule.window
        if following is not None:
            expires = min(expires, following.starts_at)
        yield _occurrence(rule, prefs, anchor=f"session:{session.id}", session_id=session.id, due=due, expires=expires)


def _before_sessions(rule: Rule, prefs: Preferences, live: list[SessionView]) -> Iterable[Occurrence]:
    for session in live:
        if session.state is not SessionState.SCHEDULED:
            continue
        due = session.starts_at - rule.offset
        expires = min(due + rule.window, session.starts_at)
        yield _occurrence(rule, prefs, anchor=f"session:{session.id}", session_id=session.id, due=due, expires=expires)


def _course_ends(rule: Rule, prefs: Preferences, live: list[SessionView]) -> Iterable[Occurrence]:
    by_course: dict[UUID, list[SessionView]] = {}
    for session in live:
        by_course.setdefault(session.course_id, []).append(session)
    for course_id, sessions in by_course.items():
        if any(s.state is SessionState.SCHEDULED for s in sessions):
            continue  # the course goes on
        last = max(sessions, key=lambda s: s.ends_at)
        due = last.ends_at + rule.offset
        yield _occurrence(
            rule, prefs, anchor=f"course:{course_id}", session_id=last.id, due=due, expires=due + rule.window
        )


def _occurrence(
    rule: Rule, prefs: Preferences, *, anchor: str, session_id: UUID | None, due: datetime, expires: datetime
) -> Occurrence:
    deliver_at = delivery_time(due, expires, prefs, respects_quiet_hours=rule.quiet_hours)
    return Occurrence(
        rule_id=rule.id,
        instrument=rule.instrument,
        anchor=anchor,
        session_id=session_id,
        due_at=due,
        expires_at=expires,
        deliver_at=deliver_at or due,
        push=deliver_at is not None,
        reminders=rule.reminders,
        respects_quiet_hours=rule.quiet_hours,
    )


def delivery_time(
    at: datetime, expires: datetime, prefs: Preferences, *, respects_quiet_hours: bool
) -> datetime | None:
    """`at`, or the end of quiet hours if it falls inside them; None if the window closes first."""
    if not respects_quiet_hours:
        return at
    moved = quiet_hours_end(at, prefs.zone, prefs.quiet_start, prefs.quiet_end)
    return moved if moved < expires else None
