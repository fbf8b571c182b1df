"""scheduleInfusion and updateInfusion over GraphQL: prompts follow every booking, move, completion and
cancellation; every refusal names its field and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

import tests.conftest
from api.container import build_job_config
from api.domain.audit.models import AuditEvent
from api.domain.prompt.models import Prompt
from api.domain.treatment.models import InfusionSession, TreatmentCourse
from jobs import passes
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient

SESSION_FIELDS = "id courseId startsAt plannedDurationMinutes status startedAt endedAt doseMg notes"
SCHEDULE = f"""
mutation Schedule($input: ScheduleInfusionInput!) {{ scheduleInfusion(input: $input) {{ {SESSION_FIELDS} }} }}
"""
UPDATE = f"""
mutation Update($id: ID!, $input: UpdateInfusionInput!) {{
  updateInfusion(id: $id, input: $input) {{ {SESSION_FIELDS} }}
}}
"""
CHART = f"""
query Chart($id: ID!) {{
  patient(id: $id) {{
    sessions {{ {SESSION_FIELDS} }}
    courses {{ id status }}
    prompts {{ id ruleId instrument sessionId dueAt deliverAt expiresAt status late }}
  }}
}}
"""

STARTS = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 10:00 in New York, two days after `now`
AFTER = STARTS + timedelta(hours=2)  # when the clinic records how the session went
FOLLOW_UPS = {"pre_session", "post_infusion_2h", "post_infusion_24h", "post_infusion_72h"}


@dataclass
class Ward:
    clinician: Staff
    alice: PatientUser
    bob: PatientUser


@pytest.fixture
async def ward(factory: Factory, now: datetime) -> Ward:
    clinic = await factory.clinic()
    joined = now - timedelta(days=2)
    alice = await factory.patient(clinic, name="Alice", timezone="America/New_York", joined=joined)
    bob = await factory.patient(clinic, name="Bob", joined=joined)
    return Ward(await factory.staff(clinic), alice, bob)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


async def tick(at: datetime) -> None:
    await passes.tick(build_job_config(tests.conftest.make_settings()), at)


async def schedule(gql: GraphQLClient, ward: Ward, starts: datetime = STARTS, minutes: int = 40) -> dict[str, Any]:
    booking = {
        "patientId": str(ward.alice.patient.id),
        "startsAt": starts.isoformat(),
        "plannedDurationMinutes": minutes,
    }
    variables = {"input": booking}
    result = (await gql(SCHEDULE, variables, actor=ward.clinician.actor)).ok()["scheduleInfusion"]
    assert isinstance(result, dict)
    return result


async def chart(gql: GraphQLClient, ward: Ward, now: datetime | None = None) -> dict[str, Any]:
    result = (await gql(CHART, {"id": str(ward.alice.patient.id)}, actor=ward.clinician.actor, now=now)).ok()
    patient = result["patient"]
    assert isinstance(patient, dict)
    return patient


def follow_ups(patient: dict[str, Any], session_id: str) -> dict[str, dict[str, Any]]:
    """The session's prompts by rule."""
    return {p["ruleId"]: p for p in patient["prompts"] if p["sessionId"] == session_id}


async def stored() -> dict[str, list[dict[str, Any]]]:
    models = [InfusionSession, TreatmentCourse, Prompt, AuditEvent]
    return {m.__name__: list(await m.all().order_by("id").values()) for m in models}


