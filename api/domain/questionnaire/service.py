"""Submitting questionnaires and reading them back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor
from api.domain.alert.models import Alert
from api.domain.alert.service import AlertService
from api.domain.errors import BadInput, Conflict, DomainError, NotFound
from api.domain.paging import Page, after_filter, make_page, page_size, parse_instant
from api.domain.patient.access import lock_patient, reachable_patient, require_patient, require_writable
from api.domain.patient.models import Patient
from api.domain.prompt.service import PromptService
from api.domain.questionnaire.instruments import MAX_ID, SELF_HARM, AnsweredBy, Instrument, Registry, installed
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.questionnaire.scoring import check_answers, score


@dataclass(frozen=True)
class QuestionnaireInput:
    client_id: UUID
    instrument: str
    answers: Sequence[tuple[str, int]]
    prompt_id: str | UUID | None = None
    # The version the phone showed; the current one when not given.
    instrument_version: str | None = None

    def digest(self) -> str:
        """What identifies a resend: the instrument (and version, if pinned), the answers in any order, the prompt."""
        content = {
            "instrument": self.instrument,
            "answers": sorted([item, value] for item, value in self.answers),
            "prompt_id": str(self.prompt_id) if self.prompt_id is not None else None,
        }
        # Only when given: responses stored before versions could be pinned keep the digest their resends match.
        if self.instrument_version is not None:
            content["instrument_version"] = self.instrument_version
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class Submission(NamedTuple):
    response: QuestionnaireResponse
    # Alerts this submission raised, reopened or added a report to (announced to subscribers); empty on a resend.
    alerts: list[Alert]
    # The clinic's crisis resources when an answer raised the self-harm flag (again on a resend).
    safety_message: str | None
    # Why the prompt sent with it was not answered (expired, already answered, another instrument's, not found);
    # the response is stored all the same, without the prompt.
    prompt_error: DomainError | None = None


class _DryRun(Exception):
    """Rolls back a check that must leave nothing written."""


class QuestionnaireService:
    def __init__(self, prompts: PromptService, alerts: AlertService, registry: Registry | None = None) -> None:
        self.prompts = prompts
        self.alerts = alerts
        self.registry = registry or installed()

    def instrument(self, actor: Actor, instrument_id: str, version: str | None = None) -> Instrument:
        return self.registry.for_clinic(actor.clinic_id, instrument_id, version)

    def instruments(self, actor: Actor) -> list[Instrument]:
        """The current version of every instrument the actor's clinic may use."""
        return self.registry.current(actor.clinic_id)

    def item_order(self, response: QuestionnaireResponse) -> list[str]:
        """The response's answered items in its instrument's order (PostgreSQL's jsonb keeps no key order)."""
        try:
            items = [i.id for i in self.registry.get(response.instrument, response.instrument_version).items]
        except BadInput:
            # The definition was withdrawn from the instruments directory; the answers stay readable.
            items = sorted(response.answers)
        return [i for i in items if i in response.answers]

    async def submit(self, actor: Actor, data: QuestionnaireInput, *, now: datetime) -> Submission:
        patient = await self._writer(actor)
        digest = data.digest()
        stored = await QuestionnaireResponse.get_or_none(patient_id=patient.id, client_id=data.client_id)
        if stored is not None:
            return await self._resent(stored, data, digest)
        instrument = self.registry.for_clinic(
            patient.clinic_id, data.instrument, data.instrument_version, version_field="instrument_version"
        )
        if instrument.answered_by is not AnsweredBy.QUESTIONNAIRE:
            raise BadInput("instrument", f"{instrument.id} is answered with logDiaryEntry")
        answers = check_answers(instrument, data.answers)
        scored = score(instrument, answers)
        try:
            async with in_transaction() as conn:
                patient = require_writable(await lock_patient(patient.id, conn))
                # Insert first: a concurrent resend then waits on the unique key and is judged as a resend,
                # not as a second answer to the prompt.
                response = await QuestionnaireResponse.create(
                    clinic_id=patient.clinic_id,
                    patient_id=patient.id,
                    client_id=data.client_id,
                    client_hash=digest,
                    instrument=instrument.id,
                    instrument_version=instrument.version,
                    answers=answers,
                    score=scored.score,
                    band=scored.band,
                    derived=scored.derived,
                    prompt_id=_prompt_id(data.prompt_id),
                    authored_at=now,
                    utc_offset_minutes=_offset_minutes(patient, now),
                    created_at=now,
                    using_db=conn,
                )
                prompt_error = await self._answer_prompt(response, data.prompt_id, now=now, conn=conn)
                alerts = await self.alerts.on_response(patient, response, now=now, using_db=conn)
        except IntegrityError:
            # A concurrent resend won the insert; judge ours against it.
            won = await QuestionnaireResponse.get_or_none(patient_id=patient.id, client_id=data.client_id)
            if won is None:
                raise
            return await self._resent(won, data, digest)
        await self.alerts.publish(alerts)
        return Submission(response, alerts, await self._safety_message(response), prompt_error)

    async def responses(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        first: int | None,
        after: str | None,
        instrument: str | None,
        now: datetime,
    ) -> Page[QuestionnaireResponse]:
        size = page_size(first)
        page_after = after_filter("authored_at", after, parse_instant, descending=True)
        if instrument is not None and len(instrument) > MAX_ID:
            # No response has such an instrument, and the ORM refuses to compare the column with it.
            raise BadInput("instrument", f"must be at most {MAX_ID} characters")
        patient = await reachable_patient(actor, patient_id)
        query = QuestionnaireResponse.filter(patient_id=patient.id, deleted_at=None)
        if instrument is not None:
            query = query.filter(instrument=instrument)
        rows = await query.filter(page_after).order_by("-authored_at", "-id").limit(size + 1)
        await audit.record(actor, "questionnaire.read", [patient.id], now=now)
        return make_page(rows, size, lambda r: (r.authored_at, r.id))

    async def _answer_prompt(
        self, response: QuestionnaireResponse, sent: str | UUID | None, *, now: datetime, conn: BaseDBAsyncClient
    ) -> DomainError | None:
        """Marks the prompt answered by `response`, or says why it cannot be and unlinks it.

        A prompt that cannot be answered does not refuse the response: the answers, a self-harm one above all,
        must reach the clinic and its alert rules whatever became of the check-in that asked for them.
        """
        if sent is None:
            return None
        try:
            await self._answer(response, sent, now=now, conn=conn)
        except DomainError as error:
            if response.prompt_id is not None:
                response.prompt_id = None
                await response.save(using_db=conn, update_fields=["prompt_id"])
            return error
        return None

    async def _answer(
        self, response: QuestionnaireResponse, sent: str | UUID, *, now: datetime, conn: BaseDBAsyncClient
    ) -> None:
        prompt_id = _prompt_id(sent)
        if prompt_id is None:
            raise NotFound("prompt", field="prompt_id")
        kind = frozenset({response.instrument})
        await self.prompts.answer(response.patient_id, prompt_id, kind=kind, now=now, using_db=conn)

    async def _resent(self, stored: QuestionnaireResponse, data: QuestionnaireInput, digest: str) -> Submission:
        if stored.client_hash != digest:
            raise Conflict("a response with this clientId exists with different answers", field="client_id")
        prompt_error = None
        if data.prompt_id is not None and stored.prompt_id is None:
            prompt_error = await self._prompt_problem(stored, data.prompt_id)
        return Submission(stored, [], await self._safety_message(stored), prompt_error)

    async def _prompt_problem(self, stored: QuestionnaireResponse, sent: str | UUID) -> DomainError:
        """Why the first submission could not answer its prompt, judged again as of then; a resend writes nothing."""
        try:
            async with in_transaction() as conn:
                await self._answer(stored, sent, now=stored.created_at, conn=conn)
                raise _DryRun
        except DomainError as error:
            return error
        except _DryRun:
            # Answerable now though it was not then (cancelled, then revived by a replan): still not its prompt.
            return NotFound("prompt", field="prompt_id")

    async def _safety_message(self, response: QuestionnaireResponse) -> str | None:
        if response.derived.get(SELF_HARM) is not True:
            return None
        return await self.alerts.crisis_message(response.clinic_id)

    async def _writer(self, actor: Actor) -> Patient:
        """Checked again in the write's transaction, under the patient's lock (`lock_patient`): an erasure may
        commit between this check and the write."""
        return require_writable(await reachable_patient(actor, require_patient(actor)))


def _prompt_id(value: str | UUID | None) -> UUID | None:
    """The prompt's id; None for none, or for a malformed one, which no prompt has."""
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except ValueError:
        return None


def _offset_minutes(patient: Patient, now: datetime) -> int:
    offset = now.astimezone(ZoneInfo(patient.timezone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0
