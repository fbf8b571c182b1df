"""Push targets: registering, re-registering, a token changing hands, unregistering, and the refusals."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from api.domain.account.tokens import sha256_hex
from api.domain.errors import BadInput, Forbidden
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName
from tests.factories import Factory, PatientUser, Staff

TOKEN = "fcm-token-abc123"


async def people(factory: Factory, now: datetime) -> tuple[PatientUser, PatientUser, PatientUser, Staff]:
    home, away = await factory.clinic(), await factory.clinic()
    return (
        await factory.patient(home, joined=now),
        await factory.patient(home, joined=now),
        await factory.patient(away, joined=now),
        await factory.staff(home),
    )


async def stored() -> list[tuple[object, ...]]:
    return list(
        await Device.all()
        .order_by("id")
        .values_list("id", "patient_id", "clinic_id", "token", "platform", "last_seen_at", "disabled_at")
    )


async def test_register_stores_the_token_for_sending_and_its_hash_for_lookup(factory: Factory, now: datetime) -> None:
    alice, *_ = await people(factory, now)

    device = await devices.register(alice.actor, ProviderName.FCM, f"  {TOKEN}\n", "android", now=now)

    row = await Device.get(id=device.id)
    assert (row.patient_id, row.clinic_id, row.provider) == (alice.patient.id, alice.patient.clinic_id, "FCM")
    assert (row.token, row.token_hash, row.platform) == (TOKEN, sha256_hex(TOKEN), "android")
    assert (row.created_at, row.last_seen_at, row.disabled_at) == (now, now, None)


async def test_registering_again_refreshes_and_re_enables_the_same_device(factory: Factory, now: datetime) -> None:
    alice, *_ = await people(factory, now)
    first = await devices.register(alice.actor, ProviderName.FCM, TOKEN, "android", now=now)
    assert await devices.unregister(alice.actor, TOKEN, now=now)
    later = now + timedelta(days=1)

    again = await devices.register(alice.actor, ProviderName.FCM, TOKEN, None, now=later)

    assert again.id == first.id
    row = await Device.get(id=first.id)
    assert (row.last_seen_at, row.disabled_at, row.disabled_reason, row.platform) == (later, None, None, "android")
    assert await Device.all().count() == 1
    # The same token on another provider is another device.
    other = await devices.register(alice.actor, ProviderName.EXPO, TOKEN, None, now=later)
    assert other.id != first.id


async def test_a_token_registered_by_another_patient_moves_to_them(factory: Factory, now: datetime) -> None:
    alice, bob, carol, _ = await people(factory, now)
    device = await devices.register(alice.actor, ProviderName.APNS, TOKEN, "ios", now=now)

    to_bob = await devices.register(bob.actor, ProviderName.APNS, TOKEN, "ios", now=now + timedelta(hours=1))
    # Alice can no longer switch it off: it is not hers.
    assert not await devices.unregister(alice.actor, TOKEN, now=now + timedelta(hours=2))
    to_carol = await devices.register(carol.actor, ProviderName.APNS, TOKEN, "ios", now=now + timedelta(hours=3))

    assert to_bob.id == to_carol.id == device.id
    row = await Device.get(id=device.id)
    assert (row.patient_id, row.clinic_id, row.disabled_at) == (carol.patient.id, carol.patient.clinic_id, None)
    assert await Device.all().count() == 1


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_registrations_of_one_token_make_one_device(
    factory: Factory, now: datetime, round_: int
) -> None:
    alice, bob, *_ = await people(factory, now)

    results = await asyncio.gather(
        *(devices.register(who.actor, ProviderName.FCM, TOKEN, "android", now=now) for who in (alice, bob, alice)),
        return_exceptions=True,
    )

    assert all(isinstance(r, Device) for r in results), results
    assert await Device.all().count() == 1
    assert len({r.id for r in results if isinstance(r, Device)}) == 1


async def test_unregister_disables_only_the_callers_own_device(factory: Factory, now: datetime) -> None:
    alice, bob, *_ = await people(factory, now)
    await devices.register(alice.actor, ProviderName.FCM, TOKEN, None, now=now)
    before = await stored()

    assert not await devices.unregister(bob.actor, TOKEN, now=now)
    assert not await devices.unregister(alice.actor, "some-other-token", now=now)
    assert await stored() == before

    assert await devices.unregister(alice.actor, f" {TOKEN} ", now=now)
    row = await Device.get(patient_id=alice.patient.id)
    assert (row.disabled_at, row.disabled_reason) == (now, "unregistered")
    assert not await devices.unregister(alice.actor, TOKEN, now=now)  # already off


@pytest.mark.parametrize(
    ("token", "platform", "field"),
    [
        ("", None, "token"),
        ("   \n", None, "token"),
        ("x" * 4097, None, "token"),
        (TOKEN, "p" * 33, "platform"),
    ],
)
async def test_invalid_registrations_are_refused_naming_the_field(
    factory: Factory, now: datetime, token: str, platform: str | None, field: str
) -> None:
    alice, *_ = await people(factory, now)
    await devices.register(alice.actor, ProviderName.FCM, "existing", None, now=now)
    before = await stored()

    with pytest.raises(BadInput) as refused:
        await devices.register(alice.actor, ProviderName.FCM, token, platform, now=now)

    assert refused.value.field == field
    assert await stored() == before


async def test_only_patients_register_devices(factory: Factory, now: datetime) -> None:
    *_, staff = await people(factory, now)

    with pytest.raises(Forbidden):
        await devices.register(staff.actor, ProviderName.FCM, TOKEN, None, now=now)
    with pytest.raises(Forbidden):
        await devices.unregister(staff.actor, TOKEN, now=now)

    assert await stored() == []