async def test_scheduling_returns_the_session_and_plans_its_follow_ups(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)

    assert session["startsAt"] == "2026-11-28T15:00:00+00:00"
    assert session["plannedDurationMinutes"] == 40
    assert (session["status"], session["startedAt"], session["endedAt"], session["doseMg"]) == (
        "SCHEDULED",
        None,
        None,
        None,
    )
    patient = await chart(gql, ward)
    assert [s["id"] for s in patient["sessions"]] == [session["id"]]
    assert patient["courses"] == [{"id": session["courseId"], "status": "ACTIVE"}]
    prompts = follow_ups(patient, session["id"])
    assert set(prompts) == FOLLOW_UPS
    ends = STARTS + timedelta(minutes=40)
    expected = {
        "pre_session": ("pre_session", STARTS - timedelta(hours=24), STARTS),
        "post_infusion_2h": ("post_infusion", ends + timedelta(hours=2), ends + timedelta(hours=6)),
        "post_infusion_24h": ("post_infusion", ends + timedelta(hours=24), ends + timedelta(hours=36)),
        "post_infusion_72h": ("post_infusion", ends + timedelta(hours=72), ends + timedelta(hours=96)),
    }
    for rule, (instrument, due, expires) in expected.items():
        prompt = prompts[rule]
        assert prompt["instrument"] == instrument
        # All fall in the daytime in New York: delivered when due.
        assert (prompt["dueAt"], prompt["deliverAt"], prompt["expiresAt"]) == (iso(due), iso(due), iso(expires))
        assert (prompt["status"], prompt["late"]) == ("SCHEDULED", False)


async def test_a_session_sent_with_an_offset_is_the_same_instant(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward, starts=datetime.fromisoformat("2026-11-28T10:00:00-05:00"))

    assert session["startsAt"] == "2026-11-28T15:00:00+00:00"
    prompts = follow_ups(await chart(gql, ward), session["id"])
    assert prompts["pre_session"]["dueAt"] == "2026-11-27T15:00:00+00:00"


async def test_a_second_session_joins_the_active_course(gql: GraphQLClient, ward: Ward) -> None:
    first = await schedule(gql, ward)
    second = await schedule(gql, ward, starts=STARTS + timedelta(days=2))

    assert second["courseId"] == first["courseId"]
    patient = await chart(gql, ward)
    assert [s["id"] for s in patient["sessions"]] == [first["id"], second["id"]]


async def test_rescheduling_keeps_the_prompts_and_moves_their_times(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)
    before = follow_ups(await chart(gql, ward), session["id"])
    moved = STARTS + timedelta(days=1, hours=2)

    result = await gql(
        UPDATE, {"id": session["id"], "input": {"startsAt": moved.isoformat()}}, actor=ward.clinician.actor
    )

    assert result.ok()["updateInfusion"]["startsAt"] == iso(moved)
    after = follow_ups(await chart(gql, ward), session["id"])
    assert {rule: p["id"] for rule, p in after.items()} == {rule: p["id"] for rule, p in before.items()}
    for rule, prompt in after.items():
        shift = datetime.fromisoformat(prompt["dueAt"]) - datetime.fromisoformat(before[rule]["dueAt"])
        assert shift == timedelta(days=1, hours=2), rule
        assert prompt["status"] == "SCHEDULED"
    assert await Prompt.filter(session_id=session["id"]).count() == 4


async def test_a_session_moved_past_the_horizon_gets_its_prompts_back_when_planning_reaches_it(
    gql: GraphQLClient, ward: Ward, now: datetime
) -> None:
    session = await schedule(gql, ward)
    before = follow_ups(await chart(gql, ward), session["id"])
    moved = STARTS + timedelta(days=3)
    await gql(UPDATE, {"id": session["id"], "input": {"startsAt": moved.isoformat()}}, actor=ward.clinician.actor)

    later = now + timedelta(days=3)
    await tick(later)

    after = follow_ups(await chart(gql, ward, now=later), session["id"])
    assert {rule: p["id"] for rule, p in after.items()} == {rule: p["id"] for rule, p in before.items()}
    assert after["post_infusion_72h"]["dueAt"] == iso(moved + timedelta(minutes=40, hours=72))
    assert {p["status"] for p in after.values()} == {"SCHEDULED"}


