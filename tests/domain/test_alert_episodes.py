"""One open alert per (patient, rule, episode): retriggers append, a new report reopens an acknowledged critical or
high alert, a resolved episode starts again (once per session for the pain trend), a record already judged
raises nothing unless an edit makes it worse, concurrent raises leave one alert, and subscribers hear what is news."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.alert import raising
from api.domain.alert.broker import AlertNotice, LocalBroker, NoticeKind
from api.domain.alert.evaluate import entry_findings
from api.domain.alert.models import Alert, AlertEvent, AlertStatus
from api.domain.alert.raising import Finding
from api.domain.alert.service import AlertService
from api.domain.alert.settings import thresholds
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import DiaryInput
from api.domain.services import Services
from tests.alert_support import (
    EST,
    Ward,
    actions,
    alerts_of,
    completed_session,
    effects,
    log,
    notices_until_now,
    override,
    pain_rebound,
    respond,
    symptoms,
    ward,
)
from tests.conftest import Database
from tests.factories import Factory


@pytest_asyncio.fixture
async def w(factory: Factory) -> Ward:
    return await ward(factory)


async def test_a_second_trigger_joins_the_open_alert(factory: Factory, w: Ward, now: datetime) -> None:
    first = await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    second = await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(BREATHING_DIFFICULTY=2))
    [alert] = await alerts_of(w.alice)
    assert [t["id"] for t in alert.triggers] == [str(first.id), str(second.id)]
    assert await actions(alert.id) == ["raised", "retriggered"]
    assert alert.open_key == f"{w.alice.patient.id}:red_flag_symptom:patient"


async def test_an_acknowledged_medium_alert_collects_new_triggers_quietly(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await pain_rebound(factory, services, w.clinician, w.alice, now)
    [alert] = await alerts_of(w.alice)
    await services.alerts.acknowledge(w.clinician.actor, alert.id, None, now=now)
    broker = services.alerts.broker
    assert isinstance(broker, LocalBroker)
    async with broker.subscribe(w.clinic.id) as stream:
        later = now + timedelta(hours=1)
        entry = DiaryInput(client_id=uuid4(), recorded_at=datetime(2026, 11, 21, 12, 0, tzinfo=EST), pain_average=8)
        await services.diary.log(w.alice.actor, entry, now=later)
        received = await notices_until_now(broker, w.clinic.id, stream)
    [same] = await alerts_of(w.alice)
    assert (same.status, len(same.triggers), same.acknowledged_at, received) == (AlertStatus.ACKNOWLEDGED, 2, now, [])
    assert await actions(alert.id) == ["raised", "acknowledged", "retriggered"]


# --- a new report on an acknowledged alert ------------------------------------------------------------------


async def test_a_worse_item_nine_answer_reopens_the_acknowledged_alert_and_it_escalates_again(
    services: Services, w: Ward, now: datetime
) -> None:
    """Item 9 "several days", escalated, then acknowledged; two weeks later "nearly every day"."""
    [alert] = await respond(services, w.alice, "phq9", score=6, answers={"phq9_9": 1}, now=now)
    assert [a.id for a in await services.alerts.escalate(now=now + timedelta(minutes=15))] == [alert.id]
    await services.alerts.acknowledge(w.clinician.actor, alert.id, "called her", now=now + timedelta(minutes=20))

    later = now + timedelta(days=14)
    announced = await respond(services, w.alice, "phq9", score=12, answers={"phq9_9": 3}, now=later)
    assert [a.id for a in announced] == [alert.id]
    assert announced.kinds == {alert.id: NoticeKind.RAISED}
    reopened = await Alert.get(id=alert.id)
    assert (reopened.status, reopened.acknowledged_at, reopened.acknowledged_by_id, reopened.escalated_at) == (
        AlertStatus.OPEN,
        None,
        None,
        None,
    )
    assert (reopened.raised_at, reopened.open_key, len(reopened.triggers)) == (later, alert.open_key, 2)
    assert reopened.details == {
        "instrument": "phq9",
        "item": "phq9_9",
        "answer": 3,
        "min_answer": 1,
        "settings_version": 0,
        "first_raised_at": now.isoformat(),
    }
    assert await actions(alert.id) == ["raised", "escalated", "acknowledged", "reopened"]
    acknowledged = await AlertEvent.get(alert_id=alert.id, action="acknowledged")
    assert (acknowledged.actor_id, acknowledged.note) == (w.clinician.account.id, "called her")

    # The escalation clock starts again from the new report.
    assert await services.alerts.escalate(now=later + timedelta(minutes=14, seconds=59)) == []
    again = await services.alerts.escalate(now=later + timedelta(minutes=15))
    assert [(a.id, a.escalated_at) for a in again] == [(alert.id, later + timedelta(minutes=15))]


async def test_a_reopened_alert_is_announced_and_listed_as_open(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    await services.alerts.acknowledge(w.clinician.actor, alert.id, None, now=now)
    broker = services.alerts.broker
    assert isinstance(broker, LocalBroker)
    later = now + timedelta(hours=1)
    async with broker.subscribe(w.clinic.id) as stream:
        await services.diary.log(w.alice.actor, symptoms(later, BREATHING_DIFFICULTY=2), now=later)
        received = await notices_until_now(broker, w.clinic.id, stream)
    assert [(n.alert_id, n.kind) for n in received] == [(alert.id, NoticeKind.RAISED)]
    [same] = await alerts_of(w.alice)
    assert (same.status, same.raised_at, same.details["symptoms"]) == (
        AlertStatus.OPEN,
        later,
        ["BREATHING_DIFFICULTY"],
    )


async def test_a_new_report_reopens_a_high_alert_but_only_critical_alerts_escalate(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(VOMITING=3))
    [alert] = await alerts_of(w.alice)
    await services.alerts.acknowledge(w.clinician.actor, alert.id, None, now=now)
    later = now + timedelta(hours=1)
    await services.diary.log(w.alice.actor, symptoms(later, VOMITING=3), now=later)
    [same] = await alerts_of(w.alice)
    assert (same.id, same.status, same.raised_at, same.acknowledged_at) == (alert.id, AlertStatus.OPEN, later, None)
    assert await services.alerts.escalate(now=later + timedelta(hours=2)) == []


async def test_after_resolve_a_new_trigger_raises_a_new_alert(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [old] = await alerts_of(w.alice)
    resolved = await services.alerts.resolve(w.clinician.actor, old.id, "seen in clinic", now=now)
    assert resolved.open_key is None
    later = now + timedelta(minutes=5)
    entry = await services.diary.log(
        w.alice.actor,
        symptoms(now - timedelta(hours=1), CHEST_PAIN=1),
        now=later,
    )
    old_again, new = await alerts_of(w.alice)
    assert old_again.id == old.id
    assert (old_again.status, len(old_again.triggers)) == (AlertStatus.RESOLVED, 1)
    assert (new.status, new.raised_at, [t["id"] for t in new.triggers]) == (AlertStatus.OPEN, later, [str(entry.id)])


async def test_different_rules_and_different_patients_are_separate_alerts(
    factory: Factory, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(CHEST_PAIN=1, VOMITING=3))
    await log(factory, w.bob, now - timedelta(hours=2), side_effects=effects(CHEST_PAIN=1))
    assert sorted(a.rule_id for a in await alerts_of(w.alice)) == ["red_flag_symptom", "severe_vomiting"]
    assert [a.rule_id for a in await alerts_of(w.bob)] == ["red_flag_symptom"]


async def test_questionnaire_rules_return_new_alerts_and_critical_ones_reported_again(
    services: Services, w: Ward, now: datetime
) -> None:
    first = await respond(services, w.alice, "phq9", score=22, answers={"phq9_9": 2}, now=now)
    assert sorted(a.rule_id for a in first) == ["phq9_item9", "phq9_severe"]
    again = await respond(services, w.alice, "phq9", score=23, answers={"phq9_9": 3}, now=now)
    # Both still open: the critical one is announced again, the high one collects the response quietly.
    [item9] = [a for a in first if a.rule_id == "phq9_item9"]
    assert ([a.id for a in again], again.kinds) == ([item9.id], {item9.id: NoticeKind.RETRIGGERED})
    assert all(len(a.triggers) == 2 for a in await alerts_of(w.alice))


async def test_seeing_the_same_record_again_adds_nothing(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    entry = await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    async with in_transaction() as conn:
        again = await services.alerts.on_entry(w.alice.patient, entry, now=now, using_db=conn)
    assert again == []
    [alert] = await alerts_of(w.alice)
    assert len(alert.triggers) == 1
    assert await actions(alert.id) == ["raised"]


async def test_an_edit_that_adds_a_red_flag_raises_and_a_deleted_entry_does_not(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    entry = await log(factory, w.alice, now - timedelta(hours=1), pain_now=3)
    assert await alerts_of(w.alice) == []
    await services.diary.update(
        w.alice.actor, entry.id, {"side_effects": effects(LOSS_OF_CONSCIOUSNESS=1)}, expected_version=None, now=now
    )
    [alert] = await alerts_of(w.alice)
    assert alert.triggers[0]["id"] == str(entry.id)
    deleted = await services.diary.delete(w.alice.actor, entry.id, now=now)
    async with in_transaction() as conn:
        assert await services.alerts.on_entry(w.alice.patient, deleted, now=now, using_db=conn) == []


async def test_a_new_alert_and_a_new_report_of_an_open_critical_one_are_announced(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    broker = services.alerts.broker
    assert isinstance(broker, LocalBroker)
    async with broker.subscribe(w.clinic.id) as stream:
        await log(factory, w.alice, now - timedelta(hours=5), side_effects=effects(CHEST_PAIN=1))
        await log(factory, w.alice, now - timedelta(hours=4), side_effects=effects(CHEST_PAIN=2))  # critical, open
        await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(VOMITING=3))
        await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(VOMITING=3))  # high, open: quiet
        await log(factory, w.alice, now - timedelta(hours=1), pain_now=2)  # nothing to raise
        received = await notices_until_now(broker, w.clinic.id, stream)
    by_rule = {a.rule_id: a for a in await alerts_of(w.alice)}
    red_flag, vomiting = by_rule.pop("red_flag_symptom"), by_rule.pop("severe_vomiting")
    assert (by_rule, len(red_flag.triggers), len(vomiting.triggers)) == ({}, 2, 2)
    assert [(n.alert_id, n.clinic_id, n.kind) for n in received] == [
        (red_flag.id, w.clinic.id, NoticeKind.RAISED),
        (red_flag.id, w.clinic.id, NoticeKind.RETRIGGERED),
        (vomiting.id, w.clinic.id, NoticeKind.RAISED),
    ]


async def test_concurrent_raises_of_one_episode_leave_one_alert(
    db: Database, factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    """Two replicas storing red-flag entries for one patient at once (real concurrency on PostgreSQL: two
    transactions race for the open key; SQLite serialises them)."""
    inputs = [symptoms(now - timedelta(minutes=m), CHEST_PAIN=1) for m in (10, 20, 30)]
    stored = await asyncio.gather(*(services.diary.log(w.alice.actor, i, now=now) for i in inputs))
    [alert] = await alerts_of(w.alice)
    assert sorted(t["id"] for t in alert.triggers) == sorted(str(e.id) for e in stored)
    assert sorted(await actions(alert.id)) == ["raised", "retriggered", "retriggered"]
    assert await DiaryEntry.filter(patient_id=w.alice.patient.id).count() == 3


class BrokenBroker(LocalBroker):
    async def publish(self, notice: AlertNotice) -> None:
        raise ConnectionError("the channel is down")


async def test_a_notice_that_cannot_be_sent_is_logged_not_raised(
    factory: Factory, services: Services, w: Ward, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    broken = AlertService(services.alerts.policy, BrokenBroker())
    with caplog.at_level(logging.ERROR, logger="interlude.alerts"):
        await broken.publish([alert])
    [record] = caplog.records
    assert (record.getMessage(), record.alert_id, record.error) == (  # type: ignore[attr-defined]
        "alert.publish_failed",
        str(alert.id),
        "ConnectionError",
    )


# --- records already judged ---------------------------------------------------------------------------------


async def test_editing_the_entry_of_a_resolved_alert_raises_nothing_a_new_red_flag_elsewhere_does(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    chest = await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    plain = await log(factory, w.alice, now - timedelta(hours=2), pain_now=3)
    [alert] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, alert.id, "seen in clinic", now=now)
    edit = services.diary.update
    await edit(w.alice.actor, chest.id, {"mood": 2}, expected_version=None, now=now)
    # The rules read side effects, so this one runs them; the red flag is the one the resolved alert judged.
    patch = {"side_effects": effects(CHEST_PAIN=1, NAUSEA=2)}
    await edit(w.alice.actor, chest.id, patch, expected_version=None, now=now)
    assert [a.id for a in await alerts_of(w.alice)] == [alert.id]

    await edit(
        w.alice.actor, plain.id, {"side_effects": effects(BREATHING_DIFFICULTY=1)}, expected_version=None, now=now
    )
    [old] = [a for a in await alerts_of(w.alice) if a.id == alert.id]
    [new] = [a for a in await alerts_of(w.alice) if a.id != alert.id]
    assert old.status is AlertStatus.RESOLVED
    assert (new.status, [t["id"] for t in new.triggers]) == (AlertStatus.OPEN, [str(plain.id)])


async def edit_symptoms(services: Services, w: Ward, entry: DiaryEntry, at: datetime, **severity: int) -> None:
    await services.diary.update(
        w.alice.actor, entry.id, {"side_effects": effects(**severity)}, expected_version=None, now=at
    )


@pytest.mark.parametrize(
    ("worse", "symptoms"),
    [
        ({"CHEST_PAIN": 1, "LOSS_OF_CONSCIOUSNESS": 3}, ["CHEST_PAIN", "LOSS_OF_CONSCIOUSNESS"]),
        ({"CHEST_PAIN": 2}, ["CHEST_PAIN"]),
    ],
    ids=["a new red flag", "a higher severity"],
)
async def test_an_edit_that_makes_the_entry_of_a_resolved_alert_worse_raises_a_new_alert(
    factory: Factory, services: Services, w: Ward, now: datetime, *, worse: dict[str, int], symptoms: list[str]
) -> None:
    chest = await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [old] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, old.id, "seen in clinic", now=now)
    later = now + timedelta(minutes=10)
    await edit_symptoms(services, w, chest, later, **worse)
    [resolved, new] = await alerts_of(w.alice)
    assert (resolved.id, resolved.status, len(resolved.triggers)) == (old.id, AlertStatus.RESOLVED, 1)
    assert (new.status, new.raised_at, new.details["symptoms"]) == (AlertStatus.OPEN, later, symptoms)
    assert new.triggers == [{"type": "DiaryEntry", "id": str(chest.id), "at": later.isoformat(), "seen": worse}]
    # Saving the same report again, or a milder one, is what the new alert already covers.
    await edit_symptoms(services, w, chest, later + timedelta(minutes=1), **worse, NAUSEA=1)
    await edit_symptoms(services, w, chest, later + timedelta(minutes=2), CHEST_PAIN=1)
    assert [a.id for a in await alerts_of(w.alice)] == [old.id, new.id]
    assert len((await Alert.get(id=new.id)).triggers) == 1


async def test_an_edit_that_adds_a_red_flag_reopens_the_acknowledged_alert_of_that_entry(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    chest = await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    await services.alerts.acknowledge(w.clinician.actor, alert.id, None, now=now)
    await edit_symptoms(services, w, chest, now + timedelta(minutes=1), CHEST_PAIN=1, NAUSEA=3)
    assert (await Alert.get(id=alert.id)).status is AlertStatus.ACKNOWLEDGED
    later = now + timedelta(minutes=5)
    await edit_symptoms(services, w, chest, later, CHEST_PAIN=1, LOSS_OF_CONSCIOUSNESS=3)
    [same] = await alerts_of(w.alice)
    assert (same.id, same.status, same.raised_at, same.acknowledged_at) == (alert.id, AlertStatus.OPEN, later, None)
    assert same.details["symptoms"] == ["CHEST_PAIN", "LOSS_OF_CONSCIOUSNESS"]
    assert [t["seen"] for t in same.triggers] == [{"CHEST_PAIN": 1}, {"CHEST_PAIN": 1, "LOSS_OF_CONSCIOUSNESS": 3}]
    assert await actions(alert.id) == ["raised", "acknowledged", "reopened"]


async def test_an_edit_that_raises_a_severity_on_an_open_critical_alert_is_announced_a_resave_is_not(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    chest = await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    broker = services.alerts.broker
    assert isinstance(broker, LocalBroker)
    async with broker.subscribe(w.clinic.id) as stream:
        await edit_symptoms(services, w, chest, now, CHEST_PAIN=1, NAUSEA=1)
        assert await notices_until_now(broker, w.clinic.id, stream) == []
        await edit_symptoms(services, w, chest, now + timedelta(minutes=1), CHEST_PAIN=3)
        received = await notices_until_now(broker, w.clinic.id, stream)
    assert [(n.alert_id, n.kind) for n in received] == [(alert.id, NoticeKind.RETRIGGERED)]
    [same] = await alerts_of(w.alice)
    assert (same.status, [t["seen"] for t in same.triggers]) == (
        AlertStatus.OPEN,
        [{"CHEST_PAIN": 1}, {"CHEST_PAIN": 3}],
    )
    assert await actions(alert.id) == ["raised", "retriggered"]


async def test_an_edit_of_what_no_rule_reads_runs_no_rule(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    """Vomiting at 2 did not raise when logged; the clinic then lowered the threshold to 2. Correcting the mood of
    that entry is not a new report of vomiting; correcting its side effects is."""
    entry = await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(VOMITING=2))
    await override(services, w.admin, now, severe_vomiting={"min_severity": 2})
    await services.diary.update(w.alice.actor, entry.id, {"mood": 2}, expected_version=None, now=now)
    assert await alerts_of(w.alice) == []
    patch = {"side_effects": effects(VOMITING=2, NAUSEA=1)}
    await services.diary.update(w.alice.actor, entry.id, patch, expected_version=None, now=now)
    assert [a.rule_id for a in await alerts_of(w.alice)] == ["severe_vomiting"]


# --- once per session ---------------------------------------------------------------------------------------


async def test_a_resolved_loss_of_response_is_not_raised_again_that_session(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await pain_rebound(factory, services, w.clinician, w.alice, now)
    [alert] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, alert.id, "dose review booked", now=now)
    await log(factory, w.alice, datetime(2026, 11, 21, 12, 0, tzinfo=EST), pain_average=8)
    await log(factory, w.alice, datetime(2026, 11, 22, 12, 0, tzinfo=EST), pain_average=8)
    assert [a.id for a in await alerts_of(w.alice)] == [alert.id]


async def test_a_new_dissociation_report_after_a_resolve_raises_again_that_session(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    """Dissociation is a symptom reported, not a trend: resolved on day 2, reported again on day 3, it is news."""
    first_end = now - timedelta(days=4)
    first = await completed_session(services, w.clinician, w.alice, ended_at=first_end, now=now)
    reported = await log(factory, w.alice, first_end + timedelta(hours=25), side_effects=effects(DISSOCIATION=2))
    [alert] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, alert.id, None, now=now)
    # The resolved report saved again is not news.
    await edit_symptoms(services, w, reported, now, DISSOCIATION=2, NAUSEA=1)
    assert [a.id for a in await alerts_of(w.alice)] == [alert.id]
    again = await log(factory, w.alice, first_end + timedelta(hours=48), side_effects=effects(DISSOCIATION=3))
    by_id = {a.id: a for a in await alerts_of(w.alice)}
    old = by_id.pop(alert.id)
    [new] = by_id.values()
    assert old.status is AlertStatus.RESOLVED
    assert (new.episode, new.status, [t["id"] for t in new.triggers]) == (
        f"session:{first.id}",
        AlertStatus.OPEN,
        [str(again.id)],
    )

    second_end = now - timedelta(hours=26)
    second = await completed_session(services, w.clinician, w.alice, ended_at=second_end, now=now)
    await log(factory, w.alice, second_end + timedelta(hours=25), side_effects=effects(DISSOCIATION=1))
    assert sorted((a.episode, a.status) for a in await alerts_of(w.alice)) == sorted(
        [
            (f"session:{first.id}", AlertStatus.RESOLVED),
            (f"session:{first.id}", AlertStatus.OPEN),
            (f"session:{second.id}", AlertStatus.OPEN),
        ]
    )


async def test_a_resolve_between_the_judgement_and_the_retry_leaves_one_alert_that_session(
    factory: Factory, services: Services, w: Ward, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race, replayed: the first read of what was judged predates a resolve; the insert then collides with the
    alert, which is resolved before the retry reads it. The retry must judge again, not insert a second alert."""
    await pain_rebound(factory, services, w.clinician, w.alice, now)
    [alert] = await alerts_of(w.alice)
    await services.alerts.resolve(w.clinician.actor, alert.id, "dose review booked", now=now)
    later = await log(factory, w.alice, datetime(2026, 11, 21, 12, 0, tzinfo=EST), pain_average=8)
    assert [a.id for a in await alerts_of(w.alice)] == [alert.id]

    rules = await thresholds(w.clinic.id)
    async with in_transaction() as conn:
        [finding] = [f for f in await entry_findings(later, rules, conn) if f.rule.id == "loss_of_response"]
    judged = raising._already_judged
    reads: list[bool] = []

    async def stale_then_true(patient_id: UUID, f: Finding, conn: BaseDBAsyncClient) -> bool:
        # The first read is made before the resolve: nothing judged yet.
        reads.append(await judged(patient_id, f, conn) if reads else False)
        return reads[-1]

    real_create = Alert.create
    inserts: list[str] = []

    async def collide_once(**values: Any) -> Alert:
        inserts.append(values["open_key"])
        if len(inserts) == 1:
            raise IntegrityError("duplicate key value violates unique constraint (the alert, then still open)")
        return await real_create(**values)

    monkeypatch.setattr(raising, "_already_judged", stale_then_true)
    monkeypatch.setattr(Alert, "create", collide_once)
    async with in_transaction() as conn:
        announced = await raising.raise_alert(
            w.clinic.id, w.alice.patient.id, finding, settings_version=0, now=now, conn=conn
        )
    assert (announced, reads, len(inserts)) == (None, [False, True], 1)
    assert [a.id for a in await alerts_of(w.alice)] == [alert.id]
