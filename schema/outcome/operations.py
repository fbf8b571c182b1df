"""Outcome queries: the patient's own trends, and the resolvers behind Patient.outcomes and Patient.series."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import strawberry

from api.domain.outcome.series import Bucket, Metric
from api.domain.patient.models import Patient as PatientModel
from schema.context import Info
from schema.outcome.types import CourseOutcome, Series, Trends

DEFAULT_TREND_DAYS = 30


async def course_outcomes(info: Info, patient_id: UUID, return_rule: str | None) -> list[CourseOutcome]:
    ctx = info.context
    reports = await ctx.services.outcomes.outcomes(ctx.require_actor(), patient_id, now=ctx.now, rule=return_rule)
    return [CourseOutcome.from_report(r) for r in reports]


async def patient_series(
    info: Info, patient: PatientModel, metric: Metric, start: date, end: date, bucket: Bucket
) -> Series:
    """Under `patient(id)`, which has already reached the patient in this request."""
    ctx = info.context
    found = await ctx.services.outcomes.series(
        ctx.require_actor(), patient.id, metric, start=start, end=end, bucket=bucket, now=ctx.now, known=patient
    )
    return Series.from_domain(found)


@strawberry.type
class OutcomeQuery:
    @strawberry.field(description="The signed-in patient's last `days` days (1–365, null: 30), today included.")
    async def my_trends(self, info: Info, days: int | None = DEFAULT_TREND_DAYS) -> Trends:
        ctx = info.context
        days = DEFAULT_TREND_DAYS if days is None else days
        return Trends.from_domain(await ctx.services.outcomes.trends(ctx.require_actor(), days, now=ctx.now))