async def test_completing_records_what_happened_and_re_anchors_on_the_real_end(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)
    before = follow_ups(await chart(gql, ward), session["id"])
    started, ended = STARTS + timedelta(minutes=5), STARTS + timedelta(minutes=55)
    at = STARTS + timedelta(hours=1)
    change = {
        "status": "COMPLETED",
        "startedAt": started.isoformat(),
        "endedAt": ended.isoformat(),
        "doseMg": 35.5,
        "notes": "Well tolerated.",
    }

    done = (await gql(UPDATE, {"id": session["id"], "input": change}, actor=ward.clinician.actor, now=at)).ok()

    assert done["updateInfusion"] == {
        **session,
        "status": "COMPLETED",
        "startedAt": iso(started),
        "endedAt": iso(ended),
        "doseMg": 35.5,
        "notes": "Well tolerated.",
    }
    patient = await chart(gql, ward, now=at)
    assert patient["sessions"] == [done["updateInfusion"]]
    after = follow_ups(patient, session["id"])
    assert after["post_infusion_2h"]["id"] == before["post_infusion_2h"]["id"]
    assert after["post_infusion_2h"]["dueAt"] == iso(ended + timedelta(hours=2))
    assert after["post_infusion_24h"]["dueAt"] == iso(ended + timedelta(hours=24))


async def test_completing_without_a_start_time_takes_the_planned_one(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)
    change = {"status": "COMPLETED", "endedAt": (STARTS + timedelta(minutes=45)).isoformat()}

    done = (await gql(UPDATE, {"id": session["id"], "input": change}, actor=ward.clinician.actor, now=AFTER)).ok()

    assert done["updateInfusion"]["startedAt"] == iso(STARTS)
    assert (await InfusionSession.get(id=session["id"])).started_at == STARTS


async def test_cancelling_cancels_the_unsent_prompts_and_keeps_the_sent_ones(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)
    pre_session_due = STARTS - timedelta(hours=24)
    await tick(pre_session_due)
    at = pre_session_due + timedelta(hours=1)

    result = await gql(
        UPDATE, {"id": session["id"], "input": {"status": "CANCELLED"}}, actor=ward.clinician.actor, now=at
    )

    assert result.ok()["updateInfusion"]["status"] == "CANCELLED"
    prompts = follow_ups(await chart(gql, ward, now=at), session["id"])
    assert {rule: p["status"] for rule, p in prompts.items()} == {
        "pre_session": "SENT",
        "post_infusion_2h": "CANCELLED",
        "post_infusion_24h": "CANCELLED",
        "post_infusion_72h": "CANCELLED",
    }
    # Nor do later planning passes bring them back.
    await tick(at + timedelta(hours=1))
    again = follow_ups(await chart(gql, ward, now=at + timedelta(hours=1)), session["id"])
    assert {rule: p["status"] for rule, p in again.items()} == {rule: p["status"] for rule, p in prompts.items()}


def _schedule_input(**overrides: Any) -> dict[str, Any]:
    return {"startsAt": STARTS.isoformat(), "plannedDurationMinutes": 40, **overrides}


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"plannedDurationMinutes": 0}, "BAD_USER_INPUT", "plannedDurationMinutes"),
        ({"plannedDurationMinutes": -30}, "BAD_USER_INPUT", "plannedDurationMinutes"),
        ({"plannedDurationMinutes": 7201}, "BAD_USER_INPUT", "plannedDurationMinutes"),
        ({"plannedDurationMinutes": 2**31}, "BAD_USER_INPUT", "input.plannedDurationMinutes"),
        ({"startsAt": "2026-11-28T15:00:00"}, "BAD_USER_INPUT", "startsAt"),
        ({"startsAt": "2026-02-30T15:00:00Z"}, "BAD_USER_INPUT", "input.startsAt"),
        ({"startsAt": "Saturday morning"}, "BAD_USER_INPUT", "input.startsAt"),
        ({"startsAt": "2029-11-28T15:00:00Z"}, "BAD_USER_INPUT", "startsAt"),
        ({"courseId": str(uuid4())}, "NOT_FOUND", "courseId"),
    ],
)
async def test_a_refused_booking_names_its_field_and_stores_nothing(
    changes: dict[str, Any], code: str, field: str, gql: GraphQLClient, ward: Ward
) -> None:
    before = await stored()
    variables = {"input": {"patientId": str(ward.alice.patient.id), **_schedule_input(**changes)}}

    result = await gql(SCHEDULE, variables, actor=ward.clinician.actor)

    assert (result.codes, result.fields) == ([code], [field]), result.errors
    assert result.data is None
    assert await stored() == before


