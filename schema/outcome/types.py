"""Treatment response, trends and chart series as the API shows them.

Anything that grows with the number of days is a set of parallel lists (index i of every list is the same day
or bucket), never a list of per-point objects: a year of data stays one small response.
"""

from __future__ import annotations

from datetime import date

import strawberry

from api.domain.outcome.change import Category as DomainCategory
from api.domain.outcome.response import Baseline as DomainBaseline
from api.domain.outcome.response import MeasureTrend as DomainMeasureTrend
from api.domain.outcome.response import PainArea as DomainPainArea
from api.domain.outcome.response import Relief as DomainRelief
from api.domain.outcome.response import ReliefStatus as DomainReliefStatus
from api.domain.outcome.response import ResponseDay
from api.domain.outcome.series import MEASURE
from api.domain.outcome.series import Bucket as DomainBucket
from api.domain.outcome.series import Metric as DomainMetric
from api.domain.outcome.series import Series as DomainSeries
from api.domain.outcome.service import CourseReport
from api.domain.outcome.service import Trends as DomainTrends
from schema.prompt.types import Adherence
from schema.treatment.types import TreatmentCourse

SeriesMetric = strawberry.enum(DomainMetric, name="SeriesMetric")
SeriesBucket = strawberry.enum(DomainBucket, name="SeriesBucket")
ResponseCategory = strawberry.enum(
    DomainCategory,
    name="ResponseCategory",
    description="IMMPACT pain benchmarks: SUBSTANTIAL ≥ 50 %, MODERATE ≥ 30 %, MINIMAL ≥ 10 % reduction.",
)
ReliefStatus = strawberry.enum(DomainReliefStatus, name="ReliefStatus")
# The diary measures that have a trend, by the metric that charts them.
METRIC_OF = {measure: metric for metric, measure in MEASURE.items() if metric is not DomainMetric.PAIN_ROLLING7}


@strawberry.type(description="Chart-ready: dates[i] is the first local day of bucket i, values[i] its mean.")
class Series:
    metric: SeriesMetric  # type: ignore[valid-type]
    bucket: SeriesBucket  # type: ignore[valid-type]
    dates: list[date]
    values: list[float | None] = strawberry.field(description="Mean of the bucket's days; null: no data.")
    counts: list[int] = strawberry.field(description="Days with a value in the bucket.")

    @classmethod
    def from_domain(cls, s: DomainSeries) -> Series:
        return cls(metric=s.metric, bucket=s.bucket, dates=s.dates, values=s.values, counts=s.counts)


@strawberry.type(description="Mean daily average pain over the 7 local days before the first session.")
class Baseline:
    start: date
    end: date
    days: int = strawberry.field(description="Days with a value; at least 4 are needed.")
    mean: float | None = strawberry.field(description="Null when insufficient.")
    sd: float | None = strawberry.field(description="Sample standard deviation.")
    sufficient: bool

    @classmethod
    def from_domain(cls, b: DomainBaseline) -> Baseline:
        return cls(start=b.start, end=b.end, days=b.days, mean=b.mean, sd=b.sd, sufficient=b.sufficient)


@strawberry.type(
    description="Per local day from the first session on, as parallel lists. change = value − baseline "
    "(negative: less pain); the rolling mean covers 7 days since the first session and needs 4 with data."
)
class ResponseSeries:
    dates: list[date]
    pain: list[float | None]
    change: list[float | None]
    percent_change: list[float | None] = strawberry.field(description="Null when the baseline is 0.")
    rolling: list[float | None]
    rolling_change: list[float | None]
    rolling_percent_change: list[float | None]
    category: list[ResponseCategory | None]  # type: ignore[valid-type]
    two_point: list[bool | None] = strawberry.field(description="The rolling mean is ≥ 2 points below baseline.")

    @classmethod
    def from_days(cls, days: list[ResponseDay]) -> ResponseSeries:
        return cls(
            dates=[d.day for d in days],
            pain=[d.pain for d in days],
            change=[d.change for d in days],
            percent_change=[d.percent_change for d in days],
            rolling=[d.rolling for d in days],
            rolling_change=[d.rolling_change for d in days],
            rolling_percent_change=[d.rolling_percent_change for d in days],
            category=[d.category for d in days],  # type: ignore[misc]  # mypy reads the strawberry enum as None
            two_point=[d.two_point for d in days],
        )


@strawberry.type(description="The response as it stands: the newest day with a rolling mean.")
class CurrentResponse:
    date: date
    rolling: float
    rolling_change: float | None
    rolling_percent_change: float | None
    category: ResponseCategory | None  # type: ignore[valid-type]
    two_point: bool | None

    @classmethod
    def from_day(cls, d: ResponseDay) -> CurrentResponse:
        assert d.rolling is not None  # noqa: S101 -- CourseOutcome.latest only picks days with a rolling mean
        return cls(
            date=d.day,
            rolling=d.rolling,
            rolling_change=d.rolling_change,
            rolling_percent_change=d.rolling_percent_change,
            category=d.category,
            two_point=d.two_point,
        )


@strawberry.type(description="The first day the rolling mean was ≥ 30 % below baseline.")
class Onset:
    date: date
    days: int = strawberry.field(description="Days since the first session.")


