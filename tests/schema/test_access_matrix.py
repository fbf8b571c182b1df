"""Who may call what: for every protected field, the unauthenticated caller, the wrong actor and the right one.

A patient the actor may not see answers NOT_FOUND exactly as an id that does not exist; a role that may never
call a field is FORBIDDEN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.patient.models import Patient, PatientStatus
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

ME = "query Me { me { id role } }"
MY_DIARY = "query MyDiary { myDiary(first: 5) { edges { node { id painNow } } } }"
PATIENTS = "query Patients { patients(first: 5) { edges { node { id } } } }"
PATIENT = "query Patient($id: ID!) { patient(id: $id) { id displayName } }"
PATIENT_DIARY = "query PatientDiary($id: ID!) { patient(id: $id) { id diary(first: 5) { edges { node { id } } } } }"
AUDIT = "query Audit { auditEvents(first: 5) { edges { node { id } } } }"
INVITE = """
mutation Invite { invitePatient(input: {displayName: "New Person", timezone: "Europe/Berlin"}) { code } }
"""

OPERATIONS = {
    "me": (ME, False),
    "myDiary": (MY_DIARY, False),
    "patients": (PATIENTS, False),
    "patient": (PATIENT, True),
    "patient.diary": (PATIENT_DIARY, True),
    "auditEvents": (AUDIT, False),
    "invitePatient": (INVITE, False),
}


@dataclass
class World:
    clinician: Staff
    admin: Staff
    alice: PatientUser
    bob: PatientUser
    foreign_clinician: Staff
    foreign_admin: Staff


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    home, away = await factory.clinic("Home"), await factory.clinic("Away")
    alice = await factory.patient(home, name="Alice")
    bob = await factory.patient(home, name="Bob")
    await factory.entry(alice, recorded_at=now - timedelta(hours=2), pain_now=4)
    await factory.entry(bob, recorded_at=now - timedelta(hours=2), pain_now=6)
    return World(
        clinician=await factory.staff(home),
        admin=await factory.staff(home, Role.ADMIN),
        alice=alice,
        bob=bob,
        foreign_clinician=await factory.staff(away),
        foreign_admin=await factory.staff(away, Role.ADMIN),
    )


def _variables(needs_id: bool, patient_id: object) -> dict[str, Any] | None:
    return {"id": str(patient_id)} if needs_id else None


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_unauthenticated_callers_are_refused(name: str, world: World, gql: GraphQLClient) -> None:
    query, needs_id = OPERATIONS[name]

    result = await gql(query, _variables(needs_id, world.alice.patient.id), actor=None)

    assert result.codes == ["UNAUTHENTICATED"], result.errors
    assert result.data is None or all(value is None for value in result.data.values())


@pytest.mark.parametrize("query", [PATIENT, PATIENT_DIARY], ids=["patient", "patient.diary"])
@pytest.mark.parametrize("who", ["other patient", "other clinic's clinician", "other clinic's admin"])
async def test_someone_elses_patient_is_not_found_exactly_like_a_missing_one(
    query: str, who: str, world: World, gql: GraphQLClient
) -> None:
    actor = {
        "other patient": world.bob.actor,
        "other clinic's clinician": world.foreign_clinician.actor,
        "other clinic's admin": world.foreign_admin.actor,
    }[who]

    hidden = await gql(query, {"id": str(world.alice.patient.id)}, actor=actor)
    missing = await gql(query, {"id": str(uuid4())}, actor=actor)

    assert hidden.codes == ["NOT_FOUND"]
    assert hidden.data == missing.data == {"patient": None}
    assert hidden.errors == missing.errors
    assert "Alice" not in repr(hidden.errors)


@pytest.mark.parametrize(
    ("name", "who"),
    [
        ("patients", "patient"),
        ("invitePatient", "patient"),
        ("auditEvents", "patient"),
        ("auditEvents", "clinician"),
        ("myDiary", "clinician"),
        ("myDiary", "admin"),
    ],
)
async def test_role_gates_are_forbidden(name: str, who: str, world: World, gql: GraphQLClient) -> None:
    query, _ = OPERATIONS[name]
    actor = {"patient": world.alice.actor, "clinician": world.clinician.actor, "admin": world.admin.actor}[who]

    result = await gql(query, actor=actor)

    assert result.codes == ["FORBIDDEN"], result.errors
    assert result.data is None


async def test_a_refused_invite_creates_nothing(world: World, gql: GraphQLClient) -> None:
    before = await Patient.all().count()

    await gql(INVITE, actor=world.alice.actor)

    assert await Patient.all().count() == before


async def test_the_patient_reads_their_own_data(world: World, gql: GraphQLClient) -> None:
    actor, own = world.alice.actor, str(world.alice.patient.id)

    me = (await gql(ME, actor=actor)).ok()["me"]
    diary = (await gql(MY_DIARY, actor=actor)).ok()["myDiary"]["edges"]
    patient = (await gql(PATIENT, {"id": own}, actor=actor)).ok()["patient"]
    patient_diary = (await gql(PATIENT_DIARY, {"id": own}, actor=actor)).ok()["patient"]["diary"]["edges"]

    assert me == {"id": str(world.alice.account.id), "role": "PATIENT"}
    assert [e["node"]["painNow"] for e in diary] == [4]
    assert patient == {"id": own, "displayName": "Alice"}
    assert [e["node"]["id"] for e in patient_diary] == [e["node"]["id"] for e in diary]


@pytest.mark.parametrize("role", ["clinician", "admin"])
async def test_staff_read_their_clinics_patients_and_invite(role: str, world: World, gql: GraphQLClient) -> None:
    actor = world.clinician.actor if role == "clinician" else world.admin.actor
    alice = str(world.alice.patient.id)

    listed = (await gql(PATIENTS, actor=actor)).ok()["patients"]["edges"]
    patient = (await gql(PATIENT, {"id": alice}, actor=actor)).ok()["patient"]
    diary = (await gql(PATIENT_DIARY, {"id": alice}, actor=actor)).ok()["patient"]["diary"]["edges"]
    invite = (await gql(INVITE, actor=actor)).ok()["invitePatient"]

    assert {e["node"]["id"] for e in listed} == {alice, str(world.bob.patient.id)}
    assert patient == {"id": alice, "displayName": "Alice"}
    assert len(diary) == 1
    assert len(invite["code"]) == 19


async def test_the_admin_reads_the_audit_trail(world: World, gql: GraphQLClient) -> None:
    await gql(PATIENT, {"id": str(world.alice.patient.id)}, actor=world.clinician.actor)

    events = (await gql(AUDIT, actor=world.admin.actor)).ok()["auditEvents"]["edges"]

    stored = await AuditEvent.filter(clinic_id=world.admin.actor.clinic_id)
    assert stored
    assert {e["node"]["id"] for e in events} == {str(e.id) for e in stored}


async def test_another_clinics_admin_sees_none_of_its_audit_trail(world: World, gql: GraphQLClient) -> None:
    await gql(PATIENT, {"id": str(world.alice.patient.id)}, actor=world.clinician.actor)
    by_patient = "query($p: ID) { auditEvents(patientId: $p) { edges { node { id } } } }"

    everything = (await gql(AUDIT, actor=world.foreign_admin.actor)).ok()["auditEvents"]["edges"]
    alices = (await gql(by_patient, {"p": str(world.alice.patient.id)}, actor=world.foreign_admin.actor)).ok()

    assert everything == []
    assert alices["auditEvents"]["edges"] == []


async def test_an_erased_patient_is_not_found_even_for_their_clinic(world: World, gql: GraphQLClient) -> None:
    await Patient.filter(id=world.bob.patient.id).update(status=PatientStatus.ERASED)

    erased = await gql(PATIENT, {"id": str(world.bob.patient.id)}, actor=world.clinician.actor)
    missing = await gql(PATIENT, {"id": str(uuid4())}, actor=world.clinician.actor)

    assert erased.codes == ["NOT_FOUND"]
    assert erased.errors == missing.errors
