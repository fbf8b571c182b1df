"""Who may read outcomes, series and trends: unauthenticated refused, the wrong actor sees NOT_FOUND exactly as
for a missing patient, the right actor succeeds, and staff reads are audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

import pytest

from api.domain.audit.models import AuditEvent
from tests.factories import Factory
from tests.graphql import GraphQLClient
from tests.outcome_support import steady_course
from tests.schema.authz_support import World, build_world

OUTCOMES = "query Outcomes($id: ID!) { patient(id: $id) { outcomes { baseline { mean } } } }"
SERIES = """
query Series($id: ID!) {
  patient(id: $id) { series(metric: PAIN_AVERAGE, from: "2026-10-18", to: "2026-10-19") { values } }
}
"""
BOTH = """
query Both($id: ID!) {
  patient(id: $id) {
    outcomes { baseline { mean } }
    series(metric: MOOD, from: "2026-10-18", to: "2026-10-19") { values }
  }
}
"""
MY_TRENDS = "query MyTrends { myTrends(days: 7) { days pain { values } } }"
PER_PATIENT = {"outcomes": OUTCOMES, "series": SERIES}


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    world = await build_world(factory)
    await steady_course(factory, world.alice, now)
    return world


def _id(world: World) -> dict[str, Any]:
    return {"id": str(world.alice.patient.id)}


@pytest.mark.parametrize("field", [*PER_PATIENT, "myTrends"])
async def test_unauthenticated_callers_are_refused(field: str, world: World, gql: GraphQLClient) -> None:
    query = PER_PATIENT.get(field, MY_TRENDS)

    result = await gql(query, _id(world) if field in PER_PATIENT else None, actor=None)

    assert result.codes == ["UNAUTHENTICATED"]
    assert result.data is None or all(v is None for v in result.data.values())


@pytest.mark.parametrize("field", list(PER_PATIENT))
@pytest.mark.parametrize("who", ["other patient", "other clinic's clinician", "other clinic's admin"])
async def test_someone_elses_patient_is_not_found_exactly_like_a_missing_one(
    field: str, who: str, world: World, gql: GraphQLClient
) -> None:
    actor = {
        "other patient": world.bob.actor,
        "other clinic's clinician": world.foreign_clinician.actor,
        "other clinic's admin": world.foreign_admin.actor,
    }[who]

    hidden = await gql(PER_PATIENT[field], _id(world), actor=actor)
    missing = await gql(PER_PATIENT[field], {"id": str(uuid4())}, actor=actor)

    assert hidden.codes == ["NOT_FOUND"]
    assert hidden.data == missing.data == {"patient": None}
    assert hidden.errors == missing.errors
    assert await AuditEvent.filter(action__in=["outcome.read", "patient.read"]).count() == 0


@pytest.mark.parametrize("who", ["alice herself", "clinician", "admin"])
async def test_the_patient_and_their_clinic_read_outcomes_and_series(
    who: str, world: World, gql: GraphQLClient
) -> None:
    actor = {"alice herself": world.alice.actor, "clinician": world.clinician.actor, "admin": world.admin.actor}[who]

    patient = (await gql(BOTH, _id(world), actor=actor)).ok()["patient"]

    # Baseline 8 (18–24 October); 18 October: pain 8, mood 4.
    assert patient == {"outcomes": [{"baseline": {"mean": 8.0}}], "series": {"values": [4.0]}}


async def test_a_staff_read_leaves_one_audit_event_for_the_request(world: World, gql: GraphQLClient) -> None:
    await gql(BOTH, _id(world), actor=world.clinician.actor, request_id="req-outcomes")

    events = await AuditEvent.filter(request_id="req-outcomes")
    assert [(e.patient_id, e.actor_id, e.operation) for e in events] == [
        (world.alice.patient.id, world.clinician.account.id, "Both")
    ]


async def test_the_patients_own_read_is_not_audited(world: World, gql: GraphQLClient) -> None:
    await gql(BOTH, _id(world), actor=world.alice.actor, request_id="req-own")

    assert await AuditEvent.filter(request_id="req-own").count() == 0


@pytest.mark.parametrize("who", ["clinician", "admin"])
async def test_my_trends_is_for_patients(who: str, world: World, gql: GraphQLClient) -> None:
    actor = world.clinician.actor if who == "clinician" else world.admin.actor

    result = await gql(MY_TRENDS, actor=actor)

    assert result.codes == ["FORBIDDEN"]
    assert result.data is None


async def test_my_trends_shows_only_the_callers_own_diary(world: World, gql: GraphQLClient) -> None:
    bobs = (await gql(MY_TRENDS, actor=world.bob.actor)).ok()["myTrends"]
    alices = (await gql(MY_TRENDS, actor=world.alice.actor)).ok()["myTrends"]

    assert bobs == {"days": 7, "pain": {"values": [None] * 7}}
    # Alice: 20–25 November at 4, nothing yet today.
    assert alices == {"days": 7, "pain": {"values": [4.0] * 6 + [None]}}
