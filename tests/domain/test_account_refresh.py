"""Refresh-token rotation called directly: races between two presentations of one token."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from api.domain.account.models import RefreshToken
from api.domain.account.service import Session
from api.domain.errors import Unauthenticated
from api.domain.services import Services
from tests.factories import PASSWORD, Factory


async def test_of_two_concurrent_refreshes_with_one_token_at_most_one_succeeds(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    session = await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)
    later = now + timedelta(minutes=20)

    outcomes = await asyncio.gather(
        services.accounts.refresh(session.refresh_token, now=later),
        services.accounts.refresh(session.refresh_token, now=later),
        return_exceptions=True,
    )

    winners = [o for o in outcomes if isinstance(o, Session)]
    assert len(winners) == 1, outcomes
    assert [type(o) for o in outcomes if not isinstance(o, Session)] == [Unauthenticated]
    # The second presentation is reuse: the family ends, the winner's new token included.
    with pytest.raises(Unauthenticated):
        await services.accounts.refresh(winners[0].refresh_token, now=later)


async def test_rotation_marks_the_old_token_and_keeps_the_family(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    first = await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)
    second = await services.accounts.refresh(first.refresh_token, now=now + timedelta(minutes=1))

    rows = {t.created_at: t for t in await RefreshToken.filter(account_id=staff.account.id)}

    assert len(rows) == 2
    old, new = rows[now], rows[now + timedelta(minutes=1)]
    assert old.family_id == new.family_id
    assert (old.rotated_at, old.revoked_at) == (now + timedelta(minutes=1), None)
    assert (new.rotated_at, new.revoked_at, new.expires_at) == (None, None, now + timedelta(minutes=1, days=30))
    assert second.account.id == staff.account.id


async def test_a_deactivated_account_cannot_refresh(factory: Factory, services: Services, now: datetime) -> None:
    staff = await factory.staff(await factory.clinic())
    session = await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)
    staff.account.is_active = False
    await staff.account.save(update_fields=["is_active"])

    with pytest.raises(Unauthenticated):
        await services.accounts.refresh(session.refresh_token, now=now)
    assert await RefreshToken.filter(account_id=staff.account.id, revoked_at=None).count() == 0
