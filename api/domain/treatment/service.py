"""Scheduling, rescheduling, completing and cancelling infusion sessions. Prompts follow every change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor
from api.domain.clock import require_aware
from api.domain.errors import BadInput, Conflict, NotFound
from api.domain.patient.access import lock_patient, reachable_patient, require_not_erased, require_staff
from api.domain.patient.models import Patient
from api.domain.prompt.scheduling import SchedulingPolicy, replan
from api.domain.treatment.models import CourseStatus, InfusionSession, SessionStatus, TreatmentCourse

MAX_DURATION_MINUTES = 24 * 60 * 5  # continuous infusions run for days (research/domain.md §3.1)
MAX_NOTES = 4000
# Sessions are planned ahead, not years out; and recorded back, not from before the clinic kept records.
MAX_AHEAD = timedelta(days=730)
# What happened (actual start and end) is recorded afterwards; a little clock skew between machines is tolerated.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class SessionChange:
    starts_at: datetime | None = None
    planned_duration_minutes: int | None = None
    status: SessionStatus | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    dose_mg: float | None = None
    notes: str | None = None


class TreatmentService:
    def __init__(self, scheduling: SchedulingPolicy) -> None:
        self.scheduling = scheduling

    async def schedule(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        starts_at: datetime,
        planned_duration_minutes: int,
        course_id: UUID | None,
        now: datetime,
    ) -> InfusionSession:
        require_staff(actor)
        patient = await self._patient(actor, patient_id)
        starts = _planned_start(starts_at, now)
        _check_duration(planned_duration_minutes)
        async with in_transaction() as conn:
            patient = await lock_patient(patient.id, conn)
            require_not_erased(patient)
            course = await self._course(actor, patient, course_id, now, conn)
            session = await InfusionSession.create(
                clinic_id=actor.clinic_id,
                patient_id=patient.id,
                course_id=course.id,
                starts_at=starts,
                planned_duration_minutes=planned_duration_minutes,
                status=SessionStatus.SCHEDULED,
                created_at=now,
                updated_at=now,
                using_db=conn,
            )
            await audit.record(
                actor, "session.schedule", [patient.id], now=now, object_id=session.id, write=True, using_db=conn
            )
        await replan([patient], self.scheduling, now=now)
        return session

    async def update(self, actor: Actor, session_id: UUID, change: SessionChange, *, now: datetime) -> InfusionSession:
        require_staff(actor)
        patient = await self._patient_of(actor, session_id)
        async with in_transaction() as conn:
            # The patient's lock before the session's, in the erasure's order: the other order could deadlock with
            # its purge, which deletes the session.
            patient = await lock_patient(patient.id, conn)
            require_not_erased(patient)
            session = (
                await InfusionSession.filter(id=session_id, patient_id=patient.id)
                .select_for_update()
                .using_db(conn)
                .first()
            )
            if session is None:
                raise NotFound("infusion session", field="id")
            _apply(session, change, now)
            session.updated_at = now
            await session.save(using_db=conn)
            await audit.record(
                actor, "session.update", [patient.id], now=now, object_id=session.id, write=True, using_db=conn
            )
        # Prompts re-anchor after the commit: a failure here is repaired by the next planning pass.
        await replan([patient], self.scheduling, now=now)
        return session

    async def sessions(self, actor: Actor, patient_id: UUID, *, now: datetime) -> list[InfusionSession]:
        patient = await reachable_patient(actor, patient_id)
        await audit.record(actor, "session.read", [patient.id], now=now)
        return await InfusionSession.filter(patient_id=patient.id).order_by("starts_at", "id")

    async def courses(self, actor: Actor, patient_id: UUID, *, now: datetime) -> list[TreatmentCourse]:
        patient = await reachable_patient(actor, patient_id)
        await audit.record(actor, "course.read", [patient.id], now=now)
        return await TreatmentCourse.filter(patient_id=patient.id).order_by("created_at", "id")

    async def _patient(self, actor: Actor, patient_id: UUID) -> Patient:
        """Checked again in each write's transaction, under the patient's lock (`lock_patient`): an erasure may
        commit between this check and the write."""
        patient = await reachable_patient(actor, patient_id)
        require_not_erased(patient)
        return patient

    async def _patient_of(self, actor: Actor, session_id: UUID) -> Patient:
        session = await InfusionSession.get_or_none(id=session_id, clinic_id=actor.clinic_id)
        if session is None:
            raise NotFound("infusion session", field="id")
        return await self._patient(actor, session.patient_id)

    async def _course(
        self, actor: Actor, patient: Patient, course_id: UUID | None, now: datetime, conn: BaseDBAsyncClient
    ) -> TreatmentCourse:
        if course_id is not None:
            course = await TreatmentCourse.get_or_none(id=course_id, patient_id=patient.id, using_db=conn)
            if course is None:
                raise NotFound("course", field="course_id")
            if course.status is CourseStatus.COMPLETED:
                raise Conflict("the course is completed", field="course_id")
            return course
        course = (
            await TreatmentCourse.filter(patient_id=patient.id, status=CourseStatus.ACTIVE)
            .order_by("-created_at")
            .using_db(conn)
            .first()
        )
        if course is None:
            course = await TreatmentCourse.create(
                clinic_id=actor.clinic_id,
                patient_id=patient.id,
                created_at=now,
                using_db=conn,
            )
        return course


def _check_duration(minutes: int, field: str = "planned_duration_minutes") -> None:
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise BadInput(field, f"must be between 1 and {MAX_DURATION_MINUTES} minutes")


def _planned_start(value: datetime, now: datetime) -> datetime:
    starts = require_aware(value, "starts_at")
    if starts > now + MAX_AHEAD:
        raise BadInput("starts_at", "is more than two years ahead")
    return starts


def _happened(value: datetime, field: str, now: datetime) -> datetime:
    at = require_aware(value, field)
    if at > now + CLOCK_SKEW:
        raise BadInput(field, "is in the future")
    return at


def _apply(session: InfusionSession, change: SessionChange, now: datetime) -> None:
    if session.status is SessionStatus.CANCELLED:
        raise Conflict("the session is cancelled", field="id")
    if session.status is SessionStatus.COMPLETED and change.status not in (None, SessionStatus.COMPLETED):
        # What happened stays recorded; a session entered in error is corrected, not un-happened.
        raise Conflict("a completed session cannot be cancelled or rescheduled", field="status")
    _apply_plan(session, change, now)
    _apply_record(session, change, now)
    if change.status is not None:
        session.status = change.status


def _apply_plan(session: InfusionSession, change: SessionChange, now: datetime) -> None:
    if change.starts_at is not None:
        if session.status is not SessionStatus.SCHEDULED:
            raise Conflict("only a scheduled session can be moved", field="starts_at")
        session.starts_at = _planned_start(change.starts_at, now)
    if change.planned_duration_minutes is not None:
        _check_duration(change.planned_duration_minutes)
        session.planned_duration_minutes = change.planned_duration_minutes
    if change.notes is not None:
        if len(change.notes) > MAX_NOTES:
            raise BadInput("notes", f"must be at most {MAX_NOTES} characters")
        session.notes = change.notes


def _apply_record(session: InfusionSession, change: SessionChange, now: datetime) -> None:
    """What happened: actual times and dose. Completing a session needs its end time, which has to have come:
    after-session prompts re-anchor on it."""
    if change.dose_mg is not None:
        session.dose_mg = _dose(change.dose_mg)
    if change.started_at is not None:
        session.started_at = _happened(change.started_at, "started_at", now)
    if change.ended_at is not None:
        session.ended_at = _happened(change.ended_at, "ended_at", now)
    if change.status is SessionStatus.COMPLETED:
        if session.ended_at is None:
            raise BadInput("ended_at", "a completed session needs its end time")
        session.started_at = session.started_at or session.starts_at
    if session.started_at and session.ended_at and session.ended_at <= session.started_at:
        raise BadInput("ended_at", "must be after started_at")


def _dose(value: float) -> Decimal:
    try:
        dose = Decimal(repr(value))
    except InvalidOperation as exc:
        raise BadInput("dose_mg", "is not a number") from exc
    if not dose.is_finite() or not Decimal(0) < dose <= Decimal(5000) or dose != dose.quantize(Decimal("0.01")):
        raise BadInput("dose_mg", "must be a positive amount in mg with at most two decimals")
    return dose
