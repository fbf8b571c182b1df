"""Shared by the questionnaire tests (no tests here): GraphQL documents, input builders, a snapshot of stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from api.domain.alert.models import Alert
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.questionnaire.models import QuestionnaireResponse
from tests.factories import PatientUser

RESPONSE_FIELDS = """
fragment ResponseFields on QuestionnaireResponse {
  id clientId instrument instrumentVersion answers { item value } score scoreExact band flags authoredAt promptId
}
"""

SUBMIT = (
    """
mutation Submit($input: QuestionnaireInput!) {
  submitQuestionnaire(input: $input) {
    response { ...ResponseFields } score band safetyMessage promptError { code field message }
  }
}
"""
    + RESPONSE_FIELDS
)

_PAGE = "edges { cursor node { ...ResponseFields } } pageInfo { hasNextPage endCursor }"

PATIENT_QUESTIONNAIRES = (
    """
query PatientQuestionnaires($id: ID!, $first: Int, $after: String, $instrument: String) {
  patient(id: $id) { questionnaires(first: $first, after: $after, instrument: $instrument) { """
    + _PAGE
    + " } } }"
    + RESPONSE_FIELDS
)

MY_QUESTIONNAIRES = (
    """
query MyQuestionnaires($first: Int, $after: String, $instrument: String) {
  myQuestionnaires(first: $first, after: $after, instrument: $instrument) { """
    + _PAGE
    + " } }"
    + RESPONSE_FIELDS
)


def answers(prefix: str, codes: list[int], **extra: int) -> list[dict[str, Any]]:
    """AnswerInputs for items `<prefix>_1`, `<prefix>_2`, … in order, then any named extra items."""
    given = [{"item": f"{prefix}_{n}", "value": code} for n, code in enumerate(codes, start=1)]
    return given + [{"item": item, "value": value} for item, value in extra.items()]


def phq9(codes: list[int] | None = None, **fields: Any) -> dict[str, Any]:
    """A QuestionnaireInput for the PHQ-9 with a fresh clientId; all items "not at all" unless given."""
    return {"clientId": str(uuid4()), "instrument": "phq9", "answers": answers("phq9", codes or [0] * 9), **fields}


async def open_prompt(who: PatientUser, instrument: str, now: datetime, **overrides: Any) -> Prompt:
    """A sent check-in for `instrument`, due an hour ago and open for three days."""
    values: dict[str, Any] = {
        "clinic_id": who.patient.clinic_id,
        "patient_id": who.patient.id,
        "plan_id": uuid4(),
        "rule_id": f"{instrument}-rule",
        "anchor": "date:2026-11-26",
        "instrument": instrument,
        "due_at": now - timedelta(hours=1),
        "deliver_at": now - timedelta(hours=1),
        "expires_at": now + timedelta(days=3),
        "status": PromptStatus.SENT,
        "created_at": now - timedelta(days=1),
        "updated_at": now - timedelta(hours=1),
    }
    values.update(overrides)
    return await Prompt.create(**values)


@dataclass(frozen=True)
class Stored:
    """Every response, prompt and alert row: equal snapshots mean nothing was written."""

    responses: list[dict[str, Any]]
    prompts: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


async def stored() -> Stored:
    return Stored(
        responses=list(await QuestionnaireResponse.all().order_by("id").values()),
        prompts=list(await Prompt.all().order_by("id").values()),
        alerts=list(await Alert.all().order_by("id").values()),
    )
