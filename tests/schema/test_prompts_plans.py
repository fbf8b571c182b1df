"""promptPlans and enrollPatient: staff see their clinic's current plans; enrolling re-plans unsent prompts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

import tests.conftest
from api.container import build_job_config
from api.domain.account.models import Clinic
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptPlan
from api.domain.prompt.rules import Rule, RuleKind
from jobs import passes
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

PLANS = """
query Plans {
  promptPlans {
    id name version isDefault
    rules { id kind instrument offsetMinutes at everyDays weekday windowMinutes reminderMinutes quietHours }
  }
}
"""
ENROLL = """
mutation Enroll($patientId: ID!, $planId: ID!) {
  enrollPatient(patientId: $patientId, planId: $planId) { id displayName timezone }
}
"""
PROMPTS = "query Prompts($id: ID!) { patient(id: $id) { prompts { id ruleId dueAt status } } }"

JOINED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 07:00 in New York
QUESTIONNAIRES_DUE = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
MORNING = Rule("morning_sleep", RuleKind.DAILY, "daily_diary", window=timedelta(hours=4), at=time(8, 0))


@dataclass
class Home:
    clinic: Clinic
    clinician: Staff
    alice: PatientUser


@pytest.fixture
async def home(factory: Factory) -> Home:
    clinic = await factory.clinic("Home")
    alice = await factory.patient(clinic, name="Alice", timezone="America/New_York", joined=JOINED)
    return Home(clinic, await factory.staff(clinic), alice)


async def add_plan(
    clinic: Clinic, name: str, *, version: int = 1, current: bool = True, family: UUID | None = None
) -> PromptPlan:
    return await PromptPlan.create(
        clinic_id=clinic.id,
        family_id=family or uuid4(),
        name=name,
        version=version,
        is_default=False,
        is_current=current,
        rules=[MORNING.to_json()],
        created_at=JOINED,
    )


async def test_staff_see_their_clinics_current_plans_default_first(
    home: Home, factory: Factory, gql: GraphQLClient
) -> None:
    away = await factory.clinic("Away")
    await factory.patient(away, joined=JOINED)  # the other clinic has its own default plan
    old = await add_plan(home.clinic, "Morning check", version=1, current=False)
    morning = await add_plan(home.clinic, "Morning check", version=2, family=old.family_id)
    default = await PromptPlan.get(clinic_id=home.clinic.id, is_default=True)

    plans = (await gql(PLANS, actor=home.clinician.actor)).ok()["promptPlans"]

    assert [(p["id"], p["name"], p["version"], p["isDefault"]) for p in plans] == [
        (str(default.id), "Standard follow-up", 1, True),
        (str(morning.id), "Morning check", 2, False),
    ]
    rules = {r["id"]: r for r in plans[0]["rules"]}
    assert rules["daily_diary"] == {
        "id": "daily_diary",
        "kind": "DAILY",
        "instrument": "daily_diary",
        "offsetMinutes": 0,
        "at": None,
        "everyDays": 1,
        "weekday": None,
        "windowMinutes": 420,
        "reminderMinutes": [60, 120],
        "quietHours": True,
    }
    assert (rules["phq9_biweekly"]["at"], rules["phq9_biweekly"]["everyDays"]) == ("18:00", 14)
    assert (rules["post_infusion_2h"]["kind"], rules["post_infusion_2h"]["offsetMinutes"]) == ("AFTER_SESSION", 120)
    assert plans[1]["rules"] == [
        {
            "id": "morning_sleep",
            "kind": "DAILY",
            "instrument": "daily_diary",
            "offsetMinutes": 0,
            "at": "08:00",
            "everyDays": 1,
            "weekday": None,
            "windowMinutes": 240,
            "reminderMinutes": [],
            "quietHours": True,
        }
    ]


async def test_a_clinic_without_patients_still_has_its_default_plan(factory: Factory, gql: GraphQLClient) -> None:
    staff = await factory.staff(await factory.clinic())

    plans = (await gql(PLANS, actor=staff.actor)).ok()["promptPlans"]

    assert [(p["name"], p["isDefault"]) for p in plans] == [("Standard follow-up", True)]


async def prompts(gql: GraphQLClient, home: Home, at: datetime) -> list[dict[str, Any]]:
    result = (await gql(PROMPTS, {"id": str(home.alice.patient.id)}, actor=home.clinician.actor, now=at)).ok()
    rows = result["patient"]["prompts"]
    assert isinstance(rows, list)
    return rows


async def test_enrolling_re_plans_unsent_prompts_and_keeps_sent_ones(
    home: Home, gql: GraphQLClient, now: datetime
) -> None:
    for at in (QUESTIONNAIRES_DUE, now):
        await passes.tick(build_job_config(tests.conftest.make_settings()), at)
    morning = await add_plan(home.clinic, "Morning check")
    before = {p["id"]: p for p in await prompts(gql, home, now)}

    result = await gql(
        ENROLL, {"patientId": str(home.alice.patient.id), "planId": str(morning.id)}, actor=home.clinician.actor
    )

    assert result.ok()["enrollPatient"] == {
        "id": str(home.alice.patient.id),
        "displayName": "Alice",
        "timezone": "America/New_York",
    }
    assert (await Patient.get(id=home.alice.patient.id)).plan_family_id == morning.family_id
    after = {p["id"]: p for p in await prompts(gql, home, now)}
    # What was sent stays as it was; what was waiting for the old plan's rules is cancelled.
    for prompt_id, old in before.items():
        expected = "CANCELLED" if old["status"] == "SCHEDULED" else old["status"]
        assert after[prompt_id]["status"] == expected, old
    assert {(p["ruleId"], p["status"]) for p in before.values() if p["status"] != "SCHEDULED"} == {
        ("phq9_biweekly", "SENT"),
        ("gad7_biweekly", "SENT"),
        ("daily_diary", "EXPIRED"),
    }
    # The new rule's prompts: 08:00 in New York each day from today, none backfilled.
    new = sorted(p["dueAt"] for p in after.values() if p["id"] not in before)
    assert {p["ruleId"] for p in after.values() if p["id"] not in before} == {"morning_sleep"}
    assert new[0] == "2026-11-26T13:00:00+00:00"
    assert new == [(datetime(2026, 11, 26, 13, tzinfo=UTC) + timedelta(days=d)).isoformat() for d in range(len(new))]
    assert len(new) == 7


async def test_an_old_version_of_a_plan_cannot_be_enrolled_in(home: Home, gql: GraphQLClient) -> None:
    old = await add_plan(home.clinic, "Morning check", version=1, current=False)
    await add_plan(home.clinic, "Morning check", version=2, family=old.family_id)
    before = (await Patient.all().order_by("id").values(), await Prompt.all().order_by("id").values())

    result = await gql(
        ENROLL, {"patientId": str(home.alice.patient.id), "planId": str(old.id)}, actor=home.clinician.actor
    )

    assert (result.codes, result.fields) == (["NOT_FOUND"], ["planId"])
    assert result.data is None
    assert (await Patient.all().order_by("id").values(), await Prompt.all().order_by("id").values()) == before
