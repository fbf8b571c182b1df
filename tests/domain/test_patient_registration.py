"""Registration races: of several registrations presenting one code at once, exactly one gets an account."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from api.domain.account.models import Account
from api.domain.actor import Role
from api.domain.errors import BadInput, Conflict, DomainError
from api.domain.patient.models import Invite, Patient, PatientStatus
from api.domain.services import Services
from tests.factories import PASSWORD, Factory


async def test_concurrent_registrations_on_one_code_create_exactly_one_account(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await services.patients.invite(
        staff.actor, display_name="Lise Meitner", email=None, timezone="Europe/Vienna", now=now
    )

    outcomes = await asyncio.gather(
        *(
            services.patients.register(
                invite_code=invite.code,
                email=f"racer{i}@example.test",
                password=PASSWORD,
                timezone=None,
                ip=None,
                now=now,
            )
            for i in range(4)
        ),
        return_exceptions=True,
    )

    sessions = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(sessions) == 1, outcomes
    assert all(isinstance(r, BadInput) and r.field == "invite_code" for r in refusals), refusals
    patient = await Patient.get(id=invite.patient.id)
    assert patient.status is PatientStatus.ACTIVE
    assert patient.account_id == sessions[0].account.id
    assert await Account.filter(clinic_id=clinic.id, role=Role.PATIENT).count() == 1


async def test_concurrent_registrations_with_the_same_email_create_one_account(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await services.patients.invite(
        staff.actor, display_name="Lise Meitner", email="lise@example.test", timezone="Europe/Vienna", now=now
    )

    outcomes = await asyncio.gather(
        *(
            services.patients.register(
                invite_code=invite.code, email="lise@example.test", password=PASSWORD, timezone=None, ip=None, now=now
            )
            for _ in range(3)
        ),
        return_exceptions=True,
    )

    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, DomainError) for o in outcomes if isinstance(o, BaseException))
    assert await Account.filter(email="lise@example.test").count() == 1
    assert (await Invite.get(id=(await Invite.get(patient_id=invite.patient.id)).id)).used_at == now


async def test_a_failed_registration_does_not_consume_the_code(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    taken = await factory.staff(clinic)
    invite = await services.patients.invite(
        staff.actor, display_name="Lise Meitner", email=None, timezone="Europe/Vienna", now=now
    )

    with pytest.raises(Conflict) as refused:
        await services.patients.register(
            invite_code=invite.code, email=taken.email, password=PASSWORD, timezone=None, ip=None, now=now
        )

    assert refused.value.field == "email"

    assert (await Invite.get(patient_id=invite.patient.id)).used_at is None
    assert (await Patient.get(id=invite.patient.id)).status is PatientStatus.INVITED
    assert await Account.filter(clinic_id=clinic.id, role=Role.PATIENT).count() == 0
