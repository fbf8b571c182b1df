"""`alerts` and `Patient.alerts`: newest first, pages, filters, who may list them, and the audit of each read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.services import Services
from tests.alert_support import Ward, alerts_of, respond, symptoms, ward
from tests.factories import Factory
from tests.graphql import GraphQLClient

ALERTS = """
query Alerts($status: [AlertStatus!], $severity: [Severity!], $patientId: ID, $escalated: Boolean,
             $first: Int, $after: String) {
  alerts(status: $status, severity: $severity, patientId: $patientId, escalated: $escalated,
         first: $first, after: $after) {
    edges { cursor node { id rule ruleVersion severity status episode raisedAt escalatedAt
                          patientId patient { displayName } triggers { type id at } details
                          history { action actorId note at } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PATIENT_ALERTS = """
query PatientAlerts($id: ID!, $status: [AlertStatus!]) {
  patient(id: $id) { alerts(status: $status) { edges { node { id rule } } } }
}
"""

MY_ALERTS = "query { me { patient { alerts { edges { node { id } } } } } }"


@pytest_asyncio.fixture
async def w(factory: Factory, services: Services, now: datetime) -> Ward:
    """Three alerts, an hour apart: Alice's red flag (CRITICAL), Bob's vomiting (HIGH), Alice's PHQ-9 (HIGH)."""
    w = await ward(factory)
    await services.diary.log(
        w.alice.actor, symptoms(now - timedelta(hours=4), CHEST_PAIN=1), now=now - timedelta(hours=3)
    )
    await services.diary.log(w.bob.actor, symptoms(now - timedelta(hours=3), VOMITING=3), now=now - timedelta(hours=2))
    await respond(services, w.alice, "phq9", score=21, answers={"phq9_9": 0}, now=now - timedelta(hours=1))
    await AuditEvent.all().delete()
    return w


def rules(result: dict[str, Any]) -> list[str]:
    return [e["node"]["rule"] for e in result["alerts"]["edges"]]


async def test_staff_list_the_clinics_alerts_newest_first(gql: GraphQLClient, w: Ward, now: datetime) -> None:
    data = (await gql(ALERTS, {}, actor=w.clinician.actor)).ok()
    assert rules(data) == ["phq9_severe", "severe_vomiting", "red_flag_symptom"]
    newest = data["alerts"]["edges"][0]["node"]
    assert newest["raisedAt"] == (now - timedelta(hours=1)).isoformat()
    assert (newest["severity"], newest["status"], newest["ruleVersion"], newest["episode"]) == (
        "HIGH",
        "OPEN",
        1,
        "patient",
    )
    assert (newest["patientId"], newest["patient"]) == (str(w.alice.patient.id), {"displayName": "Alice"})
    assert newest["details"] == {"instrument": "phq9", "score": 21, "min_score": 20, "settings_version": 0}
    assert newest["triggers"][0]["type"] == "QuestionnaireResponse"
    assert newest["history"] == [{"action": "raised", "actorId": None, "note": None, "at": newest["raisedAt"]}]
    assert newest["escalatedAt"] is None


async def test_pages_follow_the_cursor_without_gaps_or_repeats(gql: GraphQLClient, w: Ward) -> None:
    first = (await gql(ALERTS, {"first": 2}, actor=w.clinician.actor)).ok()["alerts"]
    assert [e["node"]["rule"] for e in first["edges"]] == ["phq9_severe", "severe_vomiting"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await gql(ALERTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}, actor=w.clinician.actor)).ok()
    assert rules(rest) == ["red_flag_symptom"]
    assert rest["alerts"]["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"severity": ["CRITICAL"]}, ["red_flag_symptom"]),
        ({"severity": ["HIGH", "LOW"]}, ["phq9_severe", "severe_vomiting"]),
        ({"status": ["OPEN"]}, ["phq9_severe", "severe_vomiting", "red_flag_symptom"]),
        ({"status": ["ACKNOWLEDGED", "RESOLVED"]}, []),
        ({"escalated": True}, []),
        ({"escalated": False}, ["phq9_severe", "severe_vomiting", "red_flag_symptom"]),
    ],
)
async def test_filters(gql: GraphQLClient, w: Ward, variables: dict[str, Any], expected: list[str]) -> None:
    assert rules((await gql(ALERTS, variables, actor=w.clinician.actor)).ok()) == expected


async def test_filters_by_patient_and_status_together(
    gql: GraphQLClient, services: Services, w: Ward, now: datetime
) -> None:
    [red_flag, _] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, red_flag.id, None, now=now)
    alice = {"patientId": str(w.alice.patient.id)}
    assert rules((await gql(ALERTS, alice, actor=w.clinician.actor)).ok()) == ["phq9_severe", "red_flag_symptom"]
    assert rules((await gql(ALERTS, {**alice, "status": ["RESOLVED"]}, actor=w.clinician.actor)).ok()) == [
        "red_flag_symptom"
    ]
    assert rules((await gql(ALERTS, {"patientId": str(w.bob.patient.id)}, actor=w.clinician.actor)).ok()) == [
        "severe_vomiting"
    ]


async def test_escalated_alerts_are_found_by_the_filter(
    gql: GraphQLClient, services: Services, w: Ward, now: datetime
) -> None:
    escalated_at = now + timedelta(minutes=30)
    await services.alerts.escalate(now=escalated_at)
    data = (await gql(ALERTS, {"escalated": True}, actor=w.admin.actor)).ok()
    assert rules(data) == ["red_flag_symptom"]
    node = data["alerts"]["edges"][0]["node"]
    assert node["escalatedAt"] == escalated_at.isoformat()
    assert [h["action"] for h in node["history"]] == ["raised", "escalated"]


async def test_each_read_is_audited_once_per_patient_in_the_page(gql: GraphQLClient, w: Ward) -> None:
    (await gql(ALERTS, {"first": 2}, actor=w.clinician.actor)).ok()
    [event] = await AuditEvent.all()
    assert (event.action, event.actor_id, event.clinic_id) == ("alert.read", w.clinician.account.id, w.clinic.id)
    subjects = await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True)
    assert sorted(subjects) == sorted([w.alice.patient.id, w.bob.patient.id])


