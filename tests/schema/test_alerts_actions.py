"""`acknowledgeAlert` and `resolveAlert`: the state machine, notes, history, audit, and every refusal."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from api.domain.alert.models import Alert, AlertEvent, AlertStatus
from api.domain.audit.models import AuditEvent
from tests.alert_support import Ward, effects, log, ward
from tests.factories import Factory
from tests.graphql import GraphQLClient

FIELDS = "id status acknowledgedAt acknowledgedById resolvedAt resolvedById history { action actorId note at }"
ACK = f"mutation Ack($id: ID!, $note: String) {{ acknowledgeAlert(id: $id, note: $note) {{ {FIELDS} }} }}"
RESOLVE = f"mutation Resolve($id: ID!, $note: String) {{ resolveAlert(id: $id, note: $note) {{ {FIELDS} }} }}"


@pytest_asyncio.fixture
async def w(factory: Factory) -> Ward:
    return await ward(factory)


@pytest_asyncio.fixture
async def alert(factory: Factory, w: Ward, now: datetime) -> Alert:
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=2))
    await AuditEvent.all().delete()
    return await Alert.get(patient_id=w.alice.patient.id)


async def test_acknowledge_then_resolve(gql: GraphQLClient, w: Ward, alert: Alert, now: datetime) -> None:
    later = now + timedelta(minutes=3)
    acked = (await gql(ACK, {"id": str(alert.id), "note": "calling her"}, actor=w.clinician.actor)).ok()
    me = str(w.clinician.account.id)
    assert acked["acknowledgeAlert"]["status"] == "ACKNOWLEDGED"
    assert (acked["acknowledgeAlert"]["acknowledgedAt"], acked["acknowledgeAlert"]["acknowledgedById"]) == (
        now.isoformat(),
        me,
    )
    resolved = (await gql(RESOLVE, {"id": str(alert.id)}, actor=w.admin.actor, now=later)).ok()["resolveAlert"]
    assert resolved["status"] == "RESOLVED"
    assert (resolved["resolvedAt"], resolved["resolvedById"]) == (later.isoformat(), str(w.admin.account.id))
    assert resolved["acknowledgedById"] == me
    assert resolved["history"] == [
        {"action": "raised", "actorId": None, "note": None, "at": now.isoformat()},
        {"action": "acknowledged", "actorId": me, "note": "calling her", "at": now.isoformat()},
        {"action": "resolved", "actorId": str(w.admin.account.id), "note": None, "at": later.isoformat()},
    ]
    stored = await Alert.get(id=alert.id)
    assert (stored.status, stored.open_key, stored.updated_at) == (AlertStatus.RESOLVED, None, later)


async def test_an_open_alert_may_be_resolved_directly(gql: GraphQLClient, w: Ward, alert: Alert) -> None:
    resolved = (await gql(RESOLVE, {"id": str(alert.id), "note": "false alarm"}, actor=w.clinician.actor)).ok()
    assert resolved["resolveAlert"]["status"] == "RESOLVED"
    assert resolved["resolveAlert"]["acknowledgedAt"] is None


async def test_each_action_is_audited_as_a_write_on_the_patient(gql: GraphQLClient, w: Ward, alert: Alert) -> None:
    (await gql(ACK, {"id": str(alert.id)}, actor=w.clinician.actor)).ok()
    (await gql(RESOLVE, {"id": str(alert.id)}, actor=w.clinician.actor)).ok()
    events = await AuditEvent.all().order_by("action").values_list("action", "patient_id", "object_id", "actor_id")
    who = w.clinician.account.id
    assert events == [
        ("alert.acknowledge", w.alice.patient.id, alert.id, who),
        ("alert.resolve", w.alice.patient.id, alert.id, who),
    ]


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        ([ACK], ACK, "alert is already acknowledged"),
        ([RESOLVE], RESOLVE, "alert is already resolved"),
        ([RESOLVE], ACK, "alert is already resolved"),
        ([ACK, RESOLVE], RESOLVE, "alert is already resolved"),
    ],
)
async def test_repeating_or_going_backwards_is_a_conflict_that_changes_nothing(
    gql: GraphQLClient, w: Ward, alert: Alert, *, steps: list[str], refused: str, message: str
) -> None:
    for step in steps:
        (await gql(step, {"id": str(alert.id)}, actor=w.clinician.actor)).ok()
    before = await Alert.get(id=alert.id)
    events = await AlertEvent.filter(alert_id=alert.id).count()
    result = await gql(refused, {"id": str(alert.id), "note": "again"}, actor=w.admin.actor)
    assert (result.codes, result.fields) == (["CONFLICT"], ["id"])
    assert result.errors[0]["message"] == message
    after = await Alert.get(id=alert.id)
    assert (after.status, after.updated_at, after.acknowledged_by_id) == (
        before.status,
        before.updated_at,
        before.acknowledged_by_id,
    )
    assert await AlertEvent.filter(alert_id=alert.id).count() == events


async def test_a_note_may_be_2000_characters_and_no_more(gql: GraphQLClient, w: Ward, alert: Alert) -> None:
    too_long = await gql(ACK, {"id": str(alert.id), "note": "x" * 2001}, actor=w.clinician.actor)
    assert (too_long.codes, too_long.fields) == (["BAD_USER_INPUT"], ["note"])
    assert (await Alert.get(id=alert.id)).status is AlertStatus.OPEN
    just_fits = await gql(ACK, {"id": str(alert.id), "note": "x" * 2000}, actor=w.clinician.actor)
    assert just_fits.ok()["acknowledgeAlert"]["history"][-1]["note"] == "x" * 2000


@pytest.mark.parametrize("mutation", [ACK, RESOLVE])
async def test_unauthenticated_callers_are_refused(gql: GraphQLClient, alert: Alert, mutation: str) -> None:
    result = await gql(mutation, {"id": str(alert.id)})
    assert result.codes == ["UNAUTHENTICATED"]
    assert (await Alert.get(id=alert.id)).status is AlertStatus.OPEN


@pytest.mark.parametrize("mutation", [ACK, RESOLVE])
async def test_patients_may_not_act_on_alerts_not_even_their_own(
    gql: GraphQLClient, w: Ward, alert: Alert, mutation: str
) -> None:
    assert (await gql(mutation, {"id": str(alert.id)}, actor=w.alice.actor)).codes == ["FORBIDDEN"]
    assert (await Alert.get(id=alert.id)).status is AlertStatus.OPEN


@pytest.mark.parametrize("mutation", [ACK, RESOLVE])
async def test_another_clinics_alert_is_not_found(
    gql: GraphQLClient, factory: Factory, alert: Alert, mutation: str
) -> None:
    other = await ward(factory)
    result = await gql(mutation, {"id": str(alert.id)}, actor=other.admin.actor)
    assert (result.codes, result.fields) == (["NOT_FOUND"], ["id"])
    assert (await Alert.get(id=alert.id)).status is AlertStatus.OPEN
    assert await AuditEvent.filter(actor_id=other.admin.account.id).count() == 0


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"id": "not-a-uuid"}, "NOT_FOUND", "id"),
        ({"id": "00000000-0000-0000-0000-000000000000"}, "NOT_FOUND", "id"),
        ({}, "BAD_USER_INPUT", "id"),
    ],
)
async def test_missing_or_malformed_ids(
    gql: GraphQLClient, w: Ward, alert: Alert, *, variables: dict[str, Any], code: str, field: str
) -> None:
    result = await gql(ACK, variables, actor=w.clinician.actor)
    assert (result.codes, result.fields) == ([code], [field])


async def test_concurrent_acknowledgements_let_one_win(gql: GraphQLClient, w: Ward, alert: Alert) -> None:
    outcomes = await asyncio.gather(
        gql(ACK, {"id": str(alert.id)}, actor=w.clinician.actor),
        gql(ACK, {"id": str(alert.id)}, actor=w.admin.actor),
    )
    assert sorted(tuple(r.codes) for r in outcomes) == [(), ("CONFLICT",)]
    assert await AlertEvent.filter(alert_id=alert.id, action="acknowledged").count() == 1


async def test_the_acted_on_alert_names_its_patient(gql: GraphQLClient, w: Ward, alert: Alert) -> None:
    document = "mutation Ack($id: ID!) { acknowledgeAlert(id: $id) { patient { id displayName } } }"
    acked = (await gql(document, {"id": str(alert.id)}, actor=w.clinician.actor)).ok()["acknowledgeAlert"]
    assert acked["patient"] == {"id": str(w.alice.patient.id), "displayName": "Alice"}
