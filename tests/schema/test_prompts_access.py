"""Who may call the scheduling operations: prompts, plans, sessions, preferences and devices.

For every operation: the unauthenticated caller is refused, a role that may never call it is FORBIDDEN, someone
else's object answers NOT_FOUND exactly as an id that does not exist, and the right actor succeeds. A refusal
changes nothing and leaves no audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.domain.actor import Actor, Role
from api.domain.audit.models import AuditEvent
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName
from api.domain.treatment.models import InfusionSession, TreatmentCourse
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

MY_PROMPTS = "query MyPrompts { myPrompts { id status } }"
PROMPT_PLANS = "query Plans { promptPlans { id name isDefault rules { id kind } } }"
SESSIONS = "query Sessions($id: ID!) { patient(id: $id) { id sessions { id status } } }"
COURSES = "query Courses($id: ID!) { patient(id: $id) { id courses { id status } } }"
PROMPTS = "query Prompts($id: ID!) { patient(id: $id) { id prompts { id status } } }"
ADHERENCE = "query Adherence($id: ID!) { patient(id: $id) { id adherence { instrument rate } } }"
ACKNOWLEDGE = """
mutation Acknowledge($id: ID!, $event: PromptEvent!) { acknowledgePrompt(id: $id, event: $event) { id status } }
"""
ENROLL = """
mutation Enroll($patientId: ID!, $planId: ID!) { enrollPatient(patientId: $patientId, planId: $planId) { id } }
"""
PREFERENCES = "mutation Preferences($input: PreferencesInput!) { updateMyPreferences(input: $input) { id diaryTime } }"
SCHEDULE = "mutation Schedule($input: ScheduleInfusionInput!) { scheduleInfusion(input: $input) { id status } }"
UPDATE = """
mutation Update($id: ID!, $input: UpdateInfusionInput!) { updateInfusion(id: $id, input: $input) { id startsAt } }
"""
REGISTER = "mutation Register($input: DeviceInput!) { registerDevice(input: $input) { id provider } }"
UNREGISTER = "mutation Unregister($token: String!) { unregisterDevice(token: $token) }"

ALICE_TOKEN = "alice-phone-token"


@dataclass
class World:
    clinician: Staff
    admin: Staff
    alice: PatientUser
    bob: PatientUser
    away_clinician: Staff
    away_admin: Staff
    carol: PatientUser  # the other clinic's patient
    alice_prompt: UUID  # sent, so acknowledgeable
    alice_session: UUID
    carol_session: UUID
    home_plan: UUID
    away_plan: UUID

    def actor(self, who: str) -> Actor:
        people: dict[str, Actor] = {
            "alice": self.alice.actor,
            "bob": self.bob.actor,
            "clinician": self.clinician.actor,
            "admin": self.admin.actor,
            "away clinician": self.away_clinician.actor,
            "away admin": self.away_admin.actor,
        }
        return people[who]


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    home, away = await factory.clinic("Home"), await factory.clinic("Away")
    joined = now - timedelta(days=2)
    alice = await factory.patient(home, name="Alice", joined=joined)
    bob = await factory.patient(home, name="Bob", joined=joined)
    carol = await factory.patient(away, name="Carol", joined=joined)
    clinician, away_clinician = await factory.staff(home), await factory.staff(away)
    alice_session = await _book(factory, clinician, alice, now)
    carol_session = await _book(factory, away_clinician, carol, now)
    await devices.register(alice.actor, ProviderName.FCM, ALICE_TOKEN, "android", now=now)
    # The biweekly PHQ-9 came due at 18:00 local on the day she joined; the app has received it.
    prompt = await Prompt.get(patient_id=alice.patient.id, instrument="phq9")
    await Prompt.filter(id=prompt.id).update(status=PromptStatus.SENT, sent_at=prompt.due_at)
    return World(
        clinician=clinician,
        admin=await factory.staff(home, Role.ADMIN),
        alice=alice,
        bob=bob,
        away_clinician=away_clinician,
        away_admin=await factory.staff(away, Role.ADMIN),
        carol=carol,
        alice_prompt=prompt.id,
        alice_session=alice_session.id,
        carol_session=carol_session.id,
        home_plan=(await PromptPlan.get(clinic_id=home.id)).id,
        away_plan=(await PromptPlan.get(clinic_id=away.id)).id,
    )


async def _book(factory: Factory, staff: Staff, patient: PatientUser, now: datetime) -> InfusionSession:
    return await factory.services.treatment.schedule(
        staff.actor,
        patient.patient.id,
        starts_at=now + timedelta(days=3),
        planned_duration_minutes=40,
        course_id=None,
        now=now,
    )


Variables = Callable[[World], dict[str, Any]]


def _patient(w: World) -> dict[str, Any]:
    return {"id": str(w.alice.patient.id)}


def _session_input(patient_id: object) -> dict[str, Any]:
    return {"patientId": str(patient_id), "startsAt": "2026-12-03T15:00:00+00:00", "plannedDurationMinutes": 45}


# Each operation with variables that the right actor may use.
OPERATIONS: dict[str, tuple[str, Variables]] = {
    "myPrompts": (MY_PROMPTS, lambda w: {}),
    "promptPlans": (PROMPT_PLANS, lambda w: {}),
    "patient.sessions": (SESSIONS, _patient),
    "patient.courses": (COURSES, _patient),
    "patient.prompts": (PROMPTS, _patient),
    "patient.adherence": (ADHERENCE, _patient),
    "acknowledgePrompt": (ACKNOWLEDGE, lambda w: {"id": str(w.alice_prompt), "event": "OPENED"}),
    "enrollPatient": (ENROLL, lambda w: {"patientId": str(w.alice.patient.id), "planId": str(w.home_plan)}),
    "updateMyPreferences": (PREFERENCES, lambda w: {"input": {"diaryTime": "19:00"}}),
    "scheduleInfusion": (SCHEDULE, lambda w: {"input": _session_input(w.alice.patient.id)}),
    "updateInfusion": (
        UPDATE,
        lambda w: {"id": str(w.alice_session), "input": {"startsAt": "2026-11-30T16:00:00+00:00"}},
    ),
    "registerDevice": (REGISTER, lambda w: {"input": {"provider": "APNS", "token": "a-new-phone"}}),
    "unregisterDevice": (UNREGISTER, lambda w: {"token": ALICE_TOKEN}),
}

RIGHT_ACTORS = {
    "myPrompts": ["alice"],
    "promptPlans": ["clinician", "admin"],
    "patient.sessions": ["clinician", "admin", "alice"],
    "patient.courses": ["clinician", "admin", "alice"],
    "patient.prompts": ["clinician", "admin", "alice"],
    "patient.adherence": ["clinician", "admin", "alice"],
    "acknowledgePrompt": ["alice"],
    "enrollPatient": ["clinician", "admin"],
    "updateMyPreferences": ["alice"],
    "scheduleInfusion": ["clinician", "admin"],
    "updateInfusion": ["clinician", "admin"],
    "registerDevice": ["alice"],
    "unregisterDevice": ["alice"],
}

WRONG_ROLES = {
    "myPrompts": ["clinician", "admin"],
    "promptPlans": ["alice"],
    "acknowledgePrompt": ["clinician", "admin"],
    "enrollPatient": ["alice"],
    "updateMyPreferences": ["clinician", "admin"],
    "scheduleInfusion": ["alice"],
    "updateInfusion": ["alice"],
    "registerDevice": ["clinician", "admin"],
    "unregisterDevice": ["clinician", "admin"],
}


def _random(w: World) -> str:
    return str(uuid4())


# (operation, who asks, variables naming someone else's object, the same with an id that does not exist)
HIDDEN: list[tuple[str, str, Variables, Variables]] = [
    *[
        (op, who, _patient, lambda w: {"id": _random(w)})
        for op in ("patient.sessions", "patient.courses", "patient.prompts", "patient.adherence")
        for who in ("bob", "away clinician", "away admin")
    ],
    (
        "acknowledgePrompt",
        "bob",
        lambda w: {"id": str(w.alice_prompt), "event": "OPENED"},
        lambda w: {"id": _random(w), "event": "OPENED"},
    ),
    (
        "enrollPatient",
        "clinician",
        lambda w: {"patientId": str(w.carol.patient.id), "planId": str(w.home_plan)},
        lambda w: {"patientId": _random(w), "planId": str(w.home_plan)},
    ),
    (
        "enrollPatient",
        "clinician",
        lambda w: {"patientId": str(w.alice.patient.id), "planId": str(w.away_plan)},
        lambda w: {"patientId": str(w.alice.patient.id), "planId": _random(w)},
    ),
    (
        "enrollPatient",
        "away admin",
        lambda w: {"patientId": str(w.alice.patient.id), "planId": str(w.away_plan)},
        lambda w: {"patientId": _random(w), "planId": str(w.away_plan)},
    ),
    (
        "scheduleInfusion",
        "clinician",
        lambda w: {"input": _session_input(w.carol.patient.id)},
        lambda w: {"input": _session_input(_random(w))},
    ),
    (
        "scheduleInfusion",
        "away clinician",
        lambda w: {"input": _session_input(w.alice.patient.id)},
        lambda w: {"input": _session_input(_random(w))},
    ),
    (
        "updateInfusion",
        "clinician",
        lambda w: {"id": str(w.carol_session), "input": {"status": "CANCELLED"}},
        lambda w: {"id": _random(w), "input": {"status": "CANCELLED"}},
    ),
    (
        "updateInfusion",
        "away admin",
        lambda w: {"id": str(w.alice_session), "input": {"status": "CANCELLED"}},
        lambda w: {"id": _random(w), "input": {"status": "CANCELLED"}},
    ),
]


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row the scheduling operations could write, column by column."""
    models = [Prompt, PromptPlan, InfusionSession, TreatmentCourse, Device, Patient, DiaryEntry, AuditEvent]
    return {m.__name__: list(await m.all().order_by("id").values()) for m in models}


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_unauthenticated_callers_are_refused(name: str, world: World, gql: GraphQLClient) -> None:
    query, variables = OPERATIONS[name]
    before = await snapshot()

    result = await gql(query, variables(world), actor=None)

    assert result.codes == ["UNAUTHENTICATED"], result.errors
    assert result.data is None or all(value is None for value in result.data.values())
    assert await snapshot() == before


