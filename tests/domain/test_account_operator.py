"""Operator actions behind `create-clinic` and `create-user`, refused in the domain, not only by the CLI's parser."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import pytest

from api.domain.account.models import Account, Clinic
from api.domain.actor import Role
from api.domain.errors import BadInput, NotFound
from api.domain.services import Services
from tests.factories import PASSWORD, Factory


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_a_clinic_needs_a_name(factory: Factory, services: Services, now: datetime, name: str) -> None:
    with pytest.raises(BadInput) as refused:
        await services.accounts.create_clinic(name, now=now)
    assert refused.value.field == "name"
    assert await Clinic.all().count() == 0


@pytest.mark.parametrize("role", [Role.PATIENT, Role.SYSTEM])
async def test_staff_accounts_are_clinicians_or_admins_only(
    factory: Factory, services: Services, now: datetime, role: Role
) -> None:
    clinic = await factory.clinic()
    with pytest.raises(BadInput) as refused:
        await services.accounts.create_staff(clinic.id, role, "someone@clinic.test", PASSWORD, now=now)
    assert refused.value.field == "role"
    assert await Account.all().count() == 0


async def test_staff_need_an_existing_clinic(factory: Factory, services: Services, now: datetime) -> None:
    with pytest.raises(NotFound) as refused:
        await services.accounts.create_staff(uuid4(), Role.ADMIN, "someone@clinic.test", PASSWORD, now=now)
    assert refused.value.field == "clinic"
    assert await Account.all().count() == 0
