"""Reading questionnaire responses back (Patient.questionnaires, myQuestionnaires) and the instrument definitions:
who may, in what order, page by page, and the audit trail of staff reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.errors import NotFound
from api.domain.patient.models import PatientStatus
from api.domain.questionnaire.service import QuestionnaireInput
from api.domain.services import Services
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient
from tests.schema.questionnaire_support import MY_QUESTIONNAIRES, PATIENT_QUESTIONNAIRES

INSTRUMENTS = """
query {
  instruments {
    id version title licenceNote answeredBy recallPeriod recallDays loincPanel loincTotal scoring
    bands { min label }
    items { id text loinc kind required scored field options { code label loinc } }
  }
}
"""
INSTRUMENT = "query($id: String!, $version: String) { instrument(id: $id, version: $version) { id version } }"


@dataclass
class Clinic:
    alice: PatientUser
    bob: PatientUser
    clinician: Staff
    # Alice's responses, oldest first: (instrument, response id).
    submitted: list[tuple[str, str]]


@pytest_asyncio.fixture
async def home(factory: Factory, services: Services, now: datetime) -> Clinic:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, name="Alice")
    bob = await factory.patient(clinic, name="Bob")
    submitted = []
    # One a day over four days: PHQ-9, GAD-7, PHQ-9, PGIC.
    plan = [
        ("phq9", [(f"phq9_{n}", 1) for n in range(1, 10)]),
        ("gad7", [(f"gad7_{n}", 2) for n in range(1, 8)]),
        ("phq9", [(f"phq9_{n}", 2) for n in range(1, 10)]),
        ("pgic", [("pgic", 3)]),
    ]
    for day, (instrument, answers) in enumerate(plan):
        at = now - timedelta(days=4 - day)
        done = await services.questionnaires.submit(
            alice.actor, QuestionnaireInput(uuid4(), instrument, answers), now=at
        )
        submitted.append((instrument, str(done.response.id)))
    await services.questionnaires.submit(bob.actor, QuestionnaireInput(uuid4(), "pgic", [("pgic", 1)]), now=now)
    clinician = await factory.staff(clinic)
    await AuditEvent.all().delete()
    return Clinic(alice, bob, clinician, submitted)


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


async def staff_page(gql: GraphQLClient, home: Clinic, **variables: Any) -> dict[str, Any]:
    data = (
        await gql(PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id), **variables}, actor=home.clinician.actor)
    ).ok()
    page = data["patient"]["questionnaires"]
    assert isinstance(page, dict)
    return page


async def test_a_clinician_reads_a_patients_responses_newest_first(gql: GraphQLClient, home: Clinic) -> None:
    page = await staff_page(gql, home)
    assert ids(page) == [rid for _, rid in reversed(home.submitted)]
    assert page["pageInfo"]["hasNextPage"] is False
    newest, _, middle, oldest = (edge["node"] for edge in page["edges"])
    assert (newest["instrument"], newest["score"], newest["band"]) == ("pgic", 3, "minimally improved")
    assert (middle["instrument"], middle["score"], middle["band"]) == ("gad7", 14, "moderate")
    assert (oldest["instrument"], oldest["score"], oldest["band"]) == ("phq9", 9, "mild")
    assert oldest["answers"] == [{"item": f"phq9_{n}", "value": 1} for n in range(1, 10)]
    # Four days before noon UTC on 26 November, in New York (EST).
    assert oldest["authoredAt"] == "2026-11-22T07:00:00-05:00"


async def test_responses_page_with_first_and_after_and_filter_by_instrument(gql: GraphQLClient, home: Clinic) -> None:
    newest_first = [rid for _, rid in reversed(home.submitted)]
    first = await staff_page(gql, home, first=3)
    assert ids(first) == newest_first[:3]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await staff_page(gql, home, first=3, after=first["pageInfo"]["endCursor"])
    assert ids(rest) == newest_first[3:]
    assert rest["pageInfo"]["hasNextPage"] is False
    phq9 = await staff_page(gql, home, instrument="phq9")
    assert ids(phq9) == [rid for instrument, rid in reversed(home.submitted) if instrument == "phq9"]
    assert len(ids(phq9)) == 2
    assert ids(await staff_page(gql, home, instrument="bpi")) == []


@pytest.mark.parametrize(("variables", "field"), [({"first": 101}, "first"), ({"first": 0}, "first"),
                                                   ({"after": "nonsense"}, "after")])  # fmt: skip
async def test_a_bad_page_request_is_refused(
    gql: GraphQLClient, home: Clinic, variables: dict[str, Any], field: str
) -> None:
    result = await gql(
        PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id), **variables}, actor=home.clinician.actor
    )
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field])


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADMIN])
async def test_a_staff_read_leaves_one_audit_event(
    gql: GraphQLClient, factory: Factory, home: Clinic, now: datetime, *, role: Role
) -> None:
    staff = await factory.staff(await home.alice.patient.clinic, role)
    variables = {"id": str(home.alice.patient.id)}
    result = await gql(PATIENT_QUESTIONNAIRES, variables, actor=staff.actor, request_id="req-7")
    assert len(ids(result.ok()["patient"]["questionnaires"])) == 4
    # One event per operation and patient: the patient lookup and the list share it.
    events = await AuditEvent.all().values_list("actor_id", "actor_role", "patient_id", "operation", "request_id")
    assert events == [(staff.account.id, role.value, home.alice.patient.id, "PatientQuestionnaires", "req-7")]


async def test_the_service_audits_a_staff_read_as_questionnaire_read(
    services: Services, home: Clinic, now: datetime
) -> None:
    page = await services.questionnaires.responses(
        home.clinician.actor, home.alice.patient.id, first=None, after=None, instrument=None, now=now
    )
    assert len(page.items) == 4
    events = await AuditEvent.all().values_list("action", "actor_id", "patient_id", "created_at")
    assert events == [("questionnaire.read", home.clinician.account.id, home.alice.patient.id, now)]


async def test_the_patient_reads_their_own_and_leaves_no_audit_event(gql: GraphQLClient, home: Clinic) -> None:
    newest_first = [rid for _, rid in reversed(home.submitted)]
    own = (await gql(PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id)}, actor=home.alice.actor)).ok()
    assert ids(own["patient"]["questionnaires"]) == newest_first
    mine = (await gql(MY_QUESTIONNAIRES, {"instrument": "pgic"}, actor=home.alice.actor)).ok()["myQuestionnaires"]
    assert ids(mine) == newest_first[:1]
    assert await AuditEvent.all().count() == 0


async def test_another_patient_of_the_clinic_sees_not_found(
    gql: GraphQLClient, services: Services, home: Clinic, now: datetime
) -> None:
    result = await gql(PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id)}, actor=home.bob.actor)
    assert (result.codes, result.data) == (["NOT_FOUND"], {"patient": None})
    with pytest.raises(NotFound):
        await services.questionnaires.responses(
            home.bob.actor, home.alice.patient.id, first=None, after=None, instrument=None, now=now
        )
    # Bob's own list holds only his own response.
    mine = (await gql(MY_QUESTIONNAIRES, {}, actor=home.bob.actor)).ok()["myQuestionnaires"]
    assert [edge["node"]["instrument"] for edge in mine["edges"]] == ["pgic"]


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADMIN])
async def test_staff_of_another_clinic_see_not_found_and_nothing_is_audited(
    gql: GraphQLClient, factory: Factory, services: Services, home: Clinic, now: datetime, *, role: Role
) -> None:
    stranger = await factory.staff(await factory.clinic(), role)
    result = await gql(PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id)}, actor=stranger.actor)
    assert (result.codes, result.data) == (["NOT_FOUND"], {"patient": None})
    with pytest.raises(NotFound):
        await services.questionnaires.responses(
            stranger.actor, home.alice.patient.id, first=None, after=None, instrument=None, now=now
        )
    assert await AuditEvent.all().count() == 0


async def test_an_erased_patients_responses_are_not_found(services: Services, home: Clinic, now: datetime) -> None:
    home.alice.patient.status = PatientStatus.ERASED
    await home.alice.patient.save(update_fields=["status"])
    with pytest.raises(NotFound):
        await services.questionnaires.responses(
            home.clinician.actor, home.alice.patient.id, first=None, after=None, instrument=None, now=now
        )


async def test_a_signed_out_caller_reads_nothing(gql: GraphQLClient, home: Clinic) -> None:
    for document, variables, empty in (
        (PATIENT_QUESTIONNAIRES, {"id": str(home.alice.patient.id)}, {"patient": None}),
        (MY_QUESTIONNAIRES, {}, None),
        (INSTRUMENTS, {}, None),
        (INSTRUMENT, {"id": "phq9"}, None),
    ):
        result = await gql(document, variables)
        assert (result.codes, result.data) == (["UNAUTHENTICATED"], empty), document


async def test_staff_have_no_questionnaires_of_their_own(gql: GraphQLClient, home: Clinic) -> None:
    result = await gql(MY_QUESTIONNAIRES, {}, actor=home.clinician.actor)
    assert result.codes == ["FORBIDDEN"]


async def test_signed_in_users_list_the_current_instruments_to_render_them(gql: GraphQLClient, home: Clinic) -> None:
    for actor in (home.alice.actor, home.clinician.actor):
        listed = (await gql(INSTRUMENTS, actor=actor)).ok()["instruments"]
        by_id = {i["id"]: i for i in listed}
        assert sorted(by_id) == ["daily_diary", "gad7", "pgic", "phq2", "phq9", "post_infusion", "pre_session"]
    phq9 = by_id["phq9"]
    assert {k: phq9[k] for k in ("version", "answeredBy", "recallDays", "loincPanel", "loincTotal", "scoring")} == {
        "version": "1",
        "answeredBy": "QUESTIONNAIRE",
        "recallDays": 14,
        "loincPanel": "44249-1",
        "loincTotal": "44261-6",
        "scoring": "SUM",
    }
    assert [b["min"] for b in phq9["bands"]] == [0, 5, 10, 15, 20]
    item9 = phq9["items"][8]
    assert (item9["id"], item9["loinc"], item9["required"], item9["scored"]) == ("phq9_9", "44260-8", True, True)
    assert item9["options"][1] == {"code": 1, "label": "Several days", "loinc": "LA6569-3"}
    assert (phq9["items"][9]["id"], phq9["items"][9]["required"]) == ("phq9_difficulty", False)
    assert "No permission required" in phq9["licenceNote"]
    assert by_id["daily_diary"]["answeredBy"] == "DIARY"
    pain = by_id["daily_diary"]["items"][0]
    assert (pain["field"], pain["kind"], len(pain["options"])) == ("pain_now", "CHOICE", 11)


async def test_one_instrument_at_a_version_and_an_unknown_one_refused(gql: GraphQLClient, home: Clinic) -> None:
    found = (await gql(INSTRUMENT, {"id": "gad7", "version": "1"}, actor=home.alice.actor)).ok()["instrument"]
    assert found == {"id": "gad7", "version": "1"}
    for variables in ({"id": "bpi"}, {"id": "gad7", "version": "9"}):
        result = await gql(INSTRUMENT, variables, actor=home.alice.actor)
        assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["instrument"])
