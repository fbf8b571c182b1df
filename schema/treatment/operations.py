"""Scheduling and recording infusion sessions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.patient.access import require_staff
from api.domain.treatment.service import SessionChange
from schema.context import Info
from schema.ids import parse_id
from schema.treatment.types import InfusionSession, SessionStatus


@strawberry.input
class ScheduleInfusionInput:
    patient_id: strawberry.ID
    starts_at: datetime
    planned_duration_minutes: int
    course_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the patient's active course, or a new one."
    )


@strawberry.input(description="Reschedule with startsAt; complete with status COMPLETED and endedAt; cancel.")
class UpdateInfusionInput:
    starts_at: datetime | None = None
    planned_duration_minutes: int | None = None
    status: SessionStatus | None = None  # type: ignore[valid-type]
    started_at: datetime | None = None
    ended_at: datetime | None = None
    dose_mg: float | None = None
    notes: str | None = None


@strawberry.type
class TreatmentMutation:
    @strawberry.mutation(description="Clinic staff: book a session; its follow-up prompts are planned at once.")
    async def schedule_infusion(self, info: Info, input: ScheduleInfusionInput) -> InfusionSession:
        ctx = info.context
        actor = ctx.require_actor()
        require_staff(actor)  # before the ids are read: a patient is FORBIDDEN whatever ids it sends
        session = await ctx.services.treatment.schedule(
            actor,
            parse_id(input.patient_id, "patient", field="patient_id"),
            starts_at=input.starts_at,
            planned_duration_minutes=input.planned_duration_minutes,
            course_id=parse_id(input.course_id, "course", field="course_id") if input.course_id else None,
            now=ctx.now,
        )
        return InfusionSession.from_model(session)

    @strawberry.mutation(description="Clinic staff: reschedule, complete or cancel; prompts re-anchor.")
    async def update_infusion(self, info: Info, id: strawberry.ID, input: UpdateInfusionInput) -> InfusionSession:
        ctx = info.context
        actor = ctx.require_actor()
        require_staff(actor)  # before the id is read: a patient is FORBIDDEN whatever id it sends
        change = SessionChange(
            starts_at=input.starts_at,
            planned_duration_minutes=input.planned_duration_minutes,
            status=input.status,
            started_at=input.started_at,
            ended_at=input.ended_at,
            dose_mg=input.dose_mg,
            notes=input.notes,
        )
        session = await ctx.services.treatment.update(actor, parse_id(id, "infusion session"), change, now=ctx.now)
        return InfusionSession.from_model(session)
