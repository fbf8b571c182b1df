"""Treatment response, trends and chart series, computed from the diary on read.

Only the window of diary entries a computation needs is loaded, in one query, and folded into local days
(outcome/daily.py); everything after that is pure (outcome/response.py, outcome/series.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from api.domain import audit
from api.domain.actor import Actor
from api.domain.diary.models import DiaryEntry
from api.domain.errors import BadInput
from api.domain.outcome.daily import MEASURES, Day, daily_series, readings
from api.domain.outcome.response import BASELINE_DAYS, CourseOutcome, course_outcome
from api.domain.outcome.rules import RULES, ReturnRule, rule_named
from api.domain.outcome.series import LOOKBACK, MAX_SPAN_DAYS, MEASURE, Bucket, Metric, Series, series
from api.domain.patient.access import reachable_patient, require_patient
from api.domain.patient.models import Patient
from api.domain.prompt.service import Adherence, PromptService
from api.domain.treatment.models import InfusionSession, SessionStatus, TreatmentCourse

MAX_TREND_DAYS = 365
EARLIEST, LATEST = date(1900, 1, 1), date(2200, 1, 1)
ROLLING_LOOKBACK = timedelta(days=6)


@dataclass(frozen=True)
class CourseReport:
    course: TreatmentCourse
    outcome: CourseOutcome


@dataclass(frozen=True)
class Trends:
    days: int
    start: date
    end: date  # inclusive: the patient's today
    daily: list[Day]  # from before `start` when the current course's baseline or a rolling mean needs it
    course: CourseReport | None  # the course with the latest first session
    adherence: list[Adherence]  # over the same days

    def series(self, metric: Metric, bucket: Bucket = Bucket.DAY) -> Series:
        return series(self.daily, metric, bucket, self.start, self.end + timedelta(days=1))


@dataclass(frozen=True)
class _Plan:
    course: TreatmentCourse
    completed: list[date]
    planned: list[date]

    @property
    def anchor(self) -> date | None:
        return min(self.completed, default=None) or min(self.planned, default=None)


class OutcomeService:
    def __init__(self, prompts: PromptService, *, return_rule: str) -> None:
        if return_rule not in RULES:
            raise ValueError(f"unknown return-of-pain rule {return_rule!r}; known: {', '.join(sorted(RULES))}")
        self.prompts = prompts
        self.return_rule = RULES[return_rule]

    async def outcomes(
        self, actor: Actor, patient_id: UUID, *, now: datetime, rule: str | None = None
    ) -> list[CourseReport]:
        """Every course, oldest first. `rule` names the return-of-pain rule (default: the configured one)."""
        chosen = self.return_rule if rule is None else rule_named(rule)
        patient = await reachable_patient(actor, patient_id)
        await audit.record(actor, "outcome.read", [patient.id], now=now)
        plans = await _plans(patient)
        today = _today(patient, now)
        anchors = [a for p in plans if (a := p.anchor) is not None]
        daily = await _load_days(patient.id, min(anchors) - timedelta(days=BASELINE_DAYS), today) if anchors else []
        return [CourseReport(p.course, _outcome(daily, p, _until(p, anchors, today), chosen)) for p in plans]

    async def trends(self, actor: Actor, days: int, *, now: datetime) -> Trends:
        """The signed-in patient's last `days` days, their current course's response and their adherence."""
        patient = await reachable_patient(actor, require_patient(actor))
        if not 1 <= days <= MAX_TREND_DAYS:
            raise BadInput("days", f"must be between 1 and {MAX_TREND_DAYS}")
        today = _today(patient, now)
        start = today - timedelta(days=days - 1)
        current = _current(await _plans(patient))
        first = start - ROLLING_LOOKBACK
        if current is not None and current.anchor is not None:
            first = min(first, current.anchor - timedelta(days=BASELINE_DAYS))
        daily = await _load_days(patient.id, first, today)
        report = CourseReport(current.course, _outcome(daily, current, today, self.return_rule)) if current else None
        # Prompts due since the first charted local day began, as the series count days.
        since = datetime.combine(start, time(), ZoneInfo(patient.timezone))
        adherence = await self.prompts.adherence(actor, patient.id, start=since, end=now, now=now)
        return Trends(days, start, today, daily, report, adherence)

    async def series(
        self,
        actor: Actor,
        patient_id: UUID,
        metric: Metric,
        *,
        start: date,
        end: date,
        bucket: Bucket,
        now: datetime,
        known: Patient | None = None,
    ) -> Series:
        """Local days in [start, end): one request charts a year. `known`: see `reachable_patient`."""
        for name, day in (("from", start), ("to", end)):
            # Diary dates live in this range; beyond it the margins below would overflow the calendar.
            if not EARLIEST <= day <= LATEST:
                raise BadInput(name, f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
        if start >= end:
            raise BadInput("to", "must be after from")
        if (end - start).days > MAX_SPAN_DAYS:
            raise BadInput("to", f"must be at most {MAX_SPAN_DAYS} days after from")
        patient = await reachable_patient(actor, patient_id, known=known)
        await audit.record(actor, "outcome.read", [patient.id], now=now)
        lookback = timedelta(days=LOOKBACK.get(metric, 0))
        daily = await _load_days(patient.id, start - lookback, end - timedelta(days=1), [MEASURE[metric]])
        return series(daily, metric, bucket, start, end)


def _current(plans: Sequence[_Plan]) -> _Plan | None:
    """The course the patient is in: the latest one with a completed session. Booking the first session of the
    next course does not replace it; before any session is completed, the latest booked course."""
    started = [p for p in plans if p.completed]
    if started:
        return started[-1]
    return next((p for p in reversed(plans) if p.anchor is not None), None)


def _outcome(daily: Sequence[Day], plan: _Plan, until: date, rule: ReturnRule) -> CourseOutcome:
    return course_outcome(daily, plan.completed, plan.planned, until=until, rule=rule)


def _until(plan: _Plan, anchors: Sequence[date], today: date) -> date:
    """A course's days run to the day before the next course's first session, and never past today."""
    later = [a for a in anchors if plan.anchor is not None and a > plan.anchor]
    return min([today, *(a - timedelta(days=1) for a in later)])


def _today(patient: Patient, now: datetime) -> date:
    return now.astimezone(ZoneInfo(patient.timezone)).date()


async def _plans(patient: Patient) -> list[_Plan]:
    """Courses with the local dates of their sessions, in the order they started (unstarted ones last)."""
    zone = ZoneInfo(patient.timezone)
    courses = await TreatmentCourse.filter(patient_id=patient.id).order_by("created_at", "id")
    sessions = await InfusionSession.filter(
        patient_id=patient.id, status__in=[SessionStatus.SCHEDULED, SessionStatus.COMPLETED]
    ).order_by("starts_at", "id")
    plans = {c.id: _Plan(c, [], []) for c in courses}
    for s in sessions:
        day = (s.started_at or s.starts_at).astimezone(zone).date()
        plan = plans[s.course_id]
        (plan.completed if s.status is SessionStatus.COMPLETED else plan.planned).append(day)
    return sorted(plans.values(), key=lambda p: (p.anchor is None, p.anchor or date.max))


async def _load_days(patient_id: UUID, first: date, last: date, measures: Sequence[str] = MEASURES) -> list[Day]:
    """Local days first..last. Entries are fetched by UTC instant with a day's margin on each side (UTC offsets
    run from −12 h to +14 h) and assigned to days by their own recorded offset."""
    lower = datetime.combine(first - timedelta(days=1), time(), UTC)
    upper = datetime.combine(last + timedelta(days=2), time(), UTC)
    rows = await readings(
        DiaryEntry.filter(patient_id=patient_id, deleted_at=None, recorded_at__gte=lower, recorded_at__lt=upper)
    )
    return [d for d in daily_series(rows, measures) if first <= d.day <= last]
