"""Questionnaire queries and the submit mutation: unpack, call the service, map the result."""

from __future__ import annotations

import strawberry

from api.domain.patient.access import require_patient
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection
from schema.questionnaire.types import Instrument, QuestionnaireInput, QuestionnaireResponse, QuestionnaireResult


async def questionnaire_page(
    info: Info, patient_id: strawberry.ID | str, first: int | None, after: str | None, instrument: str | None
) -> Connection[QuestionnaireResponse]:
    ctx = info.context
    service = ctx.services.questionnaires
    page = await service.responses(
        ctx.require_actor(),
        parse_id(patient_id, "patient"),
        first=first,
        after=after,
        instrument=instrument,
        now=ctx.now,
    )
    return Connection[QuestionnaireResponse].from_page(
        page, lambda r: QuestionnaireResponse.from_model(r, service.item_order(r))
    )


@strawberry.type
class QuestionnaireQuery:
    @strawberry.field(
        description="The current version of every instrument the caller's clinic may use, with items and options."
    )
    async def instruments(self, info: Info) -> list[Instrument]:
        actor = info.context.require_actor()
        return [Instrument.from_domain(i) for i in info.context.services.questionnaires.instruments(actor)]

    @strawberry.field(description="One instrument the caller's clinic may use, at a version (the current by default).")
    async def instrument(self, info: Info, id: str, version: str | None = None) -> Instrument:
        actor = info.context.require_actor()
        return Instrument.from_domain(info.context.services.questionnaires.instrument(actor, id, version))

    @strawberry.field(description="The signed-in patient's own questionnaire responses, newest first.")
    async def my_questionnaires(
        self, info: Info, first: int | None = None, after: str | None = None, instrument: str | None = None
    ) -> Connection[QuestionnaireResponse]:
        patient_id = require_patient(info.context.require_actor())
        return await questionnaire_page(info, str(patient_id), first, after, instrument)


@strawberry.type
class QuestionnaireMutation:
    @strawberry.mutation(
        description="Scored on the server. Idempotent on input.clientId: a resend returns the stored response."
    )
    async def submit_questionnaire(self, info: Info, input: QuestionnaireInput) -> QuestionnaireResult:
        ctx = info.context
        service = ctx.services.questionnaires
        submission = await service.submit(ctx.require_actor(), input.to_domain(), now=ctx.now)
        return QuestionnaireResult.from_submission(submission, service.item_order(submission.response))
