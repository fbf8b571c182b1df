"""A self-harm or red-flag alert never vanishes because the patient erased their account: a held record's alerts are
listed, delivered, escalated, acknowledged and resolved like any other; the record is not deleted (not even without
a hold) while one of its critical alerts is unresolved; an erased patient whose record no hold keeps has no alert
anyone is listed or escalated about, unless a write escaped the erasure (every write takes the erasure's lock,
test_erasure_race.py) and left an unresolved critical alert behind the purge: that patient counts as held.

Alice's world holds one alert: chest pain reported two days ago, CRITICAL, open, raised at `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

import pytest
import pytest_asyncio

from api.domain.alert import feed
from api.domain.alert.broker import AlertNotice
from api.domain.alert.models import Alert, AlertStatus, Severity
from api.domain.alert.service import AlertFilter
from api.domain.diary.validation import DiaryInput, SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.patient.erasure import Erasure, purge_held_records
from api.domain.patient.models import Patient, PatientStatus
from api.domain.services import Services
from tests.conftest import Database, count_acquisitions
from tests.domain.test_patient_erasure import clinical_counts
from tests.erasure_support import World, erasure_service, resolve_alerts, stored_text, world
from tests.factories import PASSWORD, Factory

REASON = "asked by letter"
NO_HOLD = timedelta(0)


@pytest_asyncio.fixture
async def w(factory: Factory, services: Services, now: datetime) -> World:
    return await world(factory, services, now)


async def listed(services: Services, w: World, now: datetime) -> list[Alert]:
    page = await services.alerts.search(w.clinician.actor, AlertFilter(), first=None, after=None, now=now)
    return [a for a in page.items if a.patient_id == w.alice.patient.id]


async def test_without_a_hold_an_open_critical_alert_holds_the_record_until_it_is_resolved(
    w: World, services: Services, now: datetime
) -> None:
    before = await clinical_counts(w.alice.patient.id)

    erasure = await erasure_service(services, NO_HOLD).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    # Who she was and how to reach her go at once all the same; the record waits for the clinic.
    assert erasure == Erasure(w.alice.patient.id, PatientStatus.ERASED, now, now, None)
    for value in w.identifying:
        assert value not in await stored_text(), value
    assert await clinical_counts(w.alice.patient.id) == before
    assert len(await listed(services, w, now)) == 1
    assert await purge_held_records(now=now + timedelta(days=1)) == 0
    assert await clinical_counts(w.alice.patient.id) == before

    await resolve_alerts(services, w, now + timedelta(days=1))

    assert await purge_held_records(now=now + timedelta(days=1)) == 1
    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}
    assert (await Patient.get(id=w.alice.patient.id)).erased_at == now + timedelta(days=1)


@pytest.mark.parametrize(
    "case",
    [
        (AlertStatus.ACKNOWLEDGED, Severity.CRITICAL, True),
        (AlertStatus.OPEN, Severity.HIGH, False),
    ],
    ids=["acknowledged-critical-holds", "open-high-goes"],
)
async def test_only_an_unresolved_critical_alert_holds_the_record(
    w: World, services: Services, now: datetime, case: tuple[AlertStatus, Severity, bool]
) -> None:
    status, severity, held = case
    await Alert.filter(patient_id=w.alice.patient.id).update(status=status, severity=severity)

    erasure = await erasure_service(services, NO_HOLD).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    assert (erasure.retained_until, erasure.erased_at) == ((now, None) if held else (None, now))
    assert await Alert.filter(patient_id=w.alice.patient.id).exists() is held


async def test_a_hold_that_ends_waits_for_the_critical_alert(w: World, services: Services, now: datetime) -> None:
    erasure = await erasure_service(services).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )
    assert erasure.retained_until is not None
    end = erasure.retained_until

    assert await purge_held_records(now=end) == 0
    await resolve_alerts(services, w, end)
    assert await purge_held_records(now=end) == 1


async def test_a_held_records_alert_is_listed_delivered_escalated_and_closed(
    w: World, services: Services, now: datetime
) -> None:
    await erasure_service(services).erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)
    later = now + timedelta(hours=1)

    [alert] = await listed(services, w, later)
    assert alert.severity is Severity.CRITICAL
    assert [a.id for a in await services.alerts.escalate(now=later)] == [alert.id]
    delivered = await feed.read(w.admin.actor, AlertNotice(alert.id, w.clinic.id), now=later)
    assert delivered is not None
    assert delivered.escalated_at == later
    acknowledged = await services.alerts.acknowledge(w.clinician.actor, alert.id, "calling her", now=later)
    assert acknowledged.status is AlertStatus.ACKNOWLEDGED
    resolved = await services.alerts.resolve(w.clinician.actor, alert.id, "reached her GP", now=later)
    assert resolved.status is AlertStatus.RESOLVED


async def test_an_erased_patient_with_no_hold_has_no_alert_to_list_or_escalate(
    w: World, services: Services, now: datetime
) -> None:
    """Marked ERASED by hand (no erasure, no hold): staff reach nothing of theirs, so admins are not called."""
    await Patient.filter(id=w.alice.patient.id).update(status=PatientStatus.ERASED)
    later = now + timedelta(hours=1)

    assert await listed(services, w, later) == []
    assert await services.alerts.escalate(now=later) == []
    assert await Alert.filter(patient_id=w.alice.patient.id, escalated_at=None).count() == 1


async def escaped_write(services: Services, w: World, now: datetime) -> Alert:
    """What a write that escaped the erasure's lock would leave after the purge: a diary entry and the critical alert
    it raised (the erased status lifted for that one write, as a write that passed its check before the erasure)."""
    await Patient.filter(id=w.alice.patient.id).update(status=PatientStatus.ACTIVE)
    chest = [SideEffectReport(SideEffect.CHEST_PAIN, 3)]
    await services.diary.log(w.alice.actor, DiaryInput(uuid4(), now - timedelta(hours=1), side_effects=chest), now=now)
    await Patient.filter(id=w.alice.patient.id).update(status=PatientStatus.ERASED)
    return await Alert.get(patient_id=w.alice.patient.id, status=AlertStatus.OPEN)


async def purged(services: Services, w: World, now: datetime) -> None:
    await resolve_alerts(services, w, now)
    erasure = await erasure_service(services, NO_HOLD).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )
    assert erasure.erased_at == now


async def test_a_critical_alert_left_behind_the_purge_is_dealt_with_then_purged(
    w: World, services: Services, now: datetime
) -> None:
    await purged(services, w, now)
    alert = await escaped_write(services, w, now)
    later = now + timedelta(hours=1)

    # Held, as far as the alert goes: listed, escalated, delivered, and the record kept while it is open.
    assert [a.id for a in await listed(services, w, later)] == [alert.id]
    assert [a.id for a in await services.alerts.escalate(now=later)] == [alert.id]
    assert await feed.read(w.admin.actor, AlertNotice(alert.id, w.clinic.id), now=later) is not None
    await services.alerts.acknowledge(w.clinician.actor, alert.id, "calling her", now=later)
    assert await purge_held_records(now=later) == 0
    assert (await clinical_counts(w.alice.patient.id))["diary"] == 1

    await services.alerts.resolve(w.clinician.actor, alert.id, "reached her GP", now=later)

    assert await purge_held_records(now=later) == 1
    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}
    assert (await Patient.get(id=w.alice.patient.id)).erased_at == later
    assert await purge_held_records(now=later) == 0


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_staff_read_a_record_left_behind_the_purge_on_the_pages_one_connection(
    db: Database, w: World, services: Services, now: datetime
) -> None:
    """The access check's look for the critical alert runs on the connection the page holds: on another, a full
    pool of such reads would wait for each other for ever."""
    await purged(services, w, now)
    await escaped_write(services, w, now)
    page_args = {"first": None, "after": None, "start": None, "end": None, "include_deleted": False, "now": now}
    with count_acquisitions() as taken:
        page = await services.diary.entries(w.clinician.actor, w.alice.patient.id, **page_args)  # type: ignore[arg-type]
    assert len(page.items) == 1
    assert len(taken) == 1


async def test_a_lesser_alert_left_behind_the_purge_is_not_listed_and_goes_at_the_next_purge(
    w: World, services: Services, now: datetime
) -> None:
    await purged(services, w, now)
    alert = await escaped_write(services, w, now)
    await Alert.filter(id=alert.id).update(severity=Severity.HIGH)
    later = now + timedelta(hours=1)

    assert await listed(services, w, later) == []
    assert await services.alerts.escalate(now=later) == []
    assert await purge_held_records(now=later) == 1
    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}
