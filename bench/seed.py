"""A clinic of N enrolled patients, written with bulk inserts (the per-patient services hash passwords).

Every patient is ACTIVE on the clinic's default plan, enrolled a few days before `now`, in one of several IANA
zones, with one enabled Expo device. A third are mid-series (an infusion yesterday, the next in three days); a
sixth finished a one-session course five days ago (the course-end questionnaire falls inside the horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from api.domain.account.models import Clinic
from api.domain.account.tokens import sha256_hex
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.plans import default_plan
from api.domain.push.models import Device, ProviderName
from api.domain.treatment.models import CourseStatus, InfusionSession, SessionStatus, TreatmentCourse

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
)
BATCH = 1000
SESSION_MINUTES = 40

Treatment = tuple[list[TreatmentCourse], list[InfusionSession]]


@dataclass
class Seeded:
    patients: int = 0
    devices: int = 0
    courses: int = 0
    sessions: int = 0


async def seed(patients: int, *, now: datetime) -> Seeded:
    clinic = await Clinic.create(name="Bench clinic", created_at=now - timedelta(days=400))
    plan = await default_plan(clinic.id, now=now)
    out = Seeded()
    for start in range(0, patients, BATCH):
        rows = [_patient(clinic.id, plan.family_id, i, now) for i in range(start, min(start + BATCH, patients))]
        await Patient.bulk_create(rows)
        await Device.bulk_create([_device(p, i, now) for i, p in enumerate(rows, start)])
        courses, sessions = _treatment(rows, start, now)
        await TreatmentCourse.bulk_create(courses)
        await InfusionSession.bulk_create(sessions)
        out.patients += len(rows)
        out.devices += len(rows)
        out.courses += len(courses)
        out.sessions += len(sessions)
    return out


def _patient(clinic_id: UUID, family_id: UUID, i: int, now: datetime) -> Patient:
    enrolled = now - timedelta(days=3 + i % 4, hours=i % 24, minutes=i % 60)
    return Patient(
        id=uuid4(),
        clinic_id=clinic_id,
        display_name=f"Bench Patient {i}",
        search_name=f"bench patient {i}",
        timezone=ZONES[i % len(ZONES)],
        status=PatientStatus.ACTIVE,
        plan_family_id=family_id,
        enrolled_at=enrolled,
        created_at=enrolled - timedelta(days=1),
        activated_at=enrolled,
    )


def _device(patient: Patient, i: int, now: datetime) -> Device:
    token = f"ExponentPushToken[bench-{i}-{uuid4().hex}]"
    return Device(
        id=uuid4(),
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        provider=ProviderName.EXPO,
        token=token,
        token_hash=sha256_hex(token),
        platform="ios" if i % 2 else "android",
        created_at=patient.enrolled_at,
        last_seen_at=now,
    )


def _treatment(
    patients: list[Patient], start: int, now: datetime
) -> tuple[list[TreatmentCourse], list[InfusionSession]]:
    courses: list[TreatmentCourse] = []
    sessions: list[InfusionSession] = []
    for i, patient in enumerate(patients, start):
        hour = timedelta(hours=i % 8)
        if i % 3 == 0:
            course = _course(patient, CourseStatus.ACTIVE, now)
            done = _session(patient, course, now - timedelta(days=1) - hour, SessionStatus.COMPLETED, now)
            sessions += [done, _session(patient, course, now + timedelta(days=3) + hour, SessionStatus.SCHEDULED, now)]
            courses.append(course)
        elif i % 6 == 1:
            course = _course(patient, CourseStatus.COMPLETED, now)
            sessions.append(_session(patient, course, now - timedelta(days=5) - hour, SessionStatus.COMPLETED, now))
            courses.append(course)
    return courses, sessions


def _course(patient: Patient, status: CourseStatus, now: datetime) -> TreatmentCourse:
    return TreatmentCourse(
        id=uuid4(),
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        indication="treatment-resistant depression",
        status=status,
        created_at=now - timedelta(days=10),
    )


def _session(
    patient: Patient, course: TreatmentCourse, starts: datetime, status: SessionStatus, now: datetime
) -> InfusionSession:
    completed = status is SessionStatus.COMPLETED
    return InfusionSession(
        id=uuid4(),
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        course_id=course.id,
        starts_at=starts,
        planned_duration_minutes=SESSION_MINUTES,
        status=status,
        started_at=starts if completed else None,
        ended_at=starts + timedelta(minutes=SESSION_MINUTES + 5) if completed else None,
        dose_mg=Decimal("35.00") if completed else None,
        created_at=now - timedelta(days=10),
        updated_at=now - timedelta(days=1),
    )