@pytest.mark.parametrize("name", list(WRONG_ROLES))
async def test_a_role_that_may_never_call_it_is_forbidden(name: str, world: World, gql: GraphQLClient) -> None:
    query, variables = OPERATIONS[name]
    before = await snapshot()

    for who in WRONG_ROLES[name]:
        result = await gql(query, variables(world), actor=world.actor(who))

        assert result.codes == ["FORBIDDEN"], (who, result.errors)
        assert result.data is None, who
    assert await snapshot() == before


@pytest.mark.parametrize("name", sorted({name for name, *_ in HIDDEN}))
async def test_someone_elses_object_is_not_found_exactly_like_a_missing_one(
    name: str, world: World, gql: GraphQLClient
) -> None:
    query, _ = OPERATIONS[name]
    secrets = ("Alice", "Carol", str(world.alice_prompt), str(world.carol_session), str(world.alice_session))
    before = await snapshot()

    for case, (_, who, hidden, missing) in enumerate(c for c in HIDDEN if c[0] == name):
        actor = world.actor(who)
        refused = await gql(query, hidden(world), actor=actor)
        absent = await gql(query, missing(world), actor=actor)

        assert refused.codes == ["NOT_FOUND"], (case, who, refused.errors)
        assert refused.errors == absent.errors, (case, who)
        assert refused.data == absent.data, (case, who)
        assert not [s for s in secrets if s in repr(refused.errors)], (case, who)
    assert await snapshot() == before


