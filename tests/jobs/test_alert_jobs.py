"""The clock's alert passes, called directly with a fixed `now`: missed diaries, and escalation of unacknowledged
critical alerts after the clinic's delay, once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from api.container import build_alerts, build_job_config
from api.domain.account.models import Account
from api.domain.actor import Role
from api.domain.alert.broker import LocalBroker, NoticeKind
from api.domain.alert.models import Alert, AlertEvent, AlertStatus, Severity
from api.domain.alert.settings import SettingsChange
from api.domain.services import Services
from api.domain.treatment.models import CourseStatus, TreatmentCourse
from jobs import passes
from jobs.passes import JobConfig
from tests.alert_support import Ward, actions, alerts_of, effects, log, notices_until_now, override, ward
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser, Staff


@pytest_asyncio.fixture
async def w(factory: Factory) -> Ward:
    return await ward(factory)


@pytest.fixture
def broker() -> LocalBroker:
    return LocalBroker()


@pytest.fixture
def config(broker: LocalBroker) -> JobConfig:
    settings = make_settings()
    return build_job_config(settings, alerts=build_alerts(settings, broker))


async def on_course(services: Services, staff: Staff, who: PatientUser, *, since: datetime) -> TreatmentCourse:
    """A course created at `since`, with one session booked for next week."""
    session = await services.treatment.schedule(
        staff.actor,
        who.patient.id,
        starts_at=since + timedelta(days=30),
        planned_duration_minutes=60,
        course_id=None,
        now=since,
    )
    return await TreatmentCourse.get(id=session.course_id)


# --- missed_diary -------------------------------------------------------------------------------------------


async def test_a_patient_on_an_active_course_without_entries_for_three_days_gets_a_low_alert(
    factory: Factory, services: Services, config: JobConfig, *, broker: LocalBroker, w: Ward, now: datetime
) -> None:
    carol = await factory.patient(w.clinic, name="Carol")
    dave = await factory.patient(w.clinic, name="Dave")
    eve = await factory.patient(w.clinic, name="Eve")
    alice_course = await on_course(services, w.clinician, w.alice, since=now - timedelta(days=10))
    await on_course(services, w.clinician, w.bob, since=now - timedelta(days=10))
    carol_course = await on_course(services, w.clinician, carol, since=now - timedelta(days=10))
    await on_course(services, w.clinician, eve, since=now - timedelta(days=2))  # too new to have missed 3 days
    last_alice = await log(factory, w.alice, now - timedelta(days=3, minutes=1), pain_now=4)
    await log(factory, w.bob, now - timedelta(days=3), pain_now=4)  # exactly 3 days ago: not yet missed
    await log(factory, dave, now - timedelta(days=9), pain_now=4)  # no course: nothing to miss

    async with broker.subscribe(w.clinic.id) as stream:
        counts = await passes.alert_time_rules(config, now)
        received = await notices_until_now(broker, w.clinic.id, stream)

    assert counts == {"clinics": 1, "raised": 2, "resolved": 0}
    [alice_alert] = await alerts_of(w.alice)
    [carol_alert] = await alerts_of(carol)
    assert (alice_alert.rule_id, alice_alert.severity) == ("missed_diary", Severity.LOW)
    assert alice_alert.episode == f"course:{alice_course.id}"
    assert alice_alert.details == {
        "days": 3,
        "last_entry_at": last_alice.recorded_at.isoformat(),
        "settings_version": 0,
    }
    assert alice_alert.triggers == [{"type": "TreatmentCourse", "id": str(alice_course.id), "at": now.isoformat()}]
    assert carol_alert.details["last_entry_at"] is None
    assert carol_alert.episode == f"course:{carol_course.id}"
    assert [await alerts_of(p) for p in (w.bob, dave, eve)] == [[], [], []]
    assert {(n.alert_id, n.kind) for n in received} == {
        (alice_alert.id, NoticeKind.RAISED),
        (carol_alert.id, NoticeKind.RAISED),
    }


async def test_the_next_pass_adds_nothing_and_a_new_entry_resolves_the_nudge(
    factory: Factory, services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    await on_course(services, w.clinician, w.alice, since=now - timedelta(days=10))
    await passes.alert_time_rules(config, now - timedelta(hours=3))
    again = await passes.alert_time_rules(config, now - timedelta(hours=2))
    assert again == {"clinics": 1, "raised": 0, "resolved": 0}
    [alert] = await alerts_of(w.alice)
    assert (len(alert.triggers), await actions(alert.id)) == (1, ["raised"])

    await log(factory, w.alice, now - timedelta(hours=1), pain_now=3)
    assert await passes.alert_time_rules(config, now) == {"clinics": 1, "raised": 0, "resolved": 1}
    [resolved] = await alerts_of(w.alice)
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by_id, resolved.open_key) == (
        AlertStatus.RESOLVED,
        now,
        None,
        None,
    )
    assert await actions(alert.id) == ["raised", "resolved"]


async def test_a_completed_course_ends_the_watch_and_resolves_its_nudge(
    services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    course = await on_course(services, w.clinician, w.alice, since=now - timedelta(days=10))
    await passes.alert_time_rules(config, now)
    await TreatmentCourse.filter(id=course.id).update(status=CourseStatus.COMPLETED)
    assert await passes.alert_time_rules(config, now + timedelta(days=1)) == {"clinics": 1, "raised": 0, "resolved": 1}
    assert await passes.alert_time_rules(config, now + timedelta(days=2)) == {"clinics": 0, "raised": 0, "resolved": 0}


async def test_the_clinic_sets_the_days_or_disables_the_rule_for_itself_only(
    factory: Factory, services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    other = await ward(factory)
    for staff, who in ((w.clinician, w.alice), (other.clinician, other.alice)):
        await on_course(services, staff, who, since=now - timedelta(days=10))
        await log(factory, who, now - timedelta(days=4), pain_now=4)
    await override(services, w.admin, now, missed_diary={"days": 5})
    await passes.alert_time_rules(config, now)
    assert (await alerts_of(w.alice), len(await alerts_of(other.alice))) == ([], 1)

    await override(services, w.admin, now, missed_diary={"enabled": False})
    await passes.alert_time_rules(config, now + timedelta(days=3))  # 7 days without an entry
    assert await alerts_of(w.alice) == []


async def test_disabling_the_rule_resolves_the_open_nudges(
    factory: Factory, services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    other = await ward(factory)
    await on_course(services, w.clinician, w.alice, since=now - timedelta(days=10))
    await on_course(services, other.clinician, other.alice, since=now - timedelta(days=10))
    await passes.alert_time_rules(config, now)
    [alert] = await alerts_of(w.alice)
    [others] = await alerts_of(other.alice)
    await override(services, w.admin, now, missed_diary={"enabled": False})
    later = now + timedelta(hours=1)
    assert await passes.alert_time_rules(config, later) == {"clinics": 2, "raised": 0, "resolved": 1}
    resolved = await Alert.get(id=alert.id)
    assert (resolved.status, resolved.open_key, resolved.resolved_at) == (AlertStatus.RESOLVED, None, later)
    event = await AlertEvent.get(alert_id=alert.id, action="resolved")
    assert (event.note, event.actor_id) == ("rule disabled by the clinic", None)
    assert (await Alert.get(id=others.id)).status is AlertStatus.OPEN  # another clinic keeps its nudge
    # Nothing left to watch in that clinic once the nudge is gone; the other clinic is still checked.
    assert await passes.alert_time_rules(config, later + timedelta(hours=1)) == {
        "clinics": 2,
        "raised": 0,
        "resolved": 0,
    }


# --- escalation ---------------------------------------------------------------------------------------------


async def test_an_unacknowledged_critical_alert_escalates_after_the_delay_once(
    factory: Factory,
    config: JobConfig,
    *,
    broker: LocalBroker,
    w: Ward,
    now: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=2))
    [alert] = await alerts_of(w.alice)
    assert alert.raised_at == now

    assert await passes.escalate_alerts(config, now + timedelta(minutes=14, seconds=59)) == {"escalated": 0}
    at = now + timedelta(minutes=15)
    with caplog.at_level(logging.INFO, logger="interlude.alerts"):
        async with broker.subscribe(w.clinic.id) as stream:
            assert await passes.escalate_alerts(config, at) == {"escalated": 1}
            received = await notices_until_now(broker, w.clinic.id, stream)
    assert [(n.alert_id, n.kind) for n in received] == [(alert.id, NoticeKind.ESCALATED)]
    escalated = await Alert.get(id=alert.id)
    assert (escalated.escalated_at, escalated.status) == (at, AlertStatus.OPEN)
    assert escalated.details["escalated_to"] == [str(w.admin.account.id)]
    assert await actions(alert.id) == ["raised", "escalated"]
    [record] = [r for r in caplog.records if r.getMessage() == "alert.escalated"]
    assert (record.alert_id, record.clinic_id) == (str(alert.id), str(w.clinic.id))  # type: ignore[attr-defined]

    assert await passes.escalate_alerts(config, at + timedelta(minutes=30)) == {"escalated": 0}
    assert await actions(alert.id) == ["raised", "escalated"]


async def test_acknowledged_resolved_and_non_critical_alerts_do_not_escalate(
    factory: Factory, services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    carol = await factory.patient(w.clinic, name="Carol")
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=2))
    await log(factory, w.bob, now - timedelta(hours=1), side_effects=effects(BREATHING_DIFFICULTY=1))
    await log(factory, carol, now - timedelta(hours=1), side_effects=effects(VOMITING=3))
    [acknowledged] = await alerts_of(w.alice)
    [resolved] = await alerts_of(w.bob)
    await services.alerts.acknowledge(w.clinician.actor, acknowledged.id, None, now=now + timedelta(minutes=14))
    await services.alerts.resolve(w.clinician.actor, resolved.id, None, now=now + timedelta(minutes=1))
    assert await passes.escalate_alerts(config, now + timedelta(hours=2)) == {"escalated": 0}
    assert await Alert.filter(escalated_at__isnull=False).count() == 0


async def test_each_clinic_escalates_after_its_own_delay(
    factory: Factory, services: Services, config: JobConfig, w: Ward, now: datetime
) -> None:
    other = await ward(factory)
    await services.alerts.update_settings(w.admin.actor, SettingsChange(0, escalation_minutes=5), now=now)
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    await log(factory, other.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    assert await passes.escalate_alerts(config, now + timedelta(minutes=4)) == {"escalated": 0}
    assert await passes.escalate_alerts(config, now + timedelta(minutes=5)) == {"escalated": 1}
    assert [a.escalated_at for a in await alerts_of(w.alice)] == [now + timedelta(minutes=5)]
    assert [a.escalated_at for a in await alerts_of(other.alice)] == [None]
    assert await passes.escalate_alerts(config, now + timedelta(minutes=15)) == {"escalated": 1}
    assert [a.escalated_at for a in await alerts_of(other.alice)] == [now + timedelta(minutes=15)]


async def test_tick_runs_both_alert_passes(factory: Factory, config: JobConfig, w: Ward, now: datetime) -> None:
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    report = await passes.tick(config, now + timedelta(hours=1))
    assert report["alert.escalate"] == {"escalated": 1}
    assert report["alert.time_rules"] == {"clinics": 0, "raised": 0, "resolved": 0}


async def test_escalation_names_the_clinics_active_admins(
    factory: Factory, config: JobConfig, w: Ward, now: datetime
) -> None:
    second = await factory.staff(w.clinic, Role.ADMIN)
    former = await factory.staff(w.clinic, Role.ADMIN)
    await Account.filter(id=former.account.id).update(is_active=False)
    await factory.staff(await factory.clinic(), Role.ADMIN)  # another clinic's admin
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(w.alice)
    await passes.escalate_alerts(config, now + timedelta(minutes=15))
    admins = sorted([str(w.admin.account.id), str(second.account.id)])
    escalated = await Alert.get(id=alert.id)
    assert escalated.details == {
        "symptoms": ["CHEST_PAIN"],
        "min_severity": 1,
        "settings_version": 0,
        "escalated_to": admins,
    }
    event = await AlertEvent.get(alert_id=alert.id, action="escalated")
    assert (event.note, event.actor_id) == (f"escalated to {admins[0]}, {admins[1]}", None)


async def test_a_clinic_without_an_admin_still_escalates_and_says_so_in_the_log(
    factory: Factory, config: JobConfig, *, broker: LocalBroker, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = await factory.clinic()
    patient = await factory.patient(clinic)
    await log(factory, patient, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    [alert] = await alerts_of(patient)
    at = now + timedelta(minutes=15)
    with caplog.at_level(logging.WARNING, logger="interlude.alerts"):
        async with broker.subscribe(clinic.id) as stream:
            assert await passes.escalate_alerts(config, at) == {"escalated": 1}
            received = await notices_until_now(broker, clinic.id, stream)
    [record] = [r for r in caplog.records if r.getMessage() == "alert.escalation_no_admin"]
    assert (record.alert_id, record.clinic_id) == (str(alert.id), str(clinic.id))  # type: ignore[attr-defined]
    escalated = await Alert.get(id=alert.id)
    assert (escalated.escalated_at, escalated.details["escalated_to"]) == (at, [])
    assert (await AlertEvent.get(alert_id=alert.id, action="escalated")).note == "no admin account to escalate to"
    assert [(n.alert_id, n.kind) for n in received] == [(alert.id, NoticeKind.ESCALATED)]
