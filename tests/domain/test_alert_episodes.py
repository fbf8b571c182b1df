"""One open alert per (patient, rule, episode): retriggers append, a resolved episode starts again, concurrent
raises leave one alert, and only a newly raised alert is announced."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from tortoise.transactions import in_transaction

from api.domain.alert.broker import AlertNotice, LocalBroker, NoticeKind
from api.domain.alert.models import AlertStatus
from api.domain.alert.service import AlertService
from api.domain.diary.models import DiaryEntry
from api.domain.services import Services
from tests.alert_support import Ward, actions, alerts_of, effects, log, notices_until_now, respond, symptoms, ward
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


async def test_an_acknowledged_alert_still_collects_triggers(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    await services.alerts.acknowledge(w.clinician.actor, alert.id, None, now=now)
    await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(CHEST_PAIN=1))
    [same] = await alerts_of(w.alice)
    assert (same.status, len(same.triggers)) == (AlertStatus.ACKNOWLEDGED, 2)


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


async def test_questionnaire_rules_return_only_newly_raised_alerts(services: Services, w: Ward, now: datetime) -> None:
    first = await respond(services, w.alice, "phq9", score=22, answers={"phq9_9": 2}, now=now)
    assert sorted(a.rule_id for a in first) == ["phq9_item9", "phq9_severe"]
    again = await respond(services, w.alice, "phq9", score=23, answers={"phq9_9": 3}, now=now)
    assert again == []
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


async def test_only_a_newly_raised_alert_is_announced(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    broker = services.alerts.broker
    assert isinstance(broker, LocalBroker)
    async with broker.subscribe(w.clinic.id) as stream:
        await log(factory, w.alice, now - timedelta(hours=3), side_effects=effects(CHEST_PAIN=1))
        await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(CHEST_PAIN=2))  # a retrigger
        await log(factory, w.alice, now - timedelta(hours=1), pain_now=2)  # nothing to raise
        received = await notices_until_now(broker, w.clinic.id, stream)
    [alert] = await alerts_of(w.alice)
    assert [(n.alert_id, n.clinic_id, n.kind) for n in received] == [(alert.id, w.clinic.id, NoticeKind.RAISED)]


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