async def test_another_patients_course_is_not_found(gql: GraphQLClient, ward: Ward) -> None:
    bobs = await gql(
        SCHEDULE,
        {"input": {"patientId": str(ward.bob.patient.id), **_schedule_input()}},
        actor=ward.clinician.actor,
    )
    course = bobs.ok()["scheduleInfusion"]["courseId"]
    before = await stored()

    result = await gql(
        SCHEDULE,
        {"input": {"patientId": str(ward.alice.patient.id), **_schedule_input(courseId=course)}},
        actor=ward.clinician.actor,
    )
    missing = await gql(
        SCHEDULE,
        {"input": {"patientId": str(ward.alice.patient.id), **_schedule_input(courseId=str(uuid4()))}},
        actor=ward.clinician.actor,
    )

    assert (result.codes, result.fields) == (["NOT_FOUND"], ["courseId"])
    assert result.errors == missing.errors
    assert await stored() == before


COMPLETE = {"status": "COMPLETED", "endedAt": (STARTS + timedelta(minutes=40)).isoformat()}


@pytest.mark.parametrize(
    "case",
    [
        (None, {"plannedDurationMinutes": 0}, "BAD_USER_INPUT", "plannedDurationMinutes"),
        (None, {"plannedDurationMinutes": 100_000}, "BAD_USER_INPUT", "plannedDurationMinutes"),
        (None, {"startsAt": "2026-11-29T15:00:00"}, "BAD_USER_INPUT", "startsAt"),
        (None, {"startsAt": "tomorrow"}, "BAD_USER_INPUT", "input.startsAt"),
        (None, {"status": "COMPLETED"}, "BAD_USER_INPUT", "endedAt"),
        (None, {"status": "COMPLETED", "doseMg": 30.0}, "BAD_USER_INPUT", "endedAt"),
        (
            None,
            {"status": "COMPLETED", "startedAt": "2026-11-28T15:10:00Z", "endedAt": "2026-11-28T15:05:00Z"},
            "BAD_USER_INPUT",
            "endedAt",
        ),
        (None, {"status": "COMPLETED", "endedAt": "2026-11-28T14:30:00Z"}, "BAD_USER_INPUT", "endedAt"),
        (None, {"status": "COMPLETED", "endedAt": "2026-11-28T15:40:00"}, "BAD_USER_INPUT", "endedAt"),
        (None, {"status": "COMPLETED", "endedAt": "2026-11-29T15:40:00Z"}, "BAD_USER_INPUT", "endedAt"),  # not yet
        (None, {"startedAt": "2026-11-28T15:00:00"}, "BAD_USER_INPUT", "startedAt"),
        (None, {"doseMg": -5.0}, "BAD_USER_INPUT", "doseMg"),
        (None, {"doseMg": 0.0}, "BAD_USER_INPUT", "doseMg"),
        (None, {"doseMg": 12.345}, "BAD_USER_INPUT", "doseMg"),
        (None, {"doseMg": 0.001}, "BAD_USER_INPUT", "doseMg"),
        (None, {"doseMg": 5000.01}, "BAD_USER_INPUT", "doseMg"),
        (None, {"doseMg": "35 mg"}, "BAD_USER_INPUT", "input.doseMg"),
        (None, {"status": "PAUSED"}, "BAD_USER_INPUT", "input.status"),
        (None, {"notes": "n" * 4001}, "BAD_USER_INPUT", "notes"),
        # A valid move alongside a bad dose: the move is not kept either.
        (None, {"startsAt": "2026-11-29T15:00:00Z", "doseMg": -1.0}, "BAD_USER_INPUT", "doseMg"),
        ("complete", {"startsAt": "2026-11-30T15:00:00Z"}, "CONFLICT", "startsAt"),
        # What happened stays recorded: a completed session is neither cancelled nor put back on the calendar.
        ("complete", {"status": "CANCELLED"}, "CONFLICT", "status"),
        ("complete", {"status": "SCHEDULED"}, "CONFLICT", "status"),
        ("cancel", {"notes": "Rebooked by phone."}, "CONFLICT", "id"),
        ("cancel", {"status": "SCHEDULED"}, "CONFLICT", "id"),
        ("cancel", {"startsAt": "2026-11-30T15:00:00Z"}, "CONFLICT", "id"),
        ("cancel", COMPLETE, "CONFLICT", "id"),
    ],
    ids=lambda case: f"{case[0] or 'scheduled'}-{'+'.join(case[1])}",
)
async def test_a_refused_update_names_its_field_and_changes_nothing(
    case: tuple[str | None, dict[str, Any], str, str], gql: GraphQLClient, ward: Ward
) -> None:
    earlier, changes, code, field = case
    session = await schedule(gql, ward)
    if earlier is not None:
        first = COMPLETE if earlier == "complete" else {"status": "CANCELLED"}
        (await gql(UPDATE, {"id": session["id"], "input": first}, actor=ward.clinician.actor, now=AFTER)).ok()
    before = await stored()

    result = await gql(UPDATE, {"id": session["id"], "input": changes}, actor=ward.clinician.actor, now=AFTER)

    assert (result.codes, result.fields) == ([code], [field]), result.errors
    assert result.data is None
    assert await stored() == before


