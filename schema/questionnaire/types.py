"""Instrument definitions and questionnaire responses as the API shows and accepts them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from uuid import UUID

import strawberry

from api.domain.questionnaire import instruments as domain
from api.domain.questionnaire.models import QuestionnaireResponse as ResponseModel
from api.domain.questionnaire.service import QuestionnaireInput as DomainQuestionnaireInput
from api.domain.questionnaire.service import Submission
from schema.diary.types import FieldError
from schema.errors import domain_extensions
from schema.ids import to_id

AnsweredBy = strawberry.enum(domain.AnsweredBy, description="questionnaire: submitQuestionnaire; diary: logDiaryEntry.")
ItemKind = strawberry.enum(domain.ItemKind)
ScoringMethod = strawberry.enum(domain.Method, name="ScoringMethod")


@strawberry.type
class InstrumentOption:
    code: int = strawberry.field(description="The published integer code; what AnswerInput.value carries.")
    label: str
    loinc: str | None = strawberry.field(description="LOINC answer code, where one exists.")


@strawberry.type
class InstrumentItem:
    id: str
    text: str
    loinc: str | None
    snomed: str | None
    kind: ItemKind  # type: ignore[valid-type]
    required: bool
    scored: bool
    field: str | None = strawberry.field(description="Diary check-ins: the DiaryEntryInput field it is stored in.")
    minimum: float | None
    maximum: float | None
    unit: str | None
    options: list[InstrumentOption]

    @classmethod
    def from_domain(cls, i: domain.Item) -> InstrumentItem:
        return cls(
            id=i.id,
            text=i.text,
            loinc=i.loinc,
            snomed=i.snomed,
            kind=i.kind,
            required=i.required,
            scored=i.scored,
            field=i.field,
            minimum=i.minimum,
            maximum=i.maximum,
            unit=i.unit,
            options=[InstrumentOption(code=o.code, label=o.label, loinc=o.loinc) for o in i.options],
        )


@strawberry.type
class InstrumentBand:
    min: float = strawberry.field(description="The lowest score in this band.")
    label: str


@strawberry.type(description="One version of a questionnaire or check-in definition.")
class Instrument:
    id: str
    version: str
    title: str
    licence_note: str
    answered_by: AnsweredBy  # type: ignore[valid-type]
    recall_period: str | None
    recall_days: int | None
    loinc_panel: str | None
    loinc_total: str | None = strawberry.field(description="LOINC code of the total score.")
    preamble: str | None
    items: list[InstrumentItem]
    scoring: ScoringMethod  # type: ignore[valid-type]
    bands: list[InstrumentBand] = strawberry.field(description="Lowest first; a score is in the last band it reaches.")

    @classmethod
    def from_domain(cls, i: domain.Instrument) -> Instrument:
        return cls(
            id=i.id,
            version=i.version,
            title=i.title,
            licence_note=i.licence_note,
            answered_by=i.answered_by,
            recall_period=i.recall_period,
            recall_days=i.recall_days,
            loinc_panel=i.loinc_panel,
            loinc_total=i.loinc_total,
            preamble=i.preamble,
            items=[InstrumentItem.from_domain(item) for item in i.items],
            scoring=i.scoring.method,
            bands=[InstrumentBand(min=b.min, label=b.label) for b in i.bands],
        )


@strawberry.type
class Answer:
    item: str
    value: int


@strawberry.type
class QuestionnaireResponse:
    id: strawberry.ID
    client_id: UUID
    instrument: str
    instrument_version: str = strawberry.field(description="The definition the answers were scored against.")
    answers: list[Answer] = strawberry.field(description="In the instrument's item order.")
    score: int | None = strawberry.field(description="A mean is rounded half up; scoreExact has it unrounded.")
    score_exact: float | None
    band: str | None
    flags: list[str] = strawberry.field(description="Flags the answers raised, e.g. self_harm.")
    authored_at: datetime = strawberry.field(description="When it was submitted, in the patient's offset then.")
    prompt_id: strawberry.ID | None

    @classmethod
    def from_model(cls, r: ResponseModel, order: Sequence[str]) -> QuestionnaireResponse:
        zone = timezone(timedelta(minutes=r.utc_offset_minutes))
        exact = r.derived.get("score_exact")
        return cls(
            id=to_id(r.id),
            client_id=r.client_id,
            instrument=r.instrument,
            instrument_version=r.instrument_version,
            answers=[Answer(item=item, value=r.answers[item]) for item in order],
            score=r.score,
            score_exact=float(exact) if exact is not None else (float(r.score) if r.score is not None else None),
            band=r.band,
            flags=sorted(name for name, value in r.derived.items() if value is True),
            authored_at=r.authored_at.astimezone(zone),
            prompt_id=to_id(r.prompt_id) if r.prompt_id else None,
        )


@strawberry.type
class QuestionnaireResult:
    response: QuestionnaireResponse
    score: int | None
    band: str | None
    safety_message: str | None = strawberry.field(
        description="Crisis resources, present when an answer signals risk of self-harm: show it at once."
    )
    prompt_error: FieldError | None = strawberry.field(
        description="Why input.promptId was not answered (PROMPT_EXPIRED, CONFLICT if already answered, "
        "BAD_USER_INPUT for another instrument's, NOT_FOUND); the response is stored all the same, without it. "
        "Null when there was no prompt or it was answered."
    )

    @classmethod
    def from_submission(cls, s: Submission, order: Sequence[str]) -> QuestionnaireResult:
        response = QuestionnaireResponse.from_model(s.response, order)
        prompt_error = None
        if s.prompt_error is not None:
            ext = domain_extensions(s.prompt_error)
            field = ext.get("field")
            prompt_error = FieldError(
                code=str(ext["code"]), field=str(field) if field else None, message=s.prompt_error.message
            )
        return cls(
            response=response,
            score=response.score,
            band=response.band,
            safety_message=s.safety_message,
            prompt_error=prompt_error,
        )


@strawberry.input
class AnswerInput:
    item: str = strawberry.field(description="The item id, e.g. phq9_1.")
    value: int = strawberry.field(description="The option's published code (PHQ/GAD 0–3, PGIC 1–7).")


@strawberry.input
class QuestionnaireInput:
    client_id: UUID = strawberry.field(description="Generated on the phone; the idempotency key.")
    instrument: str
    answers: list[AnswerInput]
    prompt_id: strawberry.ID | None = None
    instrument_version: str | None = strawberry.field(
        default=None, description="The version the phone showed, scored against it; the current one by default."
    )

    def to_domain(self) -> DomainQuestionnaireInput:
        return DomainQuestionnaireInput(
            client_id=self.client_id,
            instrument=self.instrument,
            answers=[(a.item, a.value) for a in self.answers],
            prompt_id=self.prompt_id,
            instrument_version=self.instrument_version,
        )
