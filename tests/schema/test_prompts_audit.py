"""Staff reads of a patient's sessions, courses, prompts and adherence, and staff scheduling writes, leave audit
events; the patient reading their own leaves none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from api.domain.actor import Actor, Role
from api.domain.audit.models import AuditEvent
from api.domain.prompt.models import PromptPlan
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

READS = {
    "Sessions": "query Sessions($id: ID!) { patient(id: $id) { sessions { id } } }",
    "Courses": "query Courses($id: ID!) { patient(id: $id) { courses { id } } }",
    "Prompts": "query Prompts($id: ID!) { patient(id: $id) { prompts { id } } }",
    "Adherence": "query Adherence($id: ID!) { patient(id: $id) { adherence { rate } } }",
    "Chart": """
      query Chart($id: ID!) {
        patient(id: $id) { sessions { id } courses { id } prompts { id } adherence { rate } }
      }
    """,
}
SCHEDULE = "mutation Schedule($input: ScheduleInfusionInput!) { scheduleInfusion(input: $input) { id } }"
UPDATE = "mutation Move($id: ID!, $input: UpdateInfusionInput!) { updateInfusion(id: $id, input: $input) { id } }"
ENROLL = (
    "mutation Enroll($patientId: ID!, $planId: ID!) { enrollPatient(patientId: $patientId, planId: $planId) { id } }"
)


@dataclass
class Clinic:
    clinician: Staff
    admin: Staff
    alice: PatientUser
    session: UUID


@pytest.fixture
async def home(factory: Factory, now: datetime) -> Clinic:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, name="Alice", joined=now - timedelta(days=3))
    clinician = await factory.staff(clinic)
    session = await factory.services.treatment.schedule(
        clinician.actor,
        alice.patient.id,
        starts_at=now + timedelta(days=1),
        planned_duration_minutes=40,
        course_id=None,
        now=now,
    )
    # Factories write through the services; start every test from an empty trail.
    await AuditEvent.all().delete()
    return Clinic(clinician, await factory.staff(clinic, Role.ADMIN), alice, session.id)


def _staff(home: Clinic, role: str) -> Actor:
    return home.clinician.actor if role == "clinician" else home.admin.actor


@pytest.mark.parametrize("operation", list(READS))
@pytest.mark.parametrize("role", ["clinician", "admin"])
async def test_a_staff_read_leaves_one_event_for_the_operation(
    operation: str, role: str, home: Clinic, gql: GraphQLClient, now: datetime
) -> None:
    actor = _staff(home, role)

    (await gql(READS[operation], {"id": str(home.alice.patient.id)}, actor=actor, request_id="req-42")).ok()

    events = await AuditEvent.all().values(
        "actor_id", "actor_role", "patient_id", "operation", "request_id", "ip", "created_at", "clinic_id"
    )
    assert events == [
        {
            "actor_id": actor.account_id,
            "actor_role": role.upper(),
            "patient_id": home.alice.patient.id,
            "operation": operation,
            "request_id": "req-42",
            "ip": "198.51.100.1",
            "created_at": now,
            "clinic_id": actor.clinic_id,
        }
    ]


@pytest.mark.parametrize("operation", list(READS))
async def test_the_patient_reading_their_own_leaves_none(operation: str, home: Clinic, gql: GraphQLClient) -> None:
    (await gql(READS[operation], {"id": str(home.alice.patient.id)}, actor=home.alice.actor)).ok()

    assert await AuditEvent.all().count() == 0


async def test_staff_scheduling_writes_are_audited_with_their_object(
    home: Clinic, gql: GraphQLClient, now: datetime
) -> None:
    actor, alice = home.clinician.actor, str(home.alice.patient.id)
    plan = await PromptPlan.get(clinic_id=actor.clinic_id)
    booking = {"patientId": alice, "startsAt": (now + timedelta(days=5)).isoformat(), "plannedDurationMinutes": 30}

    booked = (await gql(SCHEDULE, {"input": booking}, actor=actor)).ok()["scheduleInfusion"]["id"]
    (await gql(UPDATE, {"id": str(home.session), "input": {"notes": "Moved to room 2."}}, actor=actor)).ok()
    (await gql(ENROLL, {"patientId": alice, "planId": str(plan.id)}, actor=actor)).ok()

    events = await AuditEvent.all().order_by("operation").values_list("operation", "action", "object_id", "patient_id")
    assert events == [
        ("Enroll", "patient.enroll", plan.id, home.alice.patient.id),
        ("Move", "session.update", home.session, home.alice.patient.id),
        ("Schedule", "session.schedule", UUID(booked), home.alice.patient.id),
    ]
