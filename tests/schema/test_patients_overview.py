"""patient { overview }: the facts a clinician's patient list shows, for a whole page in a constant number of
statements (issue 6): the newest entry, the 7-day mean pain, adherence and the alerts not yet resolved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.domain.actor import Actor, RequestMeta
from api.domain.alert.models import Alert, AlertStatus, Severity
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.errors import Forbidden
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import PromptStatus
from api.domain.services import Services
from tests.conftest import count_queries
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient, Result
from tests.schema.questionnaire_support import open_prompt

OVERVIEW = """
query Overview($id: ID!) {
  patient(id: $id) {
    overview { lastEntryAt painMean7Days painEntries7Days adherence { answered expired rate } openAlerts }
    adherence { instrument answered expired rate }
  }
}
"""
LIST = """
query PatientList($first: Int) {
  patients(first: $first) {
    edges { node { id displayName lastEntry { id recordedAt painNow } overview { lastEntryAt painMean7Days
      painEntries7Days adherence { answered expired rate } openAlerts } } }
    pageInfo { hasNextPage }
  }
}
"""
MY_OVERVIEW = "query MyOverview { me { patient { overview { openAlerts } } } }"
OWN_LAST_ENTRY = "query OwnLastEntry($id: ID!) { patient(id: $id) { lastEntry { id } } }"
NOTHING = {
    "lastEntryAt": None,
    "painMean7Days": None,
    "painEntries7Days": 0,
    "adherence": {"answered": 0, "expired": 0, "rate": None},
    "openAlerts": 0,
}


@dataclass
class Ward:
    staff: Staff
    alice: PatientUser
    bob: PatientUser


@pytest.fixture
async def ward(factory: Factory) -> Ward:
    clinic = await factory.clinic()
    return Ward(
        await factory.staff(clinic),
        await factory.patient(clinic, name="Alice"),
        await factory.patient(clinic, name="Bob"),
    )


async def _overview(gql: GraphQLClient, actor: Actor, who: PatientUser) -> Result:
    return await gql(OVERVIEW, {"id": str(who.patient.id)}, actor=actor)


async def _facts(gql: GraphQLClient, actor: Actor, who: PatientUser) -> dict[str, Any]:
    facts: dict[str, Any] = (await _overview(gql, actor, who)).ok()["patient"]["overview"]
    return facts


async def _alert(who: PatientUser, status: AlertStatus, now: datetime) -> Alert:
    return await Alert.create(
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        rule_id="persistent_dissociation",
        rule_version=1,
        severity=Severity.HIGH,
        status=status,
        episode=f"patient:{uuid4()}",
        open_key=None if status is AlertStatus.RESOLVED else f"overview:{uuid4()}",
        raised_at=now - timedelta(hours=5),
        updated_at=now - timedelta(hours=5),
    )


async def _prompt(who: PatientUser, status: PromptStatus, now: datetime) -> None:
    await open_prompt(who, "daily_diary", now, status=status, anchor=f"overview:{uuid4()}")


# --- the facts ----------------------------------------------------------------------------------------------------


async def test_the_mean_covers_exactly_the_last_seven_days(
    ward: Ward, factory: Factory, services: Services, gql: GraphQLClient, now: datetime
) -> None:
    alice = ward.alice
    week = now - timedelta(days=7)
    await factory.entry(alice, recorded_at=week - timedelta(minutes=1), pain_average=9)  # a minute too old
    await factory.entry(alice, recorded_at=week, pain_average=2)  # the window's first instant
    await factory.entry(alice, recorded_at=now - timedelta(days=3), pain_average=5)
    await factory.entry(alice, recorded_at=now - timedelta(days=1), pain_now=3)  # no average pain: not in the mean
    deleted = await factory.entry(alice, recorded_at=now - timedelta(days=2), pain_average=10)
    await services.diary.delete(alice.actor, deleted.id, now=now)
    await factory.entry(alice, recorded_at=now, pain_average=10)  # the window ends before now
    await factory.entry(ward.bob, recorded_at=now - timedelta(days=1), pain_average=8)  # another patient's

    facts = await _facts(gql, ward.staff.actor, alice)

    assert (facts["painMean7Days"], facts["painEntries7Days"]) == (3.5, 2)


async def test_the_last_entry_is_the_newest_one_not_entered_in_error(
    ward: Ward, factory: Factory, services: Services, gql: GraphQLClient, now: datetime
) -> None:
    await factory.entry(ward.alice, recorded_at=now - timedelta(hours=5), pain_now=2)
    kept = await factory.entry(ward.alice, recorded_at=now - timedelta(hours=3), pain_now=4)
    newest = await factory.entry(ward.alice, recorded_at=now - timedelta(hours=1), pain_now=9)
    await services.diary.delete(ward.alice.actor, newest.id, now=now)
    await factory.entry(ward.bob, recorded_at=now - timedelta(minutes=10), pain_now=1)

    facts = await _facts(gql, ward.staff.actor, ward.alice)

    assert facts["lastEntryAt"] == kept.recorded_at.isoformat()


async def test_adherence_counts_answered_and_expired_prompts_of_all_time(
    ward: Ward, gql: GraphQLClient, now: datetime
) -> None:
    for status in (PromptStatus.ANSWERED, PromptStatus.ANSWERED, PromptStatus.ANSWERED, PromptStatus.EXPIRED):
        await _prompt(ward.alice, status, now - timedelta(days=30))
    for status in (PromptStatus.SENT, PromptStatus.OPENED, PromptStatus.CANCELLED, PromptStatus.SCHEDULED):
        await _prompt(ward.alice, status, now)
    await _prompt(ward.bob, PromptStatus.EXPIRED, now)

    patient = (await _overview(gql, ward.staff.actor, ward.alice)).ok()["patient"]

    assert patient["overview"]["adherence"] == {"answered": 3, "expired": 1, "rate": 0.75}
    overall = patient["adherence"][0]
    assert overall["instrument"] is None
    assert {k: overall[k] for k in ("answered", "expired", "rate")} == patient["overview"]["adherence"]


async def test_open_alerts_count_the_unresolved_ones_of_the_patient(
    ward: Ward, gql: GraphQLClient, now: datetime
) -> None:
    for status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.RESOLVED):
        await _alert(ward.alice, status, now)
    await _alert(ward.bob, AlertStatus.OPEN, now)

    assert (await _facts(gql, ward.staff.actor, ward.alice))["openAlerts"] == 2
    assert (await _facts(gql, ward.staff.actor, ward.bob))["openAlerts"] == 1


async def test_a_patient_with_nothing_recorded_has_nulls_and_zeros(ward: Ward, gql: GraphQLClient) -> None:
    assert await _facts(gql, ward.staff.actor, ward.alice) == NOTHING


async def test_every_patient_of_a_page_gets_their_own_facts(
    ward: Ward, factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    entry = await factory.entry(ward.alice, recorded_at=now - timedelta(hours=2), pain_now=6, pain_average=4)
    await _prompt(ward.alice, PromptStatus.ANSWERED, now)
    await _alert(ward.alice, AlertStatus.OPEN, now)

    edges = (await gql(LIST, {"first": 50}, actor=ward.staff.actor)).ok()["patients"]["edges"]

    by_name = {e["node"]["displayName"]: e["node"] for e in edges}
    assert by_name["Alice"]["lastEntry"] == {
        "id": str(entry.id),
        "recordedAt": entry.recorded_at.isoformat(),
        "painNow": 6,
    }
    assert by_name["Alice"]["overview"] == {
        "lastEntryAt": entry.recorded_at.isoformat(),
        "painMean7Days": 4.0,
        "painEntries7Days": 1,
        "adherence": {"answered": 1, "expired": 0, "rate": 1.0},
        "openAlerts": 1,
    }
    assert (by_name["Bob"]["lastEntry"], by_name["Bob"]["overview"]) == (None, NOTHING)


# --- the statement count ------------------------------------------------------------------------------------------


async def _clinic_with_patients(factory: Factory, count: int, now: datetime) -> Actor:
    """Every patient has entries, answered and expired prompts and an open alert: each fact has rows to read."""
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for i in range(count):
        who = await factory.patient(clinic, name=f"Patient {i:03d}")
        await factory.entry(who, recorded_at=now - timedelta(days=2), pain_now=i % 11, pain_average=i % 11)
        await factory.entry(who, recorded_at=now - timedelta(hours=1), pain_now=(i + 1) % 11)
        await _prompt(who, PromptStatus.ANSWERED, now)
        await _prompt(who, PromptStatus.EXPIRED, now)
        await _alert(who, AlertStatus.OPEN, now)
    return staff.actor


async def _statements(gql: GraphQLClient, actor: Actor, first: int, expected_rows: int) -> int:
    with count_queries() as counter:
        result = await gql(LIST, {"first": first}, actor=actor)
    nodes = [e["node"] for e in result.ok()["patients"]["edges"]]
    assert len(nodes) == expected_rows
    assert all(n["lastEntry"] and n["overview"]["openAlerts"] == 1 for n in nodes)
    assert all(n["overview"]["adherence"] == {"answered": 1, "expired": 1, "rate": 0.5} for n in nodes)
    return len(counter.statements)


async def test_the_list_costs_the_same_few_statements_whatever_the_patient_count(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    few = await _statements(gql, await _clinic_with_patients(factory, 3, now), 50, 3)
    many = await _statements(gql, await _clinic_with_patients(factory, 12, now), 50, 12)

    assert few == many
    # The page, the overviews, the newest entries, the audit event and its subjects.
    assert many <= 5


async def test_the_list_costs_the_same_few_statements_whatever_the_page_size(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    staff = await _clinic_with_patients(factory, 12, now)

    small = await _statements(gql, staff, 5, 5)
    full = await _statements(gql, staff, 12, 12)

    assert small == full
    assert full <= 5


# --- who may read them --------------------------------------------------------------------------------------------


async def test_another_clinics_clinician_reaches_neither_the_patient_nor_the_facts(
    ward: Ward, factory: Factory, services: Services, gql: GraphQLClient, now: datetime
) -> None:
    await _alert(ward.alice, AlertStatus.OPEN, now)
    stranger = await factory.staff(await factory.clinic())

    hidden = await _overview(gql, stranger.actor, ward.alice)
    missing = await gql(OVERVIEW, {"id": str(uuid4())}, actor=stranger.actor)

    assert (hidden.data, hidden.codes) == ({"patient": None}, ["NOT_FOUND"])
    assert (hidden.data, hidden.errors) == (missing.data, missing.errors)
    assert await services.overview.overviews(stranger.actor, [ward.alice.patient.id], now=now) == {}
    assert await AuditEvent.filter(actor_id=stranger.account.id).count() == 0


async def test_a_patient_may_not_read_the_overview_not_even_their_own(
    ward: Ward, services: Services, gql: GraphQLClient, now: datetime
) -> None:
    """Staff only, as `Patient.alerts` is: the open-alert count is about the clinic's alerts."""
    alice = ward.alice

    own = await _overview(gql, alice.actor, alice)
    mine = await gql(MY_OVERVIEW, actor=alice.actor)

    assert (own.data, own.codes) == ({"patient": None}, ["FORBIDDEN"])
    assert mine.codes == ["FORBIDDEN"]
    assert mine.data == {"me": {"patient": None}}
    with pytest.raises(Forbidden):
        await services.overview.overviews(alice.actor, [alice.patient.id], now=now)


