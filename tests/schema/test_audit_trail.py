"""The audit trail: one event per operation and patient for every staff read or write, none for the patient."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.domain.actor import Role
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.patient.models import Invite
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

PATIENT_WITH_DIARY = """
query PatientWithDiary($id: ID!) {
  patient(id: $id) { displayName lastEntry { painNow } diary(first: 10) { edges { node { painNow } } } }
}
"""
PATIENTS = "query Roster($first: Int) { patients(first: $first) { edges { node { id email lastEntry { painNow } } } } }"
AUDIT = """
query Trail($patientId: ID, $first: Int, $after: String) {
  auditEvents(patientId: $patientId, first: $first, after: $after) {
    edges { cursor node { id action actorId actorRole patientId objectId operation requestId ip createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@dataclass
class Clinic:
    clinician: Staff
    admin: Staff
    alice: PatientUser
    bob: PatientUser
    carol: PatientUser


@pytest.fixture
async def home(factory: Factory, now: datetime) -> Clinic:
    clinic = await factory.clinic()
    people = [await factory.patient(clinic, name=n) for n in ("Alice", "Bob", "Carol")]
    for who in people:
        await factory.entry(who, recorded_at=now - timedelta(hours=3), pain_now=3)
    # Factories write through the services; start every test from an empty trail.
    await AuditEvent.all().delete()
    return Clinic(await factory.staff(clinic), await factory.staff(clinic, Role.ADMIN), *people)


async def _subjects(event: AuditEvent) -> set[UUID]:
    return {s.patient_id for s in await AuditSubject.filter(event_id=event.id)}


async def test_a_staff_read_of_a_patient_and_their_diary_writes_one_event(
    home: Clinic, gql: GraphQLClient, now: datetime
) -> None:
    alice = home.alice.patient.id

    (
        await gql(
            PATIENT_WITH_DIARY, {"id": str(alice)}, actor=home.clinician.actor, ip="192.0.2.44", request_id="req-42"
        )
    ).ok()

    events = await AuditEvent.all()
    assert len(events) == 1
    event = events[0]
    assert (event.clinic_id, event.actor_id, event.actor_role) == (
        home.clinician.actor.clinic_id,
        home.clinician.account.id,
        "CLINICIAN",
    )
    assert (event.action, event.patient_id, event.operation) == ("patient.read", alice, "PatientWithDiary")
    assert (event.request_id, event.ip, event.created_at) == ("req-42", "192.0.2.44", now)
    assert await _subjects(event) == {alice}


async def test_a_diary_read_alone_is_audited(home: Clinic, gql: GraphQLClient) -> None:
    query = "query($id: ID!) { patient(id: $id) { diary { edges { node { id } } } } }"

    (await gql(query, {"id": str(home.bob.patient.id)}, actor=home.admin.actor)).ok()

    event = await AuditEvent.get()
    assert (event.patient_id, event.actor_role, event.operation) == (home.bob.patient.id, "ADMIN", "patient")
    assert await _subjects(event) == {home.bob.patient.id}


async def test_the_same_patient_twice_in_one_operation_is_one_event_two_patients_are_two(
    home: Clinic, gql: GraphQLClient
) -> None:
    query = """
    query Twice($a: ID!, $b: ID!) {
      first: patient(id: $a) { displayName }
      again: patient(id: $a) { diary { edges { node { id } } } }
      other: patient(id: $b) { displayName }
    }
    """
    alice, bob = home.alice.patient.id, home.bob.patient.id

    (await gql(query, {"a": str(alice), "b": str(bob)}, actor=home.clinician.actor)).ok()

    events = await AuditEvent.all()
    assert sorted(str(e.patient_id) for e in events) == sorted([str(alice), str(bob)])
    assert {e.operation for e in events} == {"Twice"}


async def test_each_operation_writes_its_own_event(home: Clinic, gql: GraphQLClient) -> None:
    for _ in range(2):
        (await gql(PATIENT_WITH_DIARY, {"id": str(home.alice.patient.id)}, actor=home.clinician.actor)).ok()

    assert await AuditEvent.filter(patient_id=home.alice.patient.id).count() == 2


async def test_the_patient_list_writes_one_event_covering_the_listed_patients(home: Clinic, gql: GraphQLClient) -> None:
    (await gql(PATIENTS, {"first": 2}, actor=home.clinician.actor, request_id="req-list")).ok()

    event = await AuditEvent.get()
    assert (event.action, event.patient_id, event.operation, event.request_id) == (
        "patient.list",
        None,
        "Roster",
        "req-list",
    )
    # Only the page that was shown: Carol was not on it.
    assert await _subjects(event) == {home.alice.patient.id, home.bob.patient.id}


async def test_an_empty_list_writes_nothing(home: Clinic, gql: GraphQLClient) -> None:
    query = 'query { patients(search: "nobody by this name") { edges { node { id } } } }'

    (await gql(query, actor=home.clinician.actor)).ok()

    assert await AuditEvent.all().count() == 0


async def test_an_invite_is_audited_as_a_write(home: Clinic, gql: GraphQLClient, now: datetime) -> None:
    query = """
    mutation Invite { invitePatient(input: {displayName: "Dora", timezone: "Europe/Rome"}) { patient { id } } }
    """

    patient_id = UUID((await gql(query, actor=home.clinician.actor)).ok()["invitePatient"]["patient"]["id"])

    event = await AuditEvent.get()
    invite = await Invite.get(patient_id=patient_id)
    assert (event.action, event.patient_id, event.object_id, event.operation, event.created_at) == (
        "patient.invite",
        patient_id,
        invite.id,
        "Invite",
        now,
    )


async def test_patients_reading_their_own_data_write_nothing(home: Clinic, gql: GraphQLClient) -> None:
    actor, own = home.alice.actor, str(home.alice.patient.id)
    reads = [
        ("query { me { patient { displayName lastEntry { painNow } } } }", None),
        ("query { myDiary { edges { node { painNow } } } }", None),
        (PATIENT_WITH_DIARY, {"id": own}),
    ]

    for query, variables in reads:
        (await gql(query, variables, actor=actor)).ok()

    assert await AuditEvent.all().count() == 0


async def test_refused_reads_record_nothing_against_the_patient(
    home: Clinic, factory: Factory, gql: GraphQLClient
) -> None:
    stranger = await factory.staff(await factory.clinic())

    for actor in (stranger.actor, home.bob.actor):
        result = await gql(PATIENT_WITH_DIARY, {"id": str(home.alice.patient.id)}, actor=actor)
        assert result.codes == ["NOT_FOUND"]

    assert await AuditSubject.filter(patient_id=home.alice.patient.id).count() == 0


async def _trail(gql: GraphQLClient, home: Clinic, **variables: Any) -> dict[str, Any]:
    trail: dict[str, Any] = (await gql(AUDIT, variables, actor=home.admin.actor)).ok()["auditEvents"]
    return trail


async def test_the_admin_reads_events_with_their_details(home: Clinic, gql: GraphQLClient, now: datetime) -> None:
    alice = str(home.alice.patient.id)
    (await gql(PATIENT_WITH_DIARY, {"id": alice}, actor=home.clinician.actor, ip="192.0.2.9", request_id="r-9")).ok()

    nodes = [e["node"] for e in (await _trail(gql, home))["edges"]]

    assert len(nodes) == 1
    node = nodes[0]
    assert node["action"] == "patient.read"
    assert (node["actorId"], node["actorRole"]) == (str(home.clinician.account.id), "CLINICIAN")
    assert (node["patientId"], node["objectId"], node["operation"]) == (alice, None, "PatientWithDiary")
    assert (node["requestId"], node["ip"]) == ("r-9", "192.0.2.9")
    assert datetime.fromisoformat(node["createdAt"]) == now


async def test_the_trail_filters_by_patient_newest_first_across_pages(
    home: Clinic, gql: GraphQLClient, now: datetime
) -> None:
    alice, bob = str(home.alice.patient.id), str(home.bob.patient.id)
    staff = home.clinician.actor
    expected: list[str] = []
    for minute in range(3):
        at = now + timedelta(minutes=minute)
        # Two events at the very same instant: the id breaks the tie in the cursor.
        for _ in range(2):
            await gql(PATIENT_WITH_DIARY, {"id": alice}, actor=staff, now=at, request_id=f"alice-{minute}")
            expected.append(f"alice-{minute}")
        await gql(PATIENT_WITH_DIARY, {"id": bob}, actor=staff, now=at, request_id=f"bob-{minute}")
    await gql(PATIENTS, {"first": 5}, actor=staff, now=now + timedelta(minutes=5), request_id="list")
    expected.append("list")

    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(10):
        page = await _trail(gql, home, patientId=alice, first=3, after=after)
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert len({n["id"] for n in seen}) == len(seen) == 7
    assert sorted(n["requestId"] for n in seen) == sorted(expected)
    times = [datetime.fromisoformat(n["createdAt"]) for n in seen]
    assert times == sorted(times, reverse=True)
    assert seen[0]["requestId"] == "list"
    everything = await _trail(gql, home, first=100)
    assert len(everything["edges"]) == 10


async def test_the_trail_never_shows_another_clinics_events(home: Clinic, factory: Factory, gql: GraphQLClient) -> None:
    away = await factory.clinic()
    their_patient = await factory.patient(away)
    their_staff = await factory.staff(away)
    await AuditEvent.all().delete()
    (await gql(PATIENT_WITH_DIARY, {"id": str(their_patient.patient.id)}, actor=their_staff.actor)).ok()
    (await gql(PATIENT_WITH_DIARY, {"id": str(home.alice.patient.id)}, actor=home.clinician.actor)).ok()

    mine = await _trail(gql, home)
    theirs_by_id = await _trail(gql, home, patientId=str(their_patient.patient.id))

    assert [e["node"]["patientId"] for e in mine["edges"]] == [str(home.alice.patient.id)]
    assert theirs_by_id["edges"] == []


async def test_the_trail_for_an_unknown_patient_is_empty(home: Clinic, gql: GraphQLClient) -> None:
    (await gql(PATIENT_WITH_DIARY, {"id": str(home.alice.patient.id)}, actor=home.clinician.actor)).ok()

    assert (await _trail(gql, home, patientId=str(uuid4())))["edges"] == []


async def test_the_trail_refuses_pages_above_100(home: Clinic, gql: GraphQLClient) -> None:
    result = await gql(AUDIT, {"first": 101}, actor=home.admin.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["first"])


async def test_pages_hold_across_sub_second_timestamps(home: Clinic, gql: GraphQLClient, now: datetime) -> None:
    offsets = [timedelta(0), timedelta(microseconds=1), timedelta(milliseconds=500), timedelta(seconds=1)]
    for i, offset in enumerate(offsets):
        await gql(PATIENTS, actor=home.clinician.actor, now=now + offset, request_id=f"r{i}")

    seen: list[str] = []
    after = None
    for _ in range(len(offsets) + 1):
        page = await _trail(gql, home, first=1, after=after)
        seen += [e["node"]["requestId"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == ["r3", "r2", "r1", "r0"]


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


SOME_ID = "6f1c1c8e-0d7e-4a57-9a55-0b0f8d3c2a11"


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="not-base64-json"),
        pytest.param(_cursor(["2026-11-26T12:00:00+00:00", 5]), id="numeric-id"),
        pytest.param(_cursor(["2026-11-26T12:00:00+00:00", "not-a-uuid"]), id="bad-id"),
        pytest.param(_cursor(["yesterday", SOME_ID]), id="bad-instant"),
        pytest.param(_cursor([None, SOME_ID]), id="null-instant"),
        # No offset: an instant we could only guess at.
        pytest.param(_cursor(["2026-11-26T12:00:00", SOME_ID]), id="naive-instant"),
        pytest.param(_cursor(["0001-01-01T00:00:00+01:00", SOME_ID]), id="out-of-range"),
        pytest.param(_cursor({"a": 1}), id="object"),
    ],
)
async def test_a_cursor_that_is_not_ours_is_bad_input(cursor: str, home: Clinic, gql: GraphQLClient) -> None:
    result = await gql(AUDIT, {"after": cursor}, actor=home.admin.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["after"])
