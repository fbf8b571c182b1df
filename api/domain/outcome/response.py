"""Treatment response of one course, from its diary days and the local dates of its sessions. No database here.

Definitions (design §5, research/domain.md §2.3):
- baseline: mean daily average pain over the 7 local days before the first session, from ≥ 4 days with data;
- daily and rolling change from the first session's day on; the rolling 7-day mean (≥ 4 of 7 days) uses only days
  since the first session, so pre-treatment days never dilute the response;
- onset: the first day whose rolling mean is ≥ 30 % below baseline;
- relief after the last session ends by a named rule (outcome/rules.py);
- area under the daily pain curve per interval between sessions, by the trapezoid rule over days with data
  (a gap is bridged by a straight line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise
from statistics import fmean, stdev

from api.domain.outcome.change import Category, category, change, percent_change, reaches, two_point
from api.domain.outcome.daily import Day, rolling_mean, values_by_date
from api.domain.outcome.rules import ReturnRule

BASELINE_DAYS = 7
MIN_DAYS = 4
RECENT_DAYS = 7
ONSET_PERCENT = 30.0
TREND_MEASURES = ("pain_worst", "sleep_hours", "sleep_quality", "mood")


@dataclass(frozen=True)
class Baseline:
    start: date
    end: date  # inclusive: the day before the first session
    days: int  # days with a value in the window
    mean: float | None  # None: insufficient (fewer than MIN_DAYS days)
    sd: float | None  # sample standard deviation

    @property
    def sufficient(self) -> bool:
        return self.mean is not None


@dataclass(frozen=True)
class ResponseDay:
    day: date
    pain: float | None
    change: float | None
    percent_change: float | None
    rolling: float | None
    rolling_change: float | None
    rolling_percent_change: float | None
    category: Category | None  # of the rolling mean
    two_point: bool | None  # the rolling mean is ≥ 2 points below baseline


@dataclass(frozen=True)
class Onset:
    day: date
    days: int  # since the first session


class ReliefStatus(StrEnum):
    NO_RELIEF = "NO_RELIEF"  # relief never held on or after the last session
    ONGOING = "ONGOING"
    RETURNED = "RETURNED"


@dataclass(frozen=True)
class Relief:
    rule: ReturnRule
    last_session: date
    status: ReliefStatus
    relief_start: date | None  # first day on or after the last session on which relief held
    returned_on: date | None
    # Days relief held: up to the return of pain, or so far (through the last day looked at) while ongoing.
    duration_days: int

    @property
    def time_to_return_days(self) -> int | None:
        return None if self.returned_on is None else (self.returned_on - self.last_session).days


@dataclass(frozen=True)
class PainArea:
    start: date
    end: date  # inclusive
    after_last_session: bool
    days_with_data: int
    auc: float | None  # point-days; None with fewer than two days with data
    span_days: int  # first to last day with data

    @property
    def mean(self) -> float | None:
        return self.auc / self.span_days if self.auc is not None and self.span_days else None


@dataclass(frozen=True)
class MeasureTrend:
    measure: str
    baseline: float | None
    baseline_days: int
    recent: float | None  # the last RECENT_DAYS days of the course's window
    recent_days: int
    change: float | None


@dataclass(frozen=True)
class CourseOutcome:
    sessions: tuple[date, ...]  # local dates of completed sessions, distinct, oldest first
    first_session: date | None  # the first completed session, else the first planned one
    until: date  # the last day looked at
    baseline: Baseline | None  # None: the course has no session at all
    days: list[ResponseDay]
    onset: Onset | None
    relief: Relief | None
    areas: list[PainArea]
    trends: list[MeasureTrend]

    @property
    def started(self) -> bool:
        return bool(self.sessions)

    @property
    def latest(self) -> ResponseDay | None:
        """The newest day with a rolling mean: the response as it stands."""
        return next((d for d in reversed(self.days) if d.rolling is not None), None)


def baseline(by_date: Mapping[date, float], first_session: date) -> Baseline:
    start, end = first_session - timedelta(days=BASELINE_DAYS), first_session - timedelta(days=1)
    values = [v for d, v in by_date.items() if start <= d <= end]
    if len(values) < MIN_DAYS:
        return Baseline(start, end, len(values), None, None)
    return Baseline(start, end, len(values), fmean(values), stdev(values))


def response_days(by_date: Mapping[date, float], first: date, until: date, base: float | None) -> list[ResponseDay]:
    treated = {d: v for d, v in by_date.items() if d >= first}
    days = []
    for offset in range((until - first).days + 1):
        day = first + timedelta(days=offset)
        pain = treated.get(day)
        rolling = rolling_mean(treated, day, window=RECENT_DAYS, min_days=MIN_DAYS)
        pct = percent_change(rolling, base)
        days.append(
            ResponseDay(
                day=day,
                pain=pain,
                change=change(pain, base),
                percent_change=percent_change(pain, base),
                rolling=rolling,
                rolling_change=change(rolling, base),
                rolling_percent_change=pct,
                category=category(pct),
                two_point=two_point(rolling, base),
            )
        )
    return days


def onset(days: Sequence[ResponseDay], first: date) -> Onset | None:
    for d in days:
        if d.rolling_percent_change is not None and reaches(-d.rolling_percent_change, ONSET_PERCENT):
            return Onset(d.day, (d.day - first).days)
    return None


def relief(days: Sequence[ResponseDay], last_session: date, base: float, rule: ReturnRule) -> Relief:
    """Relief must first hold on or after the last session; then pain has returned on the first day of a run of
    `rule.consecutive_days` calendar days on which it does not. A day without a rolling mean breaks a run:
    missing data is no evidence that pain came back."""
    start: date | None = None
    run_start: date | None = None
    run = 0
    looked_at = [d for d in days if d.day >= last_session]
    for d in looked_at:
        holds = None if d.rolling is None else rule.holds(d.rolling, base)
        if start is None:
            start = d.day if holds else None
            continue
        if holds is False:
            run_start = d.day if run == 0 else run_start
            run += 1
            if run == rule.consecutive_days:
                assert run_start is not None  # noqa: S101 -- set on the run's first day
                return Relief(rule, last_session, ReliefStatus.RETURNED, start, run_start, (run_start - start).days)
        else:
            run = 0
    if start is None:
        return Relief(rule, last_session, ReliefStatus.NO_RELIEF, None, None, 0)
    so_far = (looked_at[-1].day - start).days + 1
    return Relief(rule, last_session, ReliefStatus.ONGOING, start, None, so_far)


def pain_area(by_date: Mapping[date, float], start: date, end: date, *, after_last_session: bool) -> PainArea:
    points = sorted((d, v) for d, v in by_date.items() if start <= d <= end)
    if len(points) < 2:
        return PainArea(start, end, after_last_session, len(points), None, 0)
    auc = sum((d2 - d1).days * (v1 + v2) / 2 for (d1, v1), (d2, v2) in pairwise(points))
    return PainArea(start, end, after_last_session, len(points), auc, (points[-1][0] - points[0][0]).days)


def pain_areas(by_date: Mapping[date, float], sessions: Sequence[date], until: date) -> list[PainArea]:
    """From each session's day to the day before the next one; the last from the last session through `until`.
    Nothing past `until` counts: those days belong to the next course."""
    ends = [min(nxt - timedelta(days=1), until) for nxt in sessions[1:]] + [until]
    return [
        pain_area(by_date, start, end, after_last_session=i == len(sessions) - 1)
        for i, (start, end) in enumerate(zip(sessions, ends, strict=True))
        if end >= start
    ]


def measure_trend(series: Sequence[Day], measure: str, base: Baseline, until: date) -> MeasureTrend:
    by_date = values_by_date(series, measure)
    before = [v for d, v in by_date.items() if base.start <= d <= base.end]
    since = until - timedelta(days=RECENT_DAYS - 1)
    recent = [v for d, v in by_date.items() if since <= d <= until]
    base_mean = fmean(before) if len(before) >= MIN_DAYS else None
    recent_mean = fmean(recent) if len(recent) >= MIN_DAYS else None
    return MeasureTrend(measure, base_mean, len(before), recent_mean, len(recent), change(recent_mean, base_mean))


def course_outcome(
    series: Sequence[Day], completed: Sequence[date], planned: Sequence[date], *, until: date, rule: ReturnRule
) -> CourseOutcome:
    """`completed`: local dates of the course's completed sessions; `planned`: of its scheduled ones, which
    anchor the baseline only while nothing is completed. `until`: the last day that belongs to the course."""
    sessions = tuple(sorted(set(completed)))
    first = sessions[0] if sessions else min(planned, default=None)
    if first is None:
        return CourseOutcome(sessions, None, until, None, [], None, None, [], [])
    pain = values_by_date(series, "pain_average")
    base = baseline(pain, first)
    trends = [measure_trend(series, m, base, until) for m in TREND_MEASURES]
    if not sessions:
        return CourseOutcome(sessions, first, until, base, [], None, None, [], trends)
    days = response_days(pain, first, until, base.mean)
    found = relief(days, sessions[-1], base.mean, rule) if base.mean is not None else None
    areas = pain_areas(pain, sessions, until)
    return CourseOutcome(sessions, first, until, base, days, onset(days, first), found, areas, trends)