async def test_a_patient_reads_their_own_last_entry_and_no_one_elses(
    ward: Ward, factory: Factory, services: Services, gql: GraphQLClient, now: datetime
) -> None:
    mine = await factory.entry(ward.alice, recorded_at=now - timedelta(hours=1))
    await factory.entry(ward.bob, recorded_at=now - timedelta(hours=1))

    own = (await gql(OWN_LAST_ENTRY, {"id": str(ward.alice.patient.id)}, actor=ward.alice.actor)).ok()
    latest = await services.overview.latest_entries(
        ward.alice.actor, [ward.alice.patient.id, ward.bob.patient.id], now=now
    )

    assert own["patient"]["lastEntry"] == {"id": str(mine.id)}
    assert {p: e.id for p, e in latest.items()} == {ward.alice.patient.id: mine.id}


async def test_an_erased_patient_without_a_hold_yields_nothing(
    ward: Ward, factory: Factory, services: Services, now: datetime
) -> None:
    await factory.entry(ward.alice, recorded_at=now - timedelta(hours=1))
    await Patient.filter(id=ward.alice.patient.id).update(status=PatientStatus.ERASED, erased_at=now)
    ids = [ward.alice.patient.id, ward.bob.patient.id]

    assert set(await services.overview.overviews(ward.staff.actor, ids, now=now)) == {ward.bob.patient.id}
    assert await services.overview.latest_entries(ward.staff.actor, ids, now=now) == {}