async def test_a_session_cannot_be_moved_further_ahead_than_it_could_be_booked(gql: GraphQLClient, ward: Ward) -> None:
    """Booking refuses a start more than two years ahead; moving a booked session there is refused the same way."""
    session = await schedule(gql, ward)
    before = await stored()
    far = "2029-11-28T15:00:00+00:00"

    booked = await gql(
        SCHEDULE,
        {"input": {"patientId": str(ward.alice.patient.id), **_schedule_input(startsAt=far)}},
        actor=ward.clinician.actor,
    )
    moved = await gql(UPDATE, {"id": session["id"], "input": {"startsAt": far}}, actor=ward.clinician.actor)

    assert (booked.codes, booked.fields) == (["BAD_USER_INPUT"], ["startsAt"])
    assert (moved.codes, moved.fields) == (["BAD_USER_INPUT"], ["startsAt"]), moved.data
    assert await stored() == before


async def test_a_patient_sees_their_sessions_without_dose_or_clinician_notes(gql: GraphQLClient, ward: Ward) -> None:
    session = await schedule(gql, ward)
    record = {**COMPLETE, "doseMg": 35.5, "notes": "Mild dissociation, settled by 30 min."}
    (await gql(UPDATE, {"id": session["id"], "input": record}, actor=ward.clinician.actor, now=AFTER)).ok()
    query = "query($id: ID!) { patient(id: $id) { sessions { id status doseMg notes } } }"
    variables = {"id": str(ward.alice.patient.id)}

    own = (await gql(query, variables, actor=ward.alice.actor, now=AFTER)).ok()["patient"]["sessions"]
    staff = (await gql(query, variables, actor=ward.clinician.actor, now=AFTER)).ok()["patient"]["sessions"]

    assert own == [{"id": session["id"], "status": "COMPLETED", "doseMg": None, "notes": None}]
    assert staff == [{"id": session["id"], "status": "COMPLETED", "doseMg": 35.5, "notes": record["notes"]}]