@pytest.mark.parametrize("name", list(RIGHT_ACTORS))
async def test_the_right_actor_succeeds(name: str, world: World, gql: GraphQLClient) -> None:
    query, variables = OPERATIONS[name]

    for who in RIGHT_ACTORS[name]:
        data = (await gql(query, variables(world), actor=world.actor(who))).ok()

        value = next(iter(data.values()))
        assert value not in (None, False, []), who


async def test_a_random_prompt_id_is_not_found_naming_the_id_argument(world: World, gql: GraphQLClient) -> None:
    """acknowledgePrompt's argument is `id`: a malformed id, an unknown one and another patient's one all say so."""
    results = [
        await gql(ACKNOWLEDGE, {"id": value, "event": "DELIVERED"}, actor=world.bob.actor)
        for value in ("not-a-uuid", str(uuid4()), str(world.alice_prompt))
    ]

    assert [r.codes for r in results] == [["NOT_FOUND"]] * 3
    assert [r.fields for r in results] == [["id"]] * 3


async def test_enrolling_in_an_unknown_plan_names_the_plan_id(world: World, gql: GraphQLClient) -> None:
    before = await snapshot()
    for plan in ("not-a-uuid", str(uuid4()), str(world.away_plan)):
        result = await gql(
            ENROLL, {"patientId": str(world.alice.patient.id), "planId": plan}, actor=world.clinician.actor
        )

        assert result.codes == ["NOT_FOUND"]
        assert result.fields == ["planId"]
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("name", "who", "variables"),
    [
        ("acknowledgePrompt", "clinician", {"id": "not-a-uuid", "event": "OPENED"}),
        ("enrollPatient", "alice", {"patientId": "not-a-uuid", "planId": "nor-this"}),
        (
            "scheduleInfusion",
            "alice",
            {"input": {"patientId": "x", "startsAt": "2026-12-03T15:00:00Z", "plannedDurationMinutes": 45}},
        ),
        ("updateInfusion", "alice", {"id": "not-a-uuid", "input": {"notes": "x"}}),
    ],
)
async def test_the_role_gate_comes_before_the_ids_are_read(
    name: str, who: str, variables: dict[str, Any], world: World, gql: GraphQLClient
) -> None:
    result = await gql(OPERATIONS[name][0], variables, actor=world.actor(who))

    assert result.codes == ["FORBIDDEN"], result.errors


async def test_a_malformed_session_id_is_not_found_exactly_like_a_random_one(world: World, gql: GraphQLClient) -> None:
    malformed = await gql(UPDATE, {"id": "not-a-uuid", "input": {"notes": "x"}}, actor=world.clinician.actor)
    random = await gql(UPDATE, {"id": str(uuid4()), "input": {"notes": "x"}}, actor=world.clinician.actor)

    assert malformed.codes == ["NOT_FOUND"]
    assert malformed.errors == random.errors
