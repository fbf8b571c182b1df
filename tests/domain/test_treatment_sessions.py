"""TreatmentService refusals: each names its field and changes nothing, neither the session nor its prompts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from api.domain.errors import BadInput, Conflict, DomainError, Forbidden, NotFound
from api.domain.prompt.models import Prompt
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, SessionStatus, TreatmentCourse
from api.domain.treatment.service import SessionChange
from tests.factories import Factory, PatientUser, Staff


@dataclass
class World:
    staff: Staff
    alice: PatientUser
    carol: PatientUser  # another clinic's patient
    away_staff: Staff
    session: InfusionSession


@pytest.fixture
async def world(factory: Factory, services: Services, now: datetime) -> World:
    home, away = await factory.clinic(), await factory.clinic()
    staff, alice = await factory.staff(home), await factory.patient(home, joined=now - timedelta(days=1))
    session = await services.treatment.schedule(
        staff.actor,
        alice.patient.id,
        starts_at=now + timedelta(days=2),
        planned_duration_minutes=60,
        course_id=None,
        now=now,
    )
    return World(staff, alice, await factory.patient(away), await factory.staff(away), session)


async def state() -> list[tuple[object, ...]]:
    sessions = (
        await InfusionSession.all()
        .order_by("id")
        .values_list(
            "id", "starts_at", "planned_duration_minutes", "status", "started_at", "ended_at", "dose_mg", "notes"
        )
    )
    prompts = await Prompt.all().order_by("id").values_list("id", "status", "due_at", "expires_at", "updated_at")
    courses = await TreatmentCourse.all().order_by("id").values_list("id", "status")
    return [*sessions, *prompts, *courses]


Call = Callable[[Services, World, datetime], Awaitable[object]]
Later = Callable[[datetime], datetime]
NAIVE = datetime(2026, 12, 1, 10, 0)


def ahead(**delta: float) -> Later:
    return lambda now: now + timedelta(**delta)


def change(**values: object) -> Call:
    """An update of the world's session; datetime values may be given relative to `now`."""

    async def call(services: Services, w: World, now: datetime) -> object:
        resolved = {k: v(now) if callable(v) else v for k, v in values.items()}
        return await services.treatment.update(w.staff.actor, w.session.id, SessionChange(**resolved), now=now)  # type: ignore[arg-type]

    return call


IN_THREE_DAYS = ahead(days=3)


def schedule(starts: Later | datetime = IN_THREE_DAYS, minutes: int = 60, *, course: bool = False) -> Call:
    async def call(services: Services, w: World, now: datetime) -> object:
        return await services.treatment.schedule(
            w.staff.actor,
            w.alice.patient.id,
            starts_at=starts(now) if callable(starts) else starts,
            planned_duration_minutes=minutes,
            course_id=uuid4() if course else None,
            now=now,
        )

    return call


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (schedule(NAIVE), BadInput, "starts_at"),
        (schedule(ahead(days=731)), BadInput, "starts_at"),
        (schedule(minutes=0), BadInput, "planned_duration_minutes"),
        (schedule(minutes=24 * 60 * 5 + 1), BadInput, "planned_duration_minutes"),
        (schedule(course=True), NotFound, "course_id"),
        (change(starts_at=NAIVE), BadInput, "starts_at"),
        (change(starts_at=ahead(days=731)), BadInput, "starts_at"),
        (change(planned_duration_minutes=-5), BadInput, "planned_duration_minutes"),
        (change(notes="x" * 4001), BadInput, "notes"),
        (change(dose_mg=0.0), BadInput, "dose_mg"),
        (change(dose_mg=12.345), BadInput, "dose_mg"),
        (change(dose_mg=float("nan")), BadInput, "dose_mg"),
        (change(status=SessionStatus.COMPLETED), BadInput, "ended_at"),
        (change(started_at=NAIVE), BadInput, "started_at"),
        # What happened cannot have happened later than now.
        (change(status=SessionStatus.COMPLETED, ended_at=ahead(days=2, hours=2)), BadInput, "ended_at"),
        (change(started_at=ahead(hours=1)), BadInput, "started_at"),
        (
            change(status=SessionStatus.COMPLETED, started_at=ahead(hours=-1), ended_at=ahead(hours=-2)),
            BadInput,
            "ended_at",
        ),
    ],
)
async def test_refusals_name_the_field_and_change_nothing(
    *, services: Services, world: World, now: datetime, call: Call, error: type[DomainError], field: str
) -> None:
    before = await state()

    with pytest.raises(error) as refused:
        await call(services, world, now)

    assert refused.value.field == field
    assert await state() == before


async def test_a_cancelled_session_cannot_change_again(services: Services, world: World, now: datetime) -> None:
    await change(status=SessionStatus.CANCELLED)(services, world, now)
    before = await state()

    for call in (change(starts_at=ahead(days=4)), change(status=SessionStatus.SCHEDULED), change(notes="again")):
        with pytest.raises(Conflict) as refused:
            await call(services, world, now)
        assert refused.value.field == "id"

    assert await state() == before


async def test_a_completed_session_cannot_be_moved(services: Services, world: World, now: datetime) -> None:
    later = now + timedelta(days=2, hours=2)
    await change(status=SessionStatus.COMPLETED, ended_at=ahead(hours=-1))(services, world, later)
    before = await state()

    with pytest.raises(Conflict) as refused:
        await change(starts_at=ahead(days=5))(services, world, later)

    assert refused.value.field == "starts_at"
    assert await state() == before


async def test_who_may_schedule_and_update(services: Services, world: World, now: datetime) -> None:
    before = await state()

    with pytest.raises(Forbidden):
        await services.treatment.schedule(
            world.alice.actor,
            world.alice.patient.id,
            starts_at=now + timedelta(days=3),
            planned_duration_minutes=60,
            course_id=None,
            now=now,
        )
    with pytest.raises(Forbidden):
        await services.treatment.update(world.alice.actor, world.session.id, SessionChange(notes="mine"), now=now)
    # Another clinic's staff: the patient and the session do not exist for them.
    with pytest.raises(NotFound):
        await services.treatment.schedule(
            world.away_staff.actor,
            world.alice.patient.id,
            starts_at=now + timedelta(days=3),
            planned_duration_minutes=60,
            course_id=None,
            now=now,
        )
    with pytest.raises(NotFound) as missing:
        await services.treatment.update(world.away_staff.actor, world.session.id, SessionChange(notes="x"), now=now)
    assert missing.value.field == "id"
    assert await state() == before
    # Another patient's course cannot hold this patient's session.
    carol_course = await TreatmentCourse.create(
        clinic_id=world.carol.patient.clinic_id, patient_id=world.carol.patient.id, created_at=now
    )
    before = await state()
    with pytest.raises(NotFound) as foreign:
        await services.treatment.schedule(
            world.staff.actor,
            world.alice.patient.id,
            starts_at=now + timedelta(days=3),
            planned_duration_minutes=60,
            course_id=carol_course.id,
            now=now,
        )
    assert foreign.value.field == "course_id"
    assert await state() == before
