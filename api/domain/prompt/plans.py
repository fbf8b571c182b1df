"""Prompt plans: every clinic has a default; a patient follows the current version of one plan family."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient

from api.domain.actor import Actor
from api.domain.errors import NotFound
from api.domain.patient.access import require_staff
from api.domain.prompt.models import PromptPlan
from api.domain.prompt.rules import DEFAULT_RULES, Rule

DEFAULT_PLAN_NAME = "Standard follow-up"


async def default_plan(clinic_id: UUID, *, now: datetime, using_db: BaseDBAsyncClient | None = None) -> PromptPlan:
    """The clinic's current default plan, created on first use."""
    plan = await PromptPlan.get_or_none(clinic_id=clinic_id, is_default=True, is_current=True, using_db=using_db)
    if plan is None:
        plan = await PromptPlan.create(
            clinic_id=clinic_id,
            family_id=uuid4(),
            name=DEFAULT_PLAN_NAME,
            version=1,
            is_default=True,
            is_current=True,
            rules=[r.to_json() for r in DEFAULT_RULES],
            created_at=now,
            using_db=using_db,
        )
    return plan


async def current_plans(actor: Actor, *, now: datetime) -> list[PromptPlan]:
    require_staff(actor)
    await default_plan(actor.clinic_id, now=now)
    return await PromptPlan.filter(clinic_id=actor.clinic_id, is_current=True).order_by("-is_default", "name")


async def plan_for_enrolment(actor: Actor, plan_id: UUID) -> PromptPlan:
    """A current plan of the actor's clinic; older versions and other clinics' plans are not found."""
    require_staff(actor)
    plan = await PromptPlan.get_or_none(id=plan_id, clinic_id=actor.clinic_id, is_current=True)
    if plan is None:
        raise NotFound("prompt plan", field="plan_id")
    return plan


def rules_of(plan: PromptPlan) -> list[Rule]:
    return [Rule.from_json(r) for r in plan.rules]