async def test_an_empty_page_records_no_read(gql: GraphQLClient, w: Ward) -> None:
    (await gql(ALERTS, {"status": ["RESOLVED"]}, actor=w.clinician.actor)).ok()
    assert await AuditEvent.all().count() == 0


async def test_patient_alerts_lists_one_patients_alerts(gql: GraphQLClient, w: Ward) -> None:
    data = (await gql(PATIENT_ALERTS, {"id": str(w.alice.patient.id)}, actor=w.clinician.actor)).ok()
    assert [e["node"]["rule"] for e in data["patient"]["alerts"]["edges"]] == ["phq9_severe", "red_flag_symptom"]
    only_open = {"id": str(w.bob.patient.id), "status": ["RESOLVED"]}
    assert (await gql(PATIENT_ALERTS, only_open, actor=w.clinician.actor)).ok()["patient"]["alerts"]["edges"] == []


async def test_unauthenticated_callers_are_refused(gql: GraphQLClient, w: Ward) -> None:
    result = await gql(ALERTS, {})
    assert (result.codes, result.data) == (["UNAUTHENTICATED"], None)


async def test_patients_cannot_list_alerts_not_even_their_own(gql: GraphQLClient, w: Ward) -> None:
    assert (await gql(ALERTS, {}, actor=w.alice.actor)).codes == ["FORBIDDEN"]
    assert (await gql(MY_ALERTS, {}, actor=w.alice.actor)).codes == ["FORBIDDEN"]


async def test_another_clinic_sees_none_of_these_alerts(gql: GraphQLClient, factory: Factory, w: Ward) -> None:
    other = await ward(factory)
    assert rules((await gql(ALERTS, {}, actor=other.admin.actor)).ok()) == []
    by_patient = await gql(ALERTS, {"patientId": str(w.alice.patient.id)}, actor=other.clinician.actor)
    assert (by_patient.codes, by_patient.fields) == (["NOT_FOUND"], ["patientId"])
    via_patient = await gql(PATIENT_ALERTS, {"id": str(w.alice.patient.id)}, actor=other.clinician.actor)
    assert via_patient.codes == ["NOT_FOUND"]
    assert await AuditEvent.filter(actor_id=other.clinician.account.id).count() == 0


@pytest.mark.parametrize(
    ("variables", "field"),
    [({"first": 101}, "first"), ({"first": 0}, "first"), ({"after": "not-a-cursor"}, "after")],
)
async def test_bad_paging_is_refused_naming_the_argument(
    gql: GraphQLClient, w: Ward, variables: dict[str, Any], field: str
) -> None:
    result = await gql(ALERTS, variables, actor=w.clinician.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field])


async def test_an_unknown_severity_is_refused_by_the_schema(gql: GraphQLClient, w: Ward) -> None:
    result = await gql(ALERTS, {"severity": ["URGENT"]}, actor=w.clinician.actor)
    assert result.codes == ["BAD_USER_INPUT"]
