"""Courses and infusion sessions (clinic-side data)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.treatment.models import CourseStatus as DomainCourseStatus
from api.domain.treatment.models import InfusionSession as SessionModel
from api.domain.treatment.models import SessionStatus as DomainSessionStatus
from api.domain.treatment.models import TreatmentCourse as CourseModel
from schema.ids import to_id

SessionStatus = strawberry.enum(DomainSessionStatus)
CourseStatus = strawberry.enum(DomainCourseStatus)


@strawberry.type
class InfusionSession:
    id: strawberry.ID
    course_id: strawberry.ID
    starts_at: datetime
    planned_duration_minutes: int
    status: SessionStatus  # type: ignore[valid-type]
    started_at: datetime | None
    ended_at: datetime | None
    dose_mg: float | None
    notes: str | None

    @classmethod
    def from_model(cls, s: SessionModel, *, clinical: bool = True) -> InfusionSession:
        """`clinical=False` for the patient's own view: dose and clinician notes are clinic-side data."""
        return cls(
            id=to_id(s.id),
            course_id=to_id(s.course_id),
            starts_at=s.starts_at,
            planned_duration_minutes=s.planned_duration_minutes,
            status=s.status,
            started_at=s.started_at,
            ended_at=s.ended_at,
            dose_mg=float(s.dose_mg) if clinical and s.dose_mg is not None else None,
            notes=s.notes if clinical else None,
        )


@strawberry.type
class TreatmentCourse:
    id: strawberry.ID
    indication: str | None
    status: CourseStatus  # type: ignore[valid-type]
    created_at: datetime

    @classmethod
    def from_model(cls, c: CourseModel) -> TreatmentCourse:
        return cls(id=to_id(c.id), indication=c.indication, status=c.status, created_at=c.created_at)
