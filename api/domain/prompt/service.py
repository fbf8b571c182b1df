"""What patients and clinicians do with prompts: list, acknowledge, answer, enrol, adherence; and expiry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor
from api.domain.clock import require_aware
from api.domain.errors import BadInput, Conflict, DomainError, ErrorCode, NotFound
from api.domain.patient.access import (
    lock_patient,
    reachable_patient,
    require_not_erased,
    require_not_gone,
    require_patient,
)
from api.domain.patient.models import Patient
from api.domain.prompt.localtime import parse_hhmm
from api.domain.prompt.models import OPEN_STATUSES, Prompt, PromptStatus
from api.domain.prompt.plans import plan_for_enrolment
from api.domain.prompt.scheduling import SchedulingPolicy, replan
from api.domain.timezones import check_timezone

ANSWERABLE = (PromptStatus.SCHEDULED, *OPEN_STATUSES)
# Check-ins a diary entry answers; the questionnaires (PHQ-9, GAD-7, PGIC) are answered by submitting them.
ANSWERED_BY_DIARY = frozenset({"daily_diary", "post_infusion", "pre_session"})
# Exactly two ASCII digits each: `int()` alone would also take " 7", "+7" and other scripts' digits.
HHMM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)
# The newest prompts a patient (`mine`) and their clinician (`of_patient`) see in one list.
MINE_LIMIT = 200
PATIENT_LIMIT = 500
PREFERENCE_FIELDS = ("timezone", "diary_time", "quiet_hours_start", "quiet_hours_end", "notifications_enabled")


class PromptExpired(DomainError):
    code = ErrorCode.PROMPT_EXPIRED


class PromptEvent(StrEnum):
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"


@dataclass(frozen=True)
class PreferenceChange:
    timezone: str | None = None
    diary_time: str | None = None
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    notifications_enabled: bool | None = None


@dataclass(frozen=True)
class Adherence:
    instrument: str | None
    answered: int
    expired: int

    @property
    def rate(self) -> float | None:
        """answered ÷ (answered + expired); None before anything was due."""
        total = self.answered + self.expired
        return self.answered / total if total else None


class PromptService:
    def __init__(self, scheduling: SchedulingPolicy) -> None:
        self.scheduling = scheduling

    async def mine(self, actor: Actor, statuses: Sequence[PromptStatus] | None, *, now: datetime) -> list[Prompt]:
        """The patient's prompts that are due (or were), newest first; future ones are not shown yet.

        Cancelled prompts were never sent (their session moved or was cancelled): shown only when asked for.
        """
        patient = await reachable_patient(actor, require_patient(actor))
        query = Prompt.filter(patient_id=patient.id, due_at__lte=now)
        query = query.filter(status__in=list(statuses)) if statuses else query.exclude(status=PromptStatus.CANCELLED)
        return await query.order_by("-due_at", "-id").limit(MINE_LIMIT)

    async def of_patient(self, actor: Actor, patient_id: UUID, *, now: datetime) -> list[Prompt]:
        patient = await reachable_patient(actor, patient_id)
        await audit.record(actor, "prompt.read", [patient.id], now=now)
        return await Prompt.filter(patient_id=patient.id).order_by("-due_at", "-id").limit(PATIENT_LIMIT)

    async def acknowledge(self, actor: Actor, prompt_id: UUID, event: PromptEvent, *, now: datetime) -> Prompt:
        patient = await reachable_patient(actor, require_patient(actor))
        async with in_transaction() as conn:
            # The argument of acknowledgePrompt is `id`.
            prompt = await _own_prompt(patient.id, prompt_id, conn, field="id")
            # Events only move forward; a late or repeated receipt changes nothing.
            if event is PromptEvent.DELIVERED and prompt.status is PromptStatus.SENT:
                prompt.status, prompt.delivered_at = PromptStatus.DELIVERED, now
            elif event is PromptEvent.OPENED and prompt.status in (PromptStatus.SENT, PromptStatus.DELIVERED):
                prompt.status, prompt.opened_at = PromptStatus.OPENED, now
                prompt.delivered_at = prompt.delivered_at or now
            else:
                return prompt
            prompt.updated_at = now
            await prompt.save(using_db=conn)
        return prompt

    async def answer(
        self, patient_id: UUID, prompt_id: UUID, *, kind: frozenset[str], now: datetime, using_db: BaseDBAsyncClient
    ) -> Prompt:
        """Marks a prompt answered by a diary entry or questionnaire written in the same transaction."""
        prompt = await _own_prompt(patient_id, prompt_id, using_db)
        if prompt.instrument not in kind:
            raise BadInput("prompt_id", f"this check-in is answered with the {prompt.instrument} questionnaire")
        if prompt.status is PromptStatus.ANSWERED:
            raise Conflict("this check-in is already answered", field="prompt_id")
        if prompt.status is PromptStatus.EXPIRED or prompt.expires_at <= now:
            raise PromptExpired("this check-in has closed; log a diary entry without it", field="prompt_id")
        if prompt.status not in ANSWERABLE or prompt.due_at > now:
            raise NotFound("prompt", field="prompt_id")
        prompt.status, prompt.answered_at, prompt.updated_at = PromptStatus.ANSWERED, now, now
        await prompt.save(using_db=using_db, update_fields=["status", "answered_at", "updated_at"])
        return prompt

    async def enroll(self, actor: Actor, patient_id: UUID, plan_id: UUID, *, now: datetime) -> Patient:
        plan = await plan_for_enrolment(actor, plan_id)
        patient = await self._patient(actor, patient_id)
        require_not_erased(patient)
        async with in_transaction() as conn:
            # Checked again under the patient's lock: an erasure may have committed since (`lock_patient`).
            patient = await lock_patient(patient.id, conn)
            require_not_erased(patient)
            patient.plan_family_id = plan.family_id
            patient.enrolled_at = patient.enrolled_at or now
            await patient.save(using_db=conn, update_fields=["plan_family_id", "enrolled_at"])
            await audit.record(
                actor, "patient.enroll", [patient.id], now=now, object_id=plan.id, write=True, using_db=conn
            )
        await replan([patient], self.scheduling, now=now)
        return patient

    async def update_preferences(self, actor: Actor, change: PreferenceChange, *, now: datetime) -> Patient:
        patient = await self._patient(actor, require_patient(actor))
        values = _preferences(change)
        async with in_transaction() as conn:
            # An erasure resets the preferences: one that committed since the check must not be undone by a save
            # that waited for it (`lock_patient`). Erased, the patient reaches nothing, as any call of theirs.
            patient = await lock_patient(patient.id, conn)
            require_not_gone(patient)
            for name, value in values.items():
                setattr(patient, name, value)
            # Only these columns: a concurrent change of status or plan is not overwritten with what we read.
            await patient.save(update_fields=list(PREFERENCE_FIELDS), using_db=conn)
        # Unsent prompts move to the new times; sent ones are history.
        await replan([patient], self.scheduling, now=now)
        return patient

    async def _patient(self, actor: Actor, patient_id: UUID) -> Patient:
        """Checked again in each write's transaction, under the patient's lock (`lock_patient`): an erasure may
        commit between this check and the write."""
        return await reachable_patient(actor, patient_id)

    async def adherence(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        now: datetime,
    ) -> list[Adherence]:
        """Per instrument and overall (instrument None), for prompts due in [start, end) (default: all time)."""
        patient = await reachable_patient(actor, patient_id)
        query = Prompt.filter(patient_id=patient.id, status__in=[PromptStatus.ANSWERED, PromptStatus.EXPIRED])
        if start is not None:
            query = query.filter(due_at__gte=require_aware(start, "from"))
        if end is not None:
            query = query.filter(due_at__lt=require_aware(end, "to"))
        await audit.record(actor, "prompt.adherence", [patient.id], now=now)
        rows = await query.group_by("instrument", "status").annotate(n=Count("id")).values("instrument", "status", "n")
        counts: dict[str, list[int]] = {}
        for row in rows:
            pair = counts.setdefault(str(row["instrument"]), [0, 0])
            pair[0 if row["status"] == PromptStatus.ANSWERED else 1] += int(row["n"])
        per = [Adherence(i, a, e) for i, (a, e) in sorted(counts.items())]
        return [Adherence(None, sum(x.answered for x in per), sum(x.expired for x in per)), *per]


def _preferences(change: PreferenceChange) -> dict[str, object]:
    """The changed preferences, checked."""
    values: dict[str, object] = {}
    if change.timezone is not None:
        values["timezone"] = check_timezone(change.timezone)
    for name in ("diary_time", "quiet_hours_start", "quiet_hours_end"):
        value = getattr(change, name)
        if value is not None:
            values[name] = _hhmm(value, name)
    if change.notifications_enabled is not None:
        values["notifications_enabled"] = change.notifications_enabled
    return values


async def expire_due(*, now: datetime, limit: int = 5000) -> int:
    """Windows that closed: the prompt is missed, never re-opened, never backfilled."""
    ids = await Prompt.filter(status__in=ANSWERABLE, expires_at__lte=now).limit(limit).values_list("id", flat=True)
    if not ids:
        return 0
    return await Prompt.filter(id__in=list(ids), status__in=ANSWERABLE).update(
        status=PromptStatus.EXPIRED, expired_at=now, updated_at=now
    )


async def _own_prompt(
    patient_id: UUID, prompt_id: UUID, conn: BaseDBAsyncClient, *, field: str = "prompt_id"
) -> Prompt:
    prompt = await Prompt.filter(id=prompt_id, patient_id=patient_id).select_for_update().using_db(conn).first()
    if prompt is None:
        raise NotFound("prompt", field=field)
    return prompt


def _hhmm(value: str, field: str) -> str:
    if not HHMM.fullmatch(value):
        raise BadInput(field, "must be a local time HH:MM, 00:00 to 23:59")
    return parse_hhmm(value).strftime("%H:%M")
