"""submitQuestionnaire over GraphQL: scored on the server, pinned to a version (the phone's, if it names one),
idempotent on clientId, answering a prompt in the same transaction or, when the prompt cannot be answered, kept
without it and the reason reported, crisis resources on PHQ-9 item 9, licensed instruments for their clinics only,
and every refusal with nothing stored."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio

from api.domain.alert.models import Alert, ClinicAlertSettings, Severity
from api.domain.errors import BadInput
from api.domain.patient.models import PatientStatus
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.questionnaire import instruments
from api.domain.questionnaire.instruments import Registry
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.questionnaire.service import QuestionnaireInput, QuestionnaireService
from api.domain.services import Services
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.questionnaire_support import SUBMIT, answers, open_prompt, phq9, stored


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


async def submit(gql: GraphQLClient, who: PatientUser, sent: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    result = (await gql(SUBMIT, {"input": sent}, actor=who.actor, **kwargs)).ok()["submitQuestionnaire"]
    assert isinstance(result, dict)
    return result


async def test_a_phq9_is_scored_on_the_server_and_stored_pinned_to_its_version(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    # 1 + 2 + 0 + 1 + 3 + 0 + 2 + 1 + 0 = 10: moderate (10–14). The difficulty item is kept but not counted.
    sent = phq9([1, 2, 0, 1, 3, 0, 2, 1, 0], answers=answers("phq9", [1, 2, 0, 1, 3, 0, 2, 1, 0], phq9_difficulty=2))
    result = await submit(gql, alice, sent)
    assert (result["score"], result["band"], result["safetyMessage"]) == (10, "moderate", None)
    response = result["response"]
    assert response["answers"] == sent["answers"]
    assert {k: response[k] for k in ("clientId", "instrument", "instrumentVersion", "score", "band", "flags")} == {
        "clientId": sent["clientId"],
        "instrument": "phq9",
        "instrumentVersion": "1",
        "score": 10,
        "band": "moderate",
        "flags": [],
    }
    # Alice lives in New York: noon UTC on 26 November is 07:00 there (EST, UTC−5).
    assert response["authoredAt"] == "2026-11-26T07:00:00-05:00"
    assert (response["promptId"], response["scoreExact"]) == (None, 10.0)
    row = await QuestionnaireResponse.get(id=response["id"])
    assert (row.patient_id, row.clinic_id) == (alice.patient.id, alice.patient.clinic_id)
    assert row.answers == {a["item"]: a["value"] for a in sent["answers"]}
    assert (row.instrument_version, row.score, row.band, row.derived) == ("1", 10, "moderate", {"self_harm": False})
    assert row.utc_offset_minutes == -300


@pytest.mark.parametrize(
    ("instrument", "codes", "score", "band"),
    [("gad7", [3, 3, 3, 3, 3, 0, 0], 15, "severe"), ("phq2", [2, 1], 3, "positive"), ("pgic", [2], 2, "much improved")],
)
async def test_gad7_phq2_and_pgic_are_scored_by_their_own_rules(
    gql: GraphQLClient, alice: PatientUser, *, instrument: str, codes: list[int], score: int, band: str
) -> None:
    given = answers(instrument, codes) if instrument != "pgic" else [{"item": "pgic", "value": codes[0]}]
    sent = {"clientId": str(uuid4()), "instrument": instrument, "answers": given}
    result = await submit(gql, alice, sent)
    assert (result["score"], result["band"], result["response"]["band"]) == (score, band, band)


async def test_answers_come_back_in_the_instruments_order(gql: GraphQLClient, alice: PatientUser) -> None:
    given = [{"item": f"gad7_{n}", "value": n % 4} for n in (7, 3, 1, 5, 2, 6, 4)]
    result = await submit(gql, alice, {"clientId": str(uuid4()), "instrument": "gad7", "answers": given})
    assert result["response"]["answers"] == [{"item": f"gad7_{n}", "value": n % 4} for n in range(1, 8)]
    # 1 + 2 + 3 + 0 + 1 + 2 + 3 = 12
    assert (result["score"], result["band"]) == (12, "moderate")


async def test_a_resend_returns_the_stored_response_and_writes_nothing(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    sent = phq9([1, 1, 1, 1, 1, 0, 0, 0, 0])
    first = await submit(gql, alice, sent)
    before = await stored()
    # An hour later, with the answers in another order: the same submission.
    resent = {**sent, "answers": list(reversed(sent["answers"]))}
    again = await submit(gql, alice, resent, now=now + timedelta(hours=1))
    assert again == first
    assert again["response"]["authoredAt"] == "2026-11-26T07:00:00-05:00"
    assert await stored() == before
    assert len(before.responses) == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"answers": answers("phq9", [1, 1, 1, 1, 1, 0, 0, 0, 1])},
        {"answers": answers("phq9", [1, 1, 1, 1, 1, 0, 0, 0, 0], phq9_difficulty=0)},
        {"instrument": "gad7", "answers": answers("gad7", [1, 1, 1, 1, 1, 0, 0])},
        {"promptId": str(uuid4())},
    ],
)
async def test_the_same_client_id_with_other_content_is_a_conflict(
    gql: GraphQLClient, alice: PatientUser, changed: dict[str, Any]
) -> None:
    sent = phq9([1, 1, 1, 1, 1, 0, 0, 0, 0])
    await submit(gql, alice, sent)
    before = await stored()
    result = await gql(SUBMIT, {"input": {**sent, **changed}}, actor=alice.actor)
    assert (result.codes, result.fields, result.data) == (["CONFLICT"], ["clientId"], None)
    assert await stored() == before


def _with(**fields: Any) -> dict[str, Any]:
    return phq9(**fields)


PHQ9_ZEROS = answers("phq9", [0] * 9)


@pytest.mark.parametrize(
    ("sent", "field", "message"),
    [
        (_with(answers=[*PHQ9_ZEROS, {"item": "phq9_10", "value": 0}]), "answers[phq9_10]", "not an item of phq9"),
        (_with(answers=[*PHQ9_ZEROS, {"item": "gad7_1", "value": 1}]), "answers[gad7_1]", "not an item of phq9"),
        (_with(answers=[*PHQ9_ZEROS, {"item": "phq9_2", "value": 1}]), "answers[phq9_2]", "answered twice"),
        (_with(answers=answers("phq9", [0, 0, 0, 4, 0, 0, 0, 0, 0])), "answers[phq9_4]", "must be one of 0–3"),
        (_with(answers=answers("phq9", [0, 0, 0, 0, 0, 0, 0, 0, -1])), "answers[phq9_9]", "must be one of 0–3"),
        (_with(answers=PHQ9_ZEROS[:6] + PHQ9_ZEROS[7:]), "answers[phq9_7]", "phq9_7 is required"),
        (_with(answers=[]), "answers[phq9_1]", "phq9_1 is required"),
        (_with(instrument="bpi"), "instrument", "there is no instrument 'bpi'"),
        (_with(instrument="PHQ9"), "instrument", "there is no instrument 'PHQ9'"),
        (_with(instrument="pgic", answers=[{"item": "pgic", "value": 0}]), "answers[pgic]", "must be one of 1–7"),
        (_with(instrument="pgic", answers=[{"item": "pgic", "value": 8}]), "answers[pgic]", "must be one of 1–7"),
        (_with(instrument="daily_diary", answers=[{"item": "pain_now", "value": 4}]), "instrument",
         "daily_diary is answered with logDiaryEntry"),
        (_with(instrument="post_infusion", answers=[{"item": "nausea", "value": 1}]), "instrument",
         "post_infusion is answered with logDiaryEntry"),
        (_with(instrument="pre_session", answers=[]), "instrument", "pre_session is answered with logDiaryEntry"),
    ],
)  # fmt: skip
async def test_answers_that_cannot_be_scored_are_refused_naming_the_field_and_nothing_is_stored(
    gql: GraphQLClient, alice: PatientUser, sent: dict[str, Any], field: str, message: str
) -> None:
    before = await stored()
    result = await gql(SUBMIT, {"input": sent}, actor=alice.actor)
    assert (result.codes, result.fields, result.data) == (["BAD_USER_INPUT"], [field], None)
    assert message in result.errors[0]["message"]
    assert await stored() == before


async def test_an_optional_item_out_of_range_is_refused_and_its_message_names_the_item(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    result = await gql(
        SUBMIT, {"input": phq9(answers=[*PHQ9_ZEROS, {"item": "phq9_difficulty", "value": 7}])}, actor=alice.actor
    )
    # The field quotes the item id as sent, not camel-cased like a field name.
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["answers[phq9_difficulty]"])
    assert result.errors[0]["message"] == "phq9_difficulty must be one of 0–3"
    assert await QuestionnaireResponse.all().count() == 0


async def test_a_value_that_is_not_an_integer_is_refused_by_the_schema(gql: GraphQLClient, alice: PatientUser) -> None:
    sent = phq9(answers=[*PHQ9_ZEROS[:8], {"item": "phq9_9", "value": "1"}])
    result = await gql(SUBMIT, {"input": sent}, actor=alice.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["input.answers[8].value"])
    assert await QuestionnaireResponse.all().count() == 0


async def test_a_signed_out_caller_is_unauthenticated(gql: GraphQLClient, alice: PatientUser) -> None:
    result = await gql(SUBMIT, {"input": phq9()})
    assert (result.codes, result.data) == (["UNAUTHENTICATED"], None)
    assert await QuestionnaireResponse.all().count() == 0


async def test_clinic_staff_cannot_submit_a_questionnaire(
    gql: GraphQLClient, factory: Factory, alice: PatientUser
) -> None:
    clinician = await factory.staff(await alice.patient.clinic)
    result = await gql(SUBMIT, {"input": phq9()}, actor=clinician.actor)
    assert (result.codes, result.data) == (["FORBIDDEN"], None)
    assert await QuestionnaireResponse.all().count() == 0


@pytest.mark.parametrize("status", [PatientStatus.DISCHARGED, PatientStatus.INVITED])
async def test_a_closed_diary_takes_no_questionnaires(
    gql: GraphQLClient, alice: PatientUser, status: PatientStatus
) -> None:
    alice.patient.status = status
    await alice.patient.save(update_fields=["status"])
    result = await gql(SUBMIT, {"input": phq9()}, actor=alice.actor)
    assert (result.codes, result.data) == (["FORBIDDEN"], None)
    assert await QuestionnaireResponse.all().count() == 0


async def test_a_paused_patient_may_still_submit(gql: GraphQLClient, alice: PatientUser) -> None:
    alice.patient.status = PatientStatus.PAUSED
    await alice.patient.save(update_fields=["status"])
    assert (await submit(gql, alice, phq9()))["score"] == 0


async def test_a_prompt_is_marked_answered_with_the_response(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    prompt = await open_prompt(alice, "phq9", now)
    result = await submit(gql, alice, phq9(promptId=str(prompt.id)))
    assert result["response"]["promptId"] == str(prompt.id)
    await prompt.refresh_from_db()
    assert (prompt.status, prompt.answered_at) == (PromptStatus.ANSWERED, now)
    row = await QuestionnaireResponse.get(id=result["response"]["id"])
    assert row.prompt_id == prompt.id


async def test_a_resend_of_a_response_that_answered_its_prompt_reports_no_prompt_error(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    prompt = await open_prompt(alice, "phq9", now)
    sent = phq9(promptId=str(prompt.id))
    first = await submit(gql, alice, sent)
    before = await stored()
    again = await submit(gql, alice, sent, now=now + timedelta(hours=1))
    assert again == first
    assert (again["promptError"], again["response"]["promptId"]) == (None, str(prompt.id))
    assert await stored() == before


async def _other_patients_prompt(alice: PatientUser, factory: Factory, now: datetime) -> str:
    bob = await factory.patient(await alice.patient.clinic)
    return str((await open_prompt(bob, "phq9", now)).id)


async def _open(alice: PatientUser, now: datetime, instrument: str = "phq9", **overrides: Any) -> str:
    return str((await open_prompt(alice, instrument, now, **overrides)).id)


# Each: the prompt sent with a PHQ-9, the code and message reported in promptError.
UNANSWERABLE: dict[str, tuple[Any, str, str]] = {
    "another instrument's": (
        lambda alice, factory, now: _open(alice, now, "gad7"),
        "BAD_USER_INPUT",
        "this check-in is answered with the gad7 questionnaire",
    ),
    "the diary's": (
        lambda alice, factory, now: _open(alice, now, "daily_diary"),
        "BAD_USER_INPUT",
        "this check-in is answered with the daily_diary questionnaire",
    ),
    "past its expiry": (
        lambda alice, factory, now: _open(alice, now, expires_at=now - timedelta(minutes=1)),
        "PROMPT_EXPIRED",
        "this check-in has closed; log a diary entry without it",
    ),
    "expired by the job": (
        lambda alice, factory, now: _open(alice, now, status=PromptStatus.EXPIRED),
        "PROMPT_EXPIRED",
        "this check-in has closed; log a diary entry without it",
    ),
    "already answered": (
        lambda alice, factory, now: _open(alice, now, status=PromptStatus.ANSWERED, answered_at=now),
        "CONFLICT",
        "this check-in is already answered",
    ),
    "not yet due": (
        lambda alice, factory, now: _open(alice, now, status=PromptStatus.SCHEDULED, due_at=now + timedelta(hours=2)),
        "NOT_FOUND",
        "prompt not found",
    ),
    "another patient's": (_other_patients_prompt, "NOT_FOUND", "prompt not found"),
    "unknown": (lambda alice, factory, now: _constant(str(uuid4())), "NOT_FOUND", "prompt not found"),
    "malformed": (lambda alice, factory, now: _constant("not-an-id"), "NOT_FOUND", "prompt not found"),
}


async def _constant(value: str) -> str:
    return value


@pytest.mark.parametrize("case", list(UNANSWERABLE))
async def test_a_prompt_that_cannot_be_answered_is_reported_and_the_response_stored_without_it(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime, case: str
) -> None:
    make, code, message = UNANSWERABLE[case]
    prompt_id = await make(alice, factory, now)
    prompts_before = (await stored()).prompts
    # 1 × 9 = 9: mild.
    result = await submit(gql, alice, phq9([1] * 9, promptId=prompt_id))
    assert result["promptError"] == {"code": code, "field": "promptId", "message": message}
    assert (result["score"], result["band"], result["response"]["promptId"]) == (9, "mild", None)
    row = await QuestionnaireResponse.get(id=result["response"]["id"])
    assert (row.patient_id, row.score, row.prompt_id) == (alice.patient.id, 9, None)
    # The prompt itself is left as it was: not answered by this response.
    assert (await stored()).prompts == prompts_before


async def test_self_harm_on_an_expired_prompt_is_stored_alerted_and_answered_with_the_crisis_message(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    # The PHQ-9 check-in closed a minute ago; the patient answers item 9 with "several days" anyway.
    prompt = await open_prompt(alice, "phq9", now, expires_at=now - timedelta(minutes=1))
    result = await submit(gql, alice, phq9([0, 0, 0, 0, 0, 0, 0, 0, 1], promptId=str(prompt.id)))
    assert result["promptError"] == {
        "code": "PROMPT_EXPIRED",
        "field": "promptId",
        "message": "this check-in has closed; log a diary entry without it",
    }
    assert result["safetyMessage"] is not None
    assert "988" in result["safetyMessage"]
    assert (result["score"], result["response"]["flags"], result["response"]["promptId"]) == (1, ["self_harm"], None)
    row = await QuestionnaireResponse.get(id=result["response"]["id"])
    assert (row.answers["phq9_9"], row.derived, row.prompt_id) == (1, {"self_harm": True}, None)
    alerts = await Alert.filter(patient_id=alice.patient.id)
    assert [a.severity for a in alerts] == [Severity.CRITICAL]
    assert [(t["type"], t["id"]) for t in alerts[0].triggers] == [("QuestionnaireResponse", result["response"]["id"])]
    await prompt.refresh_from_db()
    assert (prompt.status, prompt.answered_at) == (PromptStatus.SENT, None)


async def test_a_second_response_to_an_answered_prompt_is_kept_and_the_first_keeps_the_prompt(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    prompt = await open_prompt(alice, "phq9", now)
    first = await submit(gql, alice, phq9(promptId=str(prompt.id)))
    second = await submit(gql, alice, phq9([2] * 9, promptId=str(prompt.id)), now=now + timedelta(minutes=5))
    assert (first["promptError"], second["promptError"]["code"]) == (None, "CONFLICT")
    rows = await QuestionnaireResponse.filter(patient_id=alice.patient.id).order_by("authored_at")
    assert [(str(r.id), r.score, r.prompt_id) for r in rows] == [
        (first["response"]["id"], 0, prompt.id),
        (second["response"]["id"], 18, None),
    ]
    await prompt.refresh_from_db()
    assert (prompt.status, prompt.answered_at) == (PromptStatus.ANSWERED, now)


@pytest.mark.parametrize("case", ["past its expiry", "another instrument's", "malformed"])
async def test_a_resend_reports_the_prompt_error_again_and_writes_nothing(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime, case: str
) -> None:
    make, code, _ = UNANSWERABLE[case]
    sent = phq9([0, 0, 0, 0, 0, 0, 0, 0, 2], promptId=await make(alice, factory, now))
    first = await submit(gql, alice, sent)
    assert first["promptError"]["code"] == code
    before = await stored()
    again = await submit(gql, alice, sent, now=now + timedelta(hours=1))
    assert again == first
    assert await stored() == before


async def test_a_resend_after_the_prompt_was_revived_still_reports_it_and_does_not_answer_it(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    # Cancelled when first sent; revived by a replan before the resend (an unsent cancelled prompt can be). The
    # resend judges the prompt again without writing: the stored response was never this prompt's answer.
    prompt = await open_prompt(alice, "phq9", now, status=PromptStatus.CANCELLED, cancelled_at=now)
    sent = phq9(promptId=str(prompt.id))
    first = await submit(gql, alice, sent)
    assert first["promptError"]["code"] == "NOT_FOUND"
    await Prompt.filter(id=prompt.id).update(status=PromptStatus.SCHEDULED, cancelled_at=None)
    before = await stored()
    again = await submit(gql, alice, sent, now=now + timedelta(hours=1))
    assert again == first
    assert await stored() == before
    await prompt.refresh_from_db()
    assert (prompt.status, prompt.answered_at) == (PromptStatus.SCHEDULED, None)


@pytest.mark.parametrize("item9", [1, 2, 3])
async def test_phq9_item_9_brings_crisis_resources_and_a_critical_alert_at_once(
    gql: GraphQLClient, alice: PatientUser, now: datetime, item9: int
) -> None:
    result = await submit(gql, alice, phq9([0, 0, 0, 0, 0, 0, 0, 0, item9]))
    assert (result["score"], result["band"]) == (item9, "minimal")
    assert result["safetyMessage"] is not None
    assert "988" in result["safetyMessage"]
    assert result["response"]["flags"] == ["self_harm"]
    alerts = await Alert.filter(patient_id=alice.patient.id)
    assert [a.severity for a in alerts] == [Severity.CRITICAL]
    assert [(t["type"], t["id"]) for t in alerts[0].triggers] == [("QuestionnaireResponse", result["response"]["id"])]
    assert alerts[0].raised_at == now


async def test_a_resend_of_item_9_brings_the_crisis_resources_again_and_no_second_alert(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    sent = phq9([0, 0, 0, 0, 0, 0, 0, 0, 1])
    first = await submit(gql, alice, sent)
    before = await stored()
    again = await submit(gql, alice, sent)
    assert again["safetyMessage"] == first["safetyMessage"]
    assert again["safetyMessage"] is not None
    assert await stored() == before


async def test_item_9_at_not_at_all_brings_no_safety_message_and_no_alert(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    # A high total with item 9 at 0: severe, but not the self-harm pathway.
    result = await submit(gql, alice, phq9([3, 3, 3, 3, 3, 3, 3, 3, 0]))
    assert (result["score"], result["band"], result["safetyMessage"]) == (24, "severe", None)
    assert result["response"]["flags"] == []
    assert not await Alert.filter(patient_id=alice.patient.id, severity=Severity.CRITICAL).exists()


async def test_the_safety_message_is_the_clinics_own_when_it_set_one(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    own = "Call the clinic's on-call line, 0800 000 000, or 112 in an emergency."
    await ClinicAlertSettings.create(clinic_id=alice.patient.clinic_id, crisis_message=own, updated_at=now)
    result = await submit(gql, alice, phq9([0, 0, 0, 0, 0, 0, 0, 0, 2]))
    assert result["safetyMessage"] == own


async def test_other_instruments_never_bring_a_safety_message(gql: GraphQLClient, alice: PatientUser) -> None:
    sent = {"clientId": str(uuid4()), "instrument": "gad7", "answers": answers("gad7", [3] * 7)}
    result = await submit(gql, alice, sent)
    assert (result["score"], result["band"], result["safetyMessage"]) == (21, "severe", None)


# A deployment's own definitions, through the service itself: a newer PHQ-9 version and a BPI licensed to `licensee`.
def _definitions(directory: Path, licensee: UUID) -> Registry:
    phq9_v1 = json.loads((instruments.BUILT_IN_DIR / "phq9-1.json").read_text(encoding="utf-8"))
    phq9_v2 = {**phq9_v1, "version": "2", "bands": [[0, "none-minimal"], [5, "mild"], [10, "moderate"]]}
    (directory / "phq9-2.json").write_text(json.dumps(phq9_v2), encoding="utf-8")
    bpi = {
        "id": "bpi_interference",
        "version": "1",
        "title": "BPI interference",
        "licence": {"free": False, "note": "Under the clinic's licence.", "clinics": [str(licensee)]},
        "option_sets": {"scale": [{"code": n, "label": str(n)} for n in range(11)]},
        "items": [{"id": f"bpi_i{n}", "text": f"item {n}", "options": "scale", "required": False} for n in range(7)],
        "scoring": {"method": "mean", "min_answered": 4},
        "bands": [[0, "mild"], [5, "moderate"], [7, "severe"]],
    }
    (directory / "bpi.json").write_text(json.dumps(bpi), encoding="utf-8")
    return Registry.load(directory)


def _upgraded(services: Services, alice: PatientUser, tmp_path: Path) -> QuestionnaireService:
    return QuestionnaireService(services.prompts, services.alerts, _definitions(tmp_path, alice.patient.clinic_id))


PHQ9_ONES = [(f"phq9_{n}", 1) for n in range(1, 10)]


async def test_a_response_is_pinned_to_the_version_current_when_it_was_first_submitted(
    services: Services, alice: PatientUser, now: datetime, tmp_path: Path
) -> None:
    old = QuestionnaireInput(uuid4(), "phq9", PHQ9_ONES)
    first = await services.questionnaires.submit(alice.actor, old, now=now)
    assert (first.response.instrument_version, first.response.band) == ("1", "mild")
    upgraded = _upgraded(services, alice, tmp_path)
    # The resend after the upgrade is still the version-1 response…
    again = await upgraded.submit(alice.actor, old, now=now + timedelta(days=1))
    assert (again.response.id, again.response.instrument_version) == (first.response.id, "1")
    # …and a new submission is scored against version 2.
    new = QuestionnaireInput(uuid4(), "phq9", PHQ9_ONES)
    second = await upgraded.submit(alice.actor, new, now=now + timedelta(days=1))
    assert (second.response.instrument_version, second.response.score, second.response.band) == ("2", 9, "mild")
    assert await QuestionnaireResponse.filter(patient_id=alice.patient.id).count() == 2


async def test_a_submission_is_scored_against_the_version_the_phone_showed(
    services: Services, alice: PatientUser, now: datetime, tmp_path: Path
) -> None:
    upgraded = _upgraded(services, alice, tmp_path)
    # 1 × 9 = 9: "mild" in both versions; 2 × 5 = 10: "moderate" in both. 4: "minimal" in v1, "none-minimal" in v2.
    four = [(f"phq9_{n}", 1 if n <= 4 else 0) for n in range(1, 10)]
    pinned = await upgraded.submit(
        alice.actor, QuestionnaireInput(uuid4(), "phq9", four, instrument_version="1"), now=now
    )
    current = await upgraded.submit(alice.actor, QuestionnaireInput(uuid4(), "phq9", four), now=now)
    assert (pinned.response.instrument_version, pinned.response.score, pinned.response.band) == ("1", 4, "minimal")
    assert (current.response.instrument_version, current.response.band) == ("2", "none-minimal")


async def test_an_unknown_instrument_version_is_refused_on_instrument_version(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    before = await stored()
    result = await gql(SUBMIT, {"input": phq9(instrumentVersion="9")}, actor=alice.actor)
    assert (result.codes, result.fields, result.data) == (["BAD_USER_INPUT"], ["instrumentVersion"], None)
    assert result.errors[0]["message"] == "phq9 has no version '9'"
    assert await stored() == before


async def test_a_pinned_version_is_part_of_the_resend_it_was_given_with(gql: GraphQLClient, alice: PatientUser) -> None:
    sent = phq9(instrumentVersion="1")
    first = await submit(gql, alice, sent)
    assert first["response"]["instrumentVersion"] == "1"
    before = await stored()
    assert await submit(gql, alice, sent) == first
    # The same clientId without the pin, or with another version, is other content.
    for changed in ({k: v for k, v in sent.items() if k != "instrumentVersion"}, {**sent, "instrumentVersion": "2"}):
        result = await gql(SUBMIT, {"input": changed}, actor=alice.actor)
        assert (result.codes, result.fields) == (["CONFLICT"], ["clientId"])
    assert await stored() == before


def test_a_submission_without_a_version_keeps_the_digest_it_had_before_versions_could_be_pinned() -> None:
    # Stored responses hold the digest of {instrument, answers, prompt_id}: their resends must still match.
    data = QuestionnaireInput(UUID("11111111-2222-4333-8444-555555555555"), "pgic", [("pgic", 3)])
    old = json.dumps({"answers": [["pgic", 3]], "instrument": "pgic", "prompt_id": None}, sort_keys=True)
    assert data.digest() == hashlib.sha256(old.encode()).hexdigest()
    assert QuestionnaireInput(data.client_id, "pgic", [("pgic", 3)], instrument_version="1").digest() != data.digest()


async def test_a_licensed_instrument_added_as_a_file_is_submitted_and_scored(
    services: Services, alice: PatientUser, now: datetime, tmp_path: Path
) -> None:
    service = _upgraded(services, alice, tmp_path)
    # 2 + 3 + 4 + 6 + 7 = 22 over 5 answered items = 4.4: reported as 4, mild.
    data = QuestionnaireInput(uuid4(), "bpi_interference", [("bpi_i0", 2), ("bpi_i1", 3), ("bpi_i2", 4),
                                                              ("bpi_i4", 6), ("bpi_i6", 7)])  # fmt: skip
    submission = await service.submit(alice.actor, data, now=now)
    row = await QuestionnaireResponse.get(id=submission.response.id)
    assert (row.instrument, row.score, row.band, row.derived) == ("bpi_interference", 4, "mild", {"score_exact": 4.4})
    with pytest.raises(BadInput) as refused:
        await service.submit(alice.actor, QuestionnaireInput(uuid4(), "bpi_interference", [("bpi_i0", 2)]), now=now)
    assert refused.value.field == "answers"
    # The default service knows only the built-ins.
    with pytest.raises(BadInput) as unknown:
        await services.questionnaires.submit(alice.actor, QuestionnaireInput(uuid4(), "bpi_interference", []), now=now)
    assert unknown.value.field == "instrument"


LIST = "query { instruments { id } }"
ONE = "query($id: String!) { instrument(id: $id) { id version } }"
BPI_ANSWERS = [{"item": f"bpi_i{n}", "value": 5} for n in range(4)]


async def test_a_licensed_instrument_is_listed_and_taken_only_in_the_licensed_clinic(
    services: Services, factory: Factory, alice: PatientUser, now: datetime, tmp_path: Path
) -> None:
    gql = GraphQLClient(replace(services, questionnaires=_upgraded(services, alice, tmp_path)), now)
    colleague = await factory.staff(await alice.patient.clinic)
    elsewhere = await factory.clinic()
    carol, stranger = await factory.patient(elsewhere), await factory.staff(elsewhere)
    for actor in (alice.actor, colleague.actor):
        listed = [i["id"] for i in (await gql(LIST, actor=actor)).ok()["instruments"]]
        assert "bpi_interference" in listed
        found = (await gql(ONE, {"id": "bpi_interference"}, actor=actor)).ok()["instrument"]
        assert found == {"id": "bpi_interference", "version": "1"}
    sent = {"clientId": str(uuid4()), "instrument": "bpi_interference", "answers": BPI_ANSWERS}
    # 4 × 5 / 4 = 5.0: moderate.
    assert (await submit(gql, alice, sent))["band"] == "moderate"
    before = await stored()
    for actor in (carol.actor, stranger.actor):
        listed = [i["id"] for i in (await gql(LIST, actor=actor)).ok()["instruments"]]
        assert "bpi_interference" not in listed
        assert "phq9" in listed
        result = await gql(ONE, {"id": "bpi_interference"}, actor=actor)
        assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["instrument"])
        assert result.errors[0]["message"] == "there is no instrument 'bpi_interference'"
    refused = await gql(SUBMIT, {"input": {**sent, "clientId": str(uuid4())}}, actor=carol.actor)
    assert (refused.codes, refused.fields, refused.data) == (["BAD_USER_INPUT"], ["instrument"], None)
    assert refused.errors[0]["message"] == "there is no instrument 'bpi_interference'"
    assert await stored() == before
    for document in (LIST, ONE):
        result = await gql(document, {"id": "bpi_interference"} if document == ONE else None)
        assert result.codes == ["UNAUTHENTICATED"]
