"""The alert feed's access checks: a notice names an alert, the subscriber may or may not see it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from api.domain.actor import Actor, RequestMeta, Role
from api.domain.alert import feed
from api.domain.alert.broker import AlertNotice, LocalBroker, NoticeKind
from api.domain.alert.models import Alert
from api.domain.audit.models import AuditEvent
from api.domain.errors import Forbidden
from api.domain.patient.models import Patient, PatientStatus
from tests.alert_support import effects
from tests.factories import Factory, PatientUser


async def chest_pain(factory: Factory, who: PatientUser, now: datetime) -> Alert:
    await factory.entry(who, recorded_at=now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=2))
    return await Alert.get(patient_id=who.patient.id)


def notice_of(alert: Alert) -> AlertNotice:
    return AlertNotice(alert.id, alert.clinic_id)


async def test_each_delivery_is_read_and_audited_on_its_own(factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    staff, alice = await factory.staff(clinic), await factory.patient(clinic)
    alert = await chest_pain(factory, alice, now)

    def delivery() -> Actor:
        # Each delivery on a connection runs on its own request meta, as `Context.renew` gives it.
        meta = RequestMeta(request_id="ws-1", operation="alertRaised")
        return Actor(staff.account.id, Role.CLINICIAN, clinic.id, meta=meta)

    first = await feed.read(delivery(), notice_of(alert), now=now)
    again = await feed.read(delivery(), notice_of(alert), now=now + timedelta(minutes=20))
    assert first is not None
    assert again is not None
    assert (first.id, again.id) == (alert.id, alert.id)
    events = await AuditEvent.filter(actor_id=staff.account.id, action="alert.read").order_by("created_at")
    assert [(e.patient_id, e.object_id, e.created_at, e.request_id, e.operation) for e in events] == [
        (alice.patient.id, alert.id, now, "ws-1", "alertRaised"),
        (alice.patient.id, alert.id, now + timedelta(minutes=20), "ws-1", "alertRaised"),
    ]


async def test_another_clinics_alert_or_an_unknown_id_is_not_delivered(factory: Factory, now: datetime) -> None:
    ours, theirs = await factory.clinic(), await factory.clinic()
    outsider = await factory.staff(theirs)
    alert = await chest_pain(factory, await factory.patient(ours), now)
    # Even a notice that claims the outsider's clinic: the alert is looked up in the reader's clinic.
    assert await feed.read(outsider.actor, AlertNotice(alert.id, theirs.id), now=now) is None
    assert await feed.read(outsider.actor, AlertNotice(uuid4(), theirs.id), now=now) is None
    assert await AuditEvent.filter(actor_id=outsider.account.id).count() == 0


async def test_an_erased_patients_alert_is_not_delivered(factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    staff, alice = await factory.staff(clinic), await factory.patient(clinic)
    alert = await chest_pain(factory, alice, now)
    await Patient.filter(id=alice.patient.id).update(status=PatientStatus.ERASED)
    assert await feed.read(staff.actor, notice_of(alert), now=now) is None
    assert await AuditEvent.filter(actor_id=staff.account.id, action="alert.read").count() == 0


async def test_a_patient_may_neither_subscribe_nor_read(factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    alert = await chest_pain(factory, alice, now)
    broker = LocalBroker()
    with pytest.raises(Forbidden):
        async with feed.subscribe(broker, alice.actor):
            pass
    assert broker.subscribers(clinic.id) == 0
    with pytest.raises(Forbidden):
        await feed.read(alice.actor, notice_of(alert), now=now)


async def test_staff_subscribe_to_their_own_clinic_only(factory: Factory) -> None:
    ours, theirs = await factory.clinic(), await factory.clinic()
    staff = await factory.staff(ours)
    broker = LocalBroker()
    async with feed.subscribe(broker, staff.actor):
        assert (broker.subscribers(ours.id), broker.subscribers(theirs.id)) == (1, 0)
    assert broker.subscribers(ours.id) == 0


async def test_admins_hear_only_escalations_of_their_own_clinic(factory: Factory) -> None:
    ours, theirs = await factory.clinic(), await factory.clinic()
    admin = await factory.staff(ours, Role.ADMIN)
    broker = LocalBroker()
    escalated = AlertNotice(uuid4(), ours.id, NoticeKind.ESCALATED)
    async with feed.escalations(broker, admin.actor) as notices:
        assert (broker.subscribers(ours.id), broker.subscribers(theirs.id)) == (1, 0)
        await broker.publish(AlertNotice(uuid4(), ours.id, NoticeKind.RAISED))
        await broker.publish(AlertNotice(uuid4(), theirs.id, NoticeKind.ESCALATED))
        await broker.publish(escalated)
        # The first notice heard is the third one sent: the raise and the other clinic's escalation never came.
        async with asyncio.timeout(10):
            assert await anext(notices) == escalated
    assert broker.subscribers(ours.id) == 0


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.PATIENT])
async def test_only_admins_may_follow_escalations(factory: Factory, role: Role) -> None:
    clinic = await factory.clinic()
    who = (await factory.staff(clinic)).actor if role is Role.CLINICIAN else (await factory.patient(clinic)).actor
    broker = LocalBroker()
    with pytest.raises(Forbidden):
        async with feed.escalations(broker, who):
            pass
    assert broker.subscribers(clinic.id) == 0
