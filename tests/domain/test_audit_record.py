"""audit.record and audit.list_events called directly, as services do."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import uuid4

import pytest

from api.domain import audit
from api.domain.actor import Actor, RequestMeta, Role
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.errors import Forbidden
from tests.conftest import Database


def _actor(role: Role, meta: RequestMeta | None = None) -> Actor:
    meta = meta or RequestMeta(request_id="r", ip="192.0.2.1", operation="Op")
    if role is Role.SYSTEM:
        return Actor.system(uuid4(), meta)
    return Actor(account_id=uuid4(), role=role, clinic_id=uuid4(), patient_id=None, meta=meta)


async def test_concurrent_reads_of_one_patient_in_a_request_write_one_event(db: Database, now: datetime) -> None:
    actor, patient = _actor(Role.CLINICIAN), uuid4()

    await asyncio.gather(*(audit.record(actor, "patient.read", [patient], now=now) for _ in range(5)))

    assert await AuditEvent.filter(patient_id=patient).count() == 1
    assert await AuditSubject.filter(patient_id=patient).count() == 1


async def test_a_list_covers_its_patients_for_later_reads_in_the_request(db: Database, now: datetime) -> None:
    actor, patients, unlisted = _actor(Role.ADMIN), [uuid4(), uuid4(), uuid4()], uuid4()

    await audit.record(actor, "patient.list", patients, now=now)
    await audit.record(actor, "patient.read", [patients[1]], now=now)
    await audit.record(actor, "patient.read", [unlisted], now=now)

    events = await AuditEvent.all().order_by("action")
    assert [(e.action, e.patient_id) for e in events] == [("patient.list", None), ("patient.read", unlisted)]
    assert {s.patient_id for s in await AuditSubject.filter(event_id=events[0].id)} == set(patients)


async def test_writes_are_recorded_every_time(db: Database, now: datetime) -> None:
    actor, patient = _actor(Role.CLINICIAN), uuid4()

    await audit.record(actor, "patient.read", [patient], now=now)
    await audit.record(actor, "patient.invite", [patient], now=now, object_id=uuid4(), write=True)
    await audit.record(actor, "patient.invite", [patient], now=now, object_id=uuid4(), write=True)

    assert await AuditEvent.filter(patient_id=patient).count() == 3


async def test_a_new_request_records_again(db: Database, now: datetime) -> None:
    patient, account, clinic = uuid4(), uuid4(), uuid4()
    for request in ("r1", "r2"):
        actor = Actor(account, Role.CLINICIAN, clinic, meta=RequestMeta(request_id=request))
        await audit.record(actor, "patient.read", [patient], now=now)

    assert sorted(str(e.request_id) for e in await AuditEvent.all()) == ["r1", "r2"]


@pytest.mark.parametrize("role", [Role.PATIENT, Role.SYSTEM])
async def test_only_staff_are_audited(role: Role, db: Database, now: datetime) -> None:
    await audit.record(_actor(role), "patient.read", [uuid4()], now=now)

    assert await AuditEvent.all().count() == 0


@pytest.mark.parametrize("role", [Role.PATIENT, Role.CLINICIAN, Role.SYSTEM])
async def test_only_admins_read_the_trail(role: Role, db: Database) -> None:
    with pytest.raises(Forbidden):
        await audit.list_events(_actor(role), patient_id=None, first=10, after=None)
