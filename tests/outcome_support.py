"""Building the courses, sessions and diary days that outcome tests compute by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from api.domain.patient.models import Patient
from api.domain.treatment.models import InfusionSession, SessionStatus, TreatmentCourse
from tests.factories import Factory, PatientUser


async def course(
    patient: Patient, now: datetime, *sessions: tuple[datetime, SessionStatus], created_at: datetime | None = None
) -> TreatmentCourse:
    """A course with sessions as they ended up: rows written directly, so that any history can be set up."""
    made = await TreatmentCourse.create(
        clinic_id=patient.clinic_id, patient_id=patient.id, created_at=created_at or now
    )
    for starts, status in sessions:
        done = status is SessionStatus.COMPLETED
        await InfusionSession.create(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            course_id=made.id,
            starts_at=starts,
            planned_duration_minutes=60,
            status=status,
            started_at=starts if done else None,
            ended_at=starts + timedelta(hours=1) if done else None,
            created_at=now,
            updated_at=now,
        )
    return made


async def pain_days(factory: Factory, who: PatientUser, values: dict[datetime, int]) -> None:
    """One entry per instant with that average pain."""
    for at, pain in values.items():
        await factory.entry(who, recorded_at=at, pain_average=pain, pain_now=None)


NEW_YORK = ZoneInfo("America/New_York")
SESSION = datetime(2026, 10, 25, 14, 0, tzinfo=UTC)  # 10:00 in New York


async def steady_course(factory: Factory, who: PatientUser, now: datetime) -> TreatmentCourse:
    """A New York patient's course, easy to work out by hand.

    18–24 October (baseline): pain 8, sleep 6 h, mood 4, every day at noon. One session on 25 October.
    25 October – 25 November (32 days): pain 4, sleep 7.5 h, mood 7. Nothing yet on 26 November, today.
    """
    made = await course(who.patient, now, (SESSION, SessionStatus.COMPLETED))
    for offset in range(-7, 32):
        after = offset >= 0
        await factory.entry(
            who,
            recorded_at=datetime(2026, 10, 25, 12, 0, tzinfo=NEW_YORK) + timedelta(days=offset),
            pain_now=None,
            pain_average=4 if after else 8,
            sleep_hours=7.5 if after else 6.0,
            mood=7 if after else 4,
        )
    return made