@strawberry.type(description="Relief after the last session and the return of pain, by the named rule.")
class Relief:
    rule: str = strawberry.field(description="Rule id, name and version: e.g. rolling30.v1.")
    rule_name: str
    rule_version: int
    rule_description: str
    last_session: date
    status: ReliefStatus  # type: ignore[valid-type]
    relief_start: date | None
    returned_on: date | None = strawberry.field(description="The first day of the run that ended relief.")
    time_to_return_days: int | None = strawberry.field(description="Days from the last session to returnedOn.")
    duration_days: int = strawberry.field(description="Days relief held: until returnedOn, or so far.")

    @classmethod
    def from_domain(cls, r: DomainRelief) -> Relief:
        return cls(
            rule=r.rule.id,
            rule_name=r.rule.name,
            rule_version=r.rule.version,
            rule_description=r.rule.description,
            last_session=r.last_session,
            status=r.status,
            relief_start=r.relief_start,
            returned_on=r.returned_on,
            time_to_return_days=r.time_to_return_days,
            duration_days=r.duration_days,
        )


@strawberry.type(description="Area under the daily average pain curve (trapezoid over days with data).")
class PainArea:
    start: date
    end: date
    after_last_session: bool
    days_with_data: int
    auc: float | None = strawberry.field(description="Point-days; null with fewer than two days with data.")
    span_days: int
    mean: float | None = strawberry.field(description="auc ÷ spanDays.")

    @classmethod
    def from_domain(cls, a: DomainPainArea) -> PainArea:
        return cls(
            start=a.start,
            end=a.end,
            after_last_session=a.after_last_session,
            days_with_data=a.days_with_data,
            auc=a.auc,
            span_days=a.span_days,
            mean=a.mean,
        )


@strawberry.type(description="A diary measure's baseline mean against its mean over the course's last 7 days.")
class MeasureTrend:
    metric: SeriesMetric  # type: ignore[valid-type]
    baseline: float | None
    baseline_days: int
    recent: float | None
    recent_days: int
    change: float | None

    @classmethod
    def from_domain(cls, t: DomainMeasureTrend) -> MeasureTrend:
        return cls(
            metric=METRIC_OF[t.measure],
            baseline=t.baseline,
            baseline_days=t.baseline_days,
            recent=t.recent,
            recent_days=t.recent_days,
            change=t.change,
        )


@strawberry.type(description="A course's response to treatment, computed from the diary when read.")
class CourseOutcome:
    course: TreatmentCourse
    started: bool = strawberry.field(description="At least one session is completed.")
    first_session: date | None = strawberry.field(description="First completed session, else first planned.")
    sessions: list[date] = strawberry.field(description="Local days of completed sessions.")
    until: date = strawberry.field(description="The last day that belongs to this course.")
    baseline: Baseline | None
    current: CurrentResponse | None
    daily: ResponseSeries
    onset: Onset | None
    relief: Relief | None
    areas: list[PainArea]
    trends: list[MeasureTrend]

    @classmethod
    def from_report(cls, r: CourseReport) -> CourseOutcome:
        o = r.outcome
        latest = o.latest
        return cls(
            course=TreatmentCourse.from_model(r.course),
            started=o.started,
            first_session=o.first_session,
            sessions=list(o.sessions),
            until=o.until,
            baseline=Baseline.from_domain(o.baseline) if o.baseline else None,
            current=CurrentResponse.from_day(latest) if latest else None,
            daily=ResponseSeries.from_days(o.days),
            onset=Onset(date=o.onset.day, days=o.onset.days) if o.onset else None,
            relief=Relief.from_domain(o.relief) if o.relief else None,
            areas=[PainArea.from_domain(a) for a in o.areas],
            trends=[MeasureTrend.from_domain(t) for t in o.trends],
        )


@strawberry.type(description="The signed-in patient's own last days: chart series, course response, adherence.")
class Trends:
    days: int
    from_: date = strawberry.field(name="from")
    to: date = strawberry.field(description="Today, inclusive, in the patient's time zone.")
    course: CourseOutcome | None = strawberry.field(description="The course with the latest first session.")
    adherence: list[Adherence] = strawberry.field(description="Overall first, then per instrument.")
    _trends: strawberry.Private[DomainTrends]

    @classmethod
    def from_domain(cls, t: DomainTrends) -> Trends:
        return cls(
            days=t.days,
            from_=t.start,
            to=t.end,
            course=CourseOutcome.from_report(t.course) if t.course else None,
            adherence=[Adherence.from_domain(a) for a in t.adherence],
            _trends=t,
        )

    @strawberry.field(description="Daily average pain.")
    def pain(self) -> Series:
        return Series.from_domain(self._trends.series(DomainMetric.PAIN_AVERAGE))

    @strawberry.field(description="Rolling 7-day mean of daily average pain (at least 4 of 7 days).")
    def pain_rolling7(self) -> Series:
        return Series.from_domain(self._trends.series(DomainMetric.PAIN_ROLLING7))

    @strawberry.field
    def sleep_hours(self) -> Series:
        return Series.from_domain(self._trends.series(DomainMetric.SLEEP_HOURS))

    @strawberry.field(description="0–10, 10 = best.")
    def sleep_quality(self) -> Series:
        return Series.from_domain(self._trends.series(DomainMetric.SLEEP_QUALITY))

    @strawberry.field(description="0–10, 10 = best.")
    def mood(self) -> Series:
        return Series.from_domain(self._trends.series(DomainMetric.MOOD))

    @strawberry.field(description="Any metric over the same days, by day, ISO week or month.")
    def series(
        self,
        metric: SeriesMetric,  # type: ignore[valid-type]
        bucket: SeriesBucket = DomainBucket.DAY,  # type: ignore[valid-type]
    ) -> Series:
        return Series.from_domain(self._trends.series(metric, bucket))
