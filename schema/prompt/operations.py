"""Prompt queries and mutations."""

from __future__ import annotations

import strawberry

from api.domain.patient.access import require_patient, require_staff
from api.domain.prompt import plans
from api.domain.prompt.service import PreferenceChange
from schema.context import Info
from schema.ids import parse_id
from schema.patient.types import Patient
from schema.prompt.types import Prompt, PromptEvent, PromptPlan, PromptStatus


@strawberry.input(description="Only the fields given change. Times are local HH:MM.")
class PreferencesInput:
    timezone: str | None = None
    diary_time: str | None = None
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    notifications_enabled: bool | None = None


@strawberry.type
class PromptQuery:
    @strawberry.field(description="The signed-in patient's check-ins that have come due, newest first.")
    async def my_prompts(self, info: Info, status: list[PromptStatus] | None = None) -> list[Prompt]:  # type: ignore[valid-type]
        ctx = info.context
        rows = await ctx.services.prompts.mine(ctx.require_actor(), status, now=ctx.now)
        return [Prompt.from_model(p) for p in rows]

    @strawberry.field(description="Clinic staff: the clinic's current prompt plans.")
    async def prompt_plans(self, info: Info) -> list[PromptPlan]:
        ctx = info.context
        return [PromptPlan.from_model(p) for p in await plans.current_plans(ctx.require_actor(), now=ctx.now)]


@strawberry.type
class PromptMutation:
    @strawberry.mutation(description="The app reports that a check-in reached the phone or was opened.")
    async def acknowledge_prompt(self, info: Info, id: strawberry.ID, event: PromptEvent) -> Prompt:  # type: ignore[valid-type]
        ctx = info.context
        actor = ctx.require_actor()
        require_patient(actor)  # before the id is read: staff are FORBIDDEN whatever id they send
        prompt = await ctx.services.prompts.acknowledge(actor, parse_id(id, "prompt"), event, now=ctx.now)
        return Prompt.from_model(prompt)

    @strawberry.mutation(description="Clinic staff: move a patient to a plan; unsent prompts are re-planned.")
    async def enroll_patient(self, info: Info, patient_id: strawberry.ID, plan_id: strawberry.ID) -> Patient:
        ctx = info.context
        actor = ctx.require_actor()
        require_staff(actor)  # before the ids are read: a patient is FORBIDDEN whatever ids it sends
        patient = await ctx.services.prompts.enroll(
            actor,
            parse_id(patient_id, "patient", field="patient_id"),
            parse_id(plan_id, "prompt plan", field="plan_id"),
            now=ctx.now,
        )
        return Patient.from_model(patient)

    @strawberry.mutation(description="The patient's own time zone, diary time, quiet hours and notifications.")
    async def update_my_preferences(self, info: Info, input: PreferencesInput) -> Patient:
        ctx = info.context
        change = PreferenceChange(
            timezone=input.timezone,
            diary_time=input.diary_time,
            quiet_hours_start=input.quiet_hours_start,
            quiet_hours_end=input.quiet_hours_end,
            notifications_enabled=input.notifications_enabled,
        )
        patient = await ctx.services.prompts.update_preferences(ctx.require_actor(), change, now=ctx.now)
        return Patient.from_model(patient)
