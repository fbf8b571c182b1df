"""The authorization matrix: every query, mutation and subscription of the schema, called by six callers.

The table (tests/schema/authz_support.py) has a row for every operation and a cell for each caller: anonymous,
patient A, patient B of the same clinic, a clinician of A's clinic, a clinician of another clinic and an admin of
A's clinic. Each cell is asserted: ALLOW (no error, every root field answered) or exactly its error code, with no
data and no audit event. A record the caller may not see is NOT_FOUND exactly as a missing one, and nothing of
Alice's reaches anyone who is not entitled to it. An operation the schema gains without a row fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import pytest_asyncio

from api.domain.audit.models import AuditEvent
from api.domain.patient.models import Patient, PatientStatus
from api.domain.services import Services
from tests.conftest import Database
from tests.schema.authz_support import (
    ALLOW,
    CLINICIAN_2,
    NOT_FOUND,
    OUTCOMES,
    OUTSIDERS,
    SEATS,
    TABLE,
    Row,
    Stage,
    fresh_request_id,
    leaks,
    schema_operations,
    staged,
)

ME = "query Me { me { id role } }"
MY_DIARY = "query MyDiary { myDiary(first: 5) { edges { node { id painNow } } } }"
PATIENT = "query Patient($id: ID!) { patient(id: $id) { id displayName } }"
PATIENT_DIARY = "query PatientDiary($id: ID!) { patient(id: $id) { id diary(first: 5) { edges { node { id } } } } }"
PATIENTS = 'query Patients { patients(first: 5, search: "bo") { edges { node { id } } } }'
INVITE = """
mutation Invite { invitePatient(input: {displayName: "New Person", timezone: "Europe/Berlin"}) { code } }
"""


@pytest_asyncio.fixture(scope="module")
async def stage(database: Database, services: Services) -> AsyncIterator[Stage]:
    async with staged(services) as shared:
        yield shared


def test_every_operation_of_the_schema_has_a_row_and_every_row_an_operation() -> None:
    served = schema_operations()
    covered = {(row.kind, row.field) for row in TABLE}

    without_row = sorted(f"{kind} {name}" for kind, name in served - covered)
    stale = sorted(f"{kind} {name}" for kind, name in covered - served)

    assert not without_row, f"add a row to the authorization matrix (authz_support.TABLE) for: {without_row}"
    assert not stale, f"rows for operations the schema no longer has: {stale}"


def test_every_row_has_a_unique_name_and_an_outcome_for_every_caller() -> None:
    names = [row.name for row in TABLE]

    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for row in TABLE:
        assert tuple(row.cells) == SEATS, row.name
        assert set(row.cells.values()) <= set(OUTCOMES), row.name


CELLS = [pytest.param(row, seat, id=f"{row.name}-{seat}") for row in TABLE for seat in SEATS]


@pytest.mark.parametrize(("row", "seat"), CELLS)
async def test_cell(row: Row, seat: str, stage: Stage) -> None:
    expected = row.cells[seat]
    request_id = fresh_request_id(row, seat)

    call, result = await stage.run(row, seat, request_id=request_id)

    if expected == ALLOW:
        assert result.errors == [], result.errors
        assert result.data is not None
        assert all(value is not None for value in result.data.values()), result.data
    else:
        assert result.codes == [expected], result.errors
        assert result.data is None or all(value is None for value in result.data.values()), result.data
        assert await AuditEvent.filter(request_id=request_id).count() == 0
    if expected == NOT_FOUND:
        assert call.missing is not None, f"{row.name}: a NOT_FOUND row needs `missing` variables to compare with"
        _, missing = await stage.run(row, seat, request_id=request_id, variables=call.missing)
        assert (result.data, result.errors) == (missing.data, missing.errors)
    if seat in OUTSIDERS:
        assert leaks(result, stage.markers() | call.markers) == []


HIDDEN_FROM_THE_OTHER_CLINIC = [pytest.param(row, id=row.name) for row in TABLE if row.cells[CLINICIAN_2] == NOT_FOUND]


@pytest.mark.parametrize("row", HIDDEN_FROM_THE_OTHER_CLINIC)
async def test_the_other_clinics_admin_finds_alices_records_no_more_than_its_clinician(row: Row, stage: Stage) -> None:
    call = await row.prepare(stage, CLINICIAN_2)
    admin = stage.world.foreign_admin.actor

    hidden = await stage.gql(row.document, call.variables, actor=admin)
    missing = await stage.gql(row.document, call.missing, actor=admin)

    assert hidden.codes == [NOT_FOUND], hidden.errors
    assert (hidden.data, hidden.errors) == (missing.data, missing.errors)
    assert leaks(hidden, stage.markers() | call.markers) == []


# --- beyond allowed or refused: what the allowed callers see, and what a refusal leaves ------------------------


async def test_the_patient_reads_their_own_data(stage: Stage) -> None:
    alice = stage.world.alice
    actor, own = alice.actor, str(alice.patient.id)

    me = (await stage.gql(ME, actor=actor)).ok()["me"]
    diary = (await stage.gql(MY_DIARY, actor=actor)).ok()["myDiary"]["edges"]
    patient = (await stage.gql(PATIENT, {"id": own}, actor=actor)).ok()["patient"]
    patient_diary = (await stage.gql(PATIENT_DIARY, {"id": own}, actor=actor)).ok()["patient"]["diary"]["edges"]

    assert me == {"id": str(alice.account.id), "role": "PATIENT"}
    assert str(stage.alice_entry.id) in {e["node"]["id"] for e in diary}
    assert patient == {"id": own, "displayName": "Alice"}
    assert [e["node"]["id"] for e in patient_diary] == [e["node"]["id"] for e in diary]


async def test_another_patient_of_the_clinic_reads_only_their_own_diary(stage: Stage) -> None:
    diary = (await stage.gql(MY_DIARY, actor=stage.world.bob.actor)).ok()["myDiary"]["edges"]

    assert str(stage.alice_entry.id) not in {e["node"]["id"] for e in diary}


@pytest.mark.parametrize("who", ["clinician", "admin"])
async def test_staff_read_their_clinics_patients(who: str, stage: Stage) -> None:
    world = stage.world
    actor = world.clinician.actor if who == "clinician" else world.admin.actor
    alice = str(world.alice.patient.id)

    listed = (await stage.gql(PATIENTS, actor=actor)).ok()["patients"]["edges"]
    patient = (await stage.gql(PATIENT, {"id": alice}, actor=actor)).ok()["patient"]
    diary = (await stage.gql(PATIENT_DIARY, {"id": alice}, actor=actor)).ok()["patient"]["diary"]["edges"]

    # "bo": Bob, not Alice; Dave (the other clinic's) never.
    assert {e["node"]["id"] for e in listed} == {str(world.bob.patient.id)}
    assert patient == {"id": alice, "displayName": "Alice"}
    assert str(stage.alice_entry.id) in {e["node"]["id"] for e in diary}


async def test_a_refused_invite_creates_nothing(stage: Stage) -> None:
    before = await Patient.all().count()

    result = await stage.gql(INVITE, actor=stage.world.alice.actor)

    assert result.codes == ["FORBIDDEN"]
    assert await Patient.all().count() == before


async def test_an_erased_patient_is_not_found_even_for_their_clinic(stage: Stage) -> None:
    erased = await stage.factory.patient(stage.world.home, name="Erin")
    await Patient.filter(id=erased.patient.id).update(status=PatientStatus.ERASED)
    clinician = stage.world.clinician.actor

    hidden = await stage.gql(PATIENT, {"id": str(erased.patient.id)}, actor=clinician)
    missing = await stage.gql(PATIENT, {"id": str(uuid4())}, actor=clinician)

    assert hidden.codes == ["NOT_FOUND"]
    assert (hidden.data, hidden.errors) == (missing.data, missing.errors)
