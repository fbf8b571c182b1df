"""Who may write and read a diary: only the patient writes their own; clinic staff read; others see nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from api.domain.actor import Actor, Role
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import PatientStatus
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.diary_support import DELETE, LOG, MY_DIARY, PATIENT_DIARY, SYNC, UPDATE, entry_input, stored


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


@pytest_asyncio.fixture
async def entry(factory: Factory, alice: PatientUser) -> DiaryEntry:
    return await factory.entry(alice, note="mine")


def writes(entry_id: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Every diary mutation, aimed at `entry_id` where it takes one."""
    return [
        (LOG, {"input": entry_input(now - timedelta(hours=1))}),
        (SYNC, {"entries": [entry_input(now - timedelta(hours=1))]}),
        (UPDATE, {"id": entry_id, "input": {"painNow": 1}}),
        (DELETE, {"id": entry_id}),
    ]


async def assert_refused(gql: GraphQLClient, actor: Actor | None, code: str, entry_id: str, now: datetime) -> None:
    before = await stored()
    for document, variables in writes(entry_id, now):
        result = await gql(document, variables, actor=actor)
        assert result.codes == [code], document
        assert result.data is None
    assert await stored() == before


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADMIN])
async def test_clinic_staff_cannot_write_a_diary(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, entry: DiaryEntry, now: datetime, *, role: Role
) -> None:
    staff = await factory.staff(await alice.patient.clinic, role=role)
    await assert_refused(gql, staff.actor, "FORBIDDEN", str(entry.id), now)


async def test_a_signed_out_caller_is_unauthenticated_for_every_operation(
    gql: GraphQLClient, alice: PatientUser, entry: DiaryEntry, now: datetime
) -> None:
    await assert_refused(gql, None, "UNAUTHENTICATED", str(entry.id), now)
    for document, variables in ((MY_DIARY, {}), (PATIENT_DIARY, {"id": str(alice.patient.id)})):
        result = await gql(document, variables)
        assert result.codes == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("status", [PatientStatus.DISCHARGED, PatientStatus.INVITED])
async def test_a_closed_diary_cannot_be_written(
    gql: GraphQLClient, alice: PatientUser, entry: DiaryEntry, now: datetime, status: PatientStatus
) -> None:
    alice.patient.status = status
    await alice.patient.save(update_fields=["status"])
    await assert_refused(gql, alice.actor, "FORBIDDEN", str(entry.id), now)
    # What was written before stays readable to the patient.
    page = (await gql(MY_DIARY, {}, actor=alice.actor)).ok()["myDiary"]
    assert [e["node"]["id"] for e in page["edges"]] == [str(entry.id)]


async def test_an_erased_patient_finds_nothing(
    gql: GraphQLClient, alice: PatientUser, entry: DiaryEntry, now: datetime
) -> None:
    alice.patient.status = PatientStatus.ERASED
    await alice.patient.save(update_fields=["status"])
    await assert_refused(gql, alice.actor, "NOT_FOUND", str(entry.id), now)


async def test_a_paused_patient_may_still_write(gql: GraphQLClient, alice: PatientUser, now: datetime) -> None:
    alice.patient.status = PatientStatus.PAUSED
    await alice.patient.save(update_fields=["status"])
    (await gql(LOG, {"input": entry_input(now - timedelta(hours=1))}, actor=alice.actor)).ok()
    assert await DiaryEntry.all().count() == 1


async def test_another_patient_cannot_tell_an_entry_from_a_missing_one(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, entry: DiaryEntry
) -> None:
    bob = await factory.patient(await alice.patient.clinic)
    before = await stored()
    for document, variables in ((UPDATE, {"input": {"note": "not yours"}}), (DELETE, {})):
        theirs = await gql(document, {"id": str(entry.id), **variables}, actor=bob.actor)
        missing = await gql(document, {"id": str(uuid4()), **variables}, actor=bob.actor)
        assert theirs.codes == ["NOT_FOUND"]
        assert theirs.errors[0]["message"] == missing.errors[0]["message"]
        assert theirs.errors[0]["extensions"] == missing.errors[0]["extensions"]
    assert await stored() == before


async def test_a_patient_cannot_read_another_patients_diary(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, entry: DiaryEntry
) -> None:
    bob = await factory.patient(await alice.patient.clinic)
    result = await gql(PATIENT_DIARY, {"id": str(alice.patient.id)}, actor=bob.actor)
    assert result.codes == ["NOT_FOUND"]
    assert result.data == {"patient": None}
    own = (await gql(PATIENT_DIARY, {"id": str(alice.patient.id)}, actor=alice.actor)).ok()
    assert [e["node"]["id"] for e in own["patient"]["diary"]["edges"]] == [str(entry.id)]


async def test_staff_of_another_clinic_see_nothing(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, entry: DiaryEntry
) -> None:
    outsider = await factory.staff(await factory.clinic())
    result = await gql(PATIENT_DIARY, {"id": str(alice.patient.id)}, actor=outsider.actor)
    assert result.codes == ["NOT_FOUND"]
    assert result.data == {"patient": None}


async def test_staff_of_the_clinic_read_the_diary(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, entry: DiaryEntry
) -> None:
    staff = await factory.staff(await alice.patient.clinic)
    data = (await gql(PATIENT_DIARY, {"id": str(alice.patient.id)}, actor=staff.actor)).ok()
    assert [e["node"]["note"] for e in data["patient"]["diary"]["edges"]] == ["mine"]


async def test_my_diary_is_for_patients(gql: GraphQLClient, factory: Factory, alice: PatientUser) -> None:
    staff = await factory.staff(await alice.patient.clinic)
    result = await gql(MY_DIARY, {}, actor=staff.actor)
    assert result.codes == ["FORBIDDEN"]
