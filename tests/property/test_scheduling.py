"""Reconciling stored prompts with what the planner owes (api/domain/prompt/scheduling.py), in memory: the decision
step of a planning pass, with the rows a previous pass wrote standing in for the database.

Properties, for any plan the planner property tests draw:
- a second pass at the same moment changes nothing: no new, moved, revived or cancelled prompt;
- the first pass creates one prompt per owed (rule, anchor) whose window is still open, and each is stored as the
  planner owes it, in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given

from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptPlan
from api.domain.prompt.scheduling import PlanState, _Changes, _decide  # the pure step of a pass
from tests.property.strategies import checked
from tests.property.test_planner import Plan, plans

FAMILY, CLINIC = UUID(int=7), UUID(int=2)


def patient(plan: Plan) -> Patient:
    enrolled = datetime.combine(plan.prefs.enrolled_on, datetime.min.time(), tzinfo=UTC)
    who = Patient(
        id=UUID(int=1),
        display_name="P",
        search_name="p",
        timezone=plan.prefs.zone.key,
        status=PatientStatus.ACTIVE,
        plan_family_id=FAMILY,
        enrolled_at=enrolled,
    )
    # Set, not passed: a foreign key's id attribute exists only once Tortoise is initialised, and no database is.
    who.clinic_id = CLINIC
    return who


def state(plan: Plan, who: Patient, existing: dict[tuple[str, str], Prompt]) -> PlanState:
    stored = PromptPlan(id=UUID(int=8), family_id=FAMILY, name="p", version=1, rules=[])
    return PlanState(
        patients=[who],
        plans={FAMILY: stored},
        preferences={who.id: plan.prefs},
        wanted={who.id: plan.owed()},
        existing={who.id: existing},
    )


@checked(150)
@given(plans())
def test_a_second_pass_at_the_same_moment_changes_nothing(plan: Plan) -> None:
    who, now = patient(plan), plan.start + (plan.end - plan.start) / 2
    first = _Changes()
    _decide(who, state(plan, who, {}), first, now)
    written = {(p.rule_id, p.anchor): p for p in first.new}

    again = _Changes()
    _decide(who, state(plan, who, written), again, now)

    assert (again.new, again.moved, again.revived, again.cancelled) == ([], [], [], [])
    open_windows = [o for o in plan.owed() if o.expires_at > now]
    assert sorted(written) == sorted((o.rule_id, o.anchor) for o in open_windows)
    for o in open_windows:
        row = written[(o.rule_id, o.anchor)]
        assert (row.due_at, row.deliver_at, row.expires_at, row.push) == (o.due_at, o.deliver_at, o.expires_at, o.push)
        assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in (row.due_at, row.deliver_at))