# --- the audit trail ----------------------------------------------------------------------------------------------


def _in_request(actor: Actor, request_id: str) -> Actor:
    return Actor(actor.account_id, actor.role, actor.clinic_id, actor.patient_id, meta=RequestMeta(request_id))


async def _named(event: AuditEvent) -> set[UUID]:
    return {s.patient_id for s in await AuditSubject.filter(event_id=event.id)}


async def test_an_overview_read_is_one_event_naming_the_patients_found(
    ward: Ward, factory: Factory, services: Services, now: datetime
) -> None:
    dave = await factory.patient(await factory.clinic(), name="Dave")
    staff = _in_request(ward.staff.actor, "overview-read")
    ids = [ward.alice.patient.id, ward.bob.patient.id, dave.patient.id]

    await services.overview.overviews(staff, ids, now=now)
    await services.overview.overviews(staff, ids, now=now)  # the same request again: already covered

    events = await AuditEvent.filter(request_id="overview-read")
    assert [(e.action, e.patient_id) for e in events] == [("patient.overview", None)]
    assert await _named(events[0]) == {ward.alice.patient.id, ward.bob.patient.id}


async def test_the_list_with_its_facts_is_still_one_event(ward: Ward, gql: GraphQLClient) -> None:
    (await gql(LIST, {"first": 50}, actor=ward.staff.actor, request_id="overview-list")).ok()

    events = await AuditEvent.filter(request_id="overview-list")
    assert [e.action for e in events] == ["patient.list"]
    assert await _named(events[0]) == {ward.alice.patient.id, ward.bob.patient.id}
