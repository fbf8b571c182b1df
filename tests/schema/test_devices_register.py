"""registerDevice and unregisterDevice: the token is stored to send, never returned; a token registered again moves
to the patient who registered it; unregistering someone else's token answers false and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

import tests.conftest
from api.container import build_job_config
from api.domain.push.models import Device, ProviderName
from api.domain.push.providers.base import Outcome, PushMessage, SendResult
from jobs import passes
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient

REGISTER = """
mutation Register($input: DeviceInput!) { registerDevice(input: $input) { id provider platform lastSeenAt enabled } }
"""
UNREGISTER = "mutation Unregister($token: String!) { unregisterDevice(token: $token) }"
TOKEN = "fcm:APA91bH-secret-device-token"


@dataclass
class Household:
    alice: PatientUser
    bob: PatientUser


@pytest.fixture
async def household(factory: Factory) -> Household:
    clinic = await factory.clinic()
    return Household(await factory.patient(clinic, name="Alice"), await factory.patient(clinic, name="Bob"))


async def register(
    gql: GraphQLClient, who: PatientUser, token: str = TOKEN, *, provider: str = "FCM", at: datetime | None = None
) -> dict[str, Any]:
    variables = {"input": {"provider": provider, "token": token, "platform": "android"}}
    result = (await gql(REGISTER, variables, actor=who.actor, now=at)).ok()["registerDevice"]
    assert isinstance(result, dict)
    return result


async def devices() -> list[dict[str, Any]]:
    return list(await Device.all().order_by("id").values())


async def test_registering_returns_the_device_but_never_its_token(
    household: Household, gql: GraphQLClient, now: datetime
) -> None:
    result = await gql(
        REGISTER, {"input": {"provider": "FCM", "token": TOKEN, "platform": "android"}}, actor=household.alice.actor
    )

    device = result.ok()["registerDevice"]
    assert {k: v for k, v in device.items() if k != "id"} == {
        "provider": "FCM",
        "platform": "android",
        "lastSeenAt": now.isoformat(),
        "enabled": True,
    }
    assert TOKEN not in repr(result)
    row = await Device.get(id=device["id"])
    assert (row.patient_id, row.token, row.provider) == (household.alice.patient.id, TOKEN, "FCM")


async def test_the_device_type_has_no_token_field(household: Household, gql: GraphQLClient) -> None:
    fields = (await gql('{ __type(name: "Device") { fields { name } } }')).ok()["__type"]["fields"]
    asking = await gql(
        'mutation { registerDevice(input: {provider: FCM, token: "t"}) { id token } }', actor=household.alice.actor
    )

    assert "token" not in {f["name"] for f in fields}
    assert asking.codes == ["BAD_USER_INPUT"]
    assert await devices() == []


async def test_registering_the_same_token_again_updates_the_one_device(
    household: Household, gql: GraphQLClient, now: datetime
) -> None:
    first = await register(gql, household.alice)
    later = now + timedelta(days=1)

    again = await register(gql, household.alice, f"  {TOKEN}\n", at=later)

    assert again["id"] == first["id"]
    assert again["lastSeenAt"] == later.isoformat()
    assert len(await devices()) == 1


async def test_a_token_registered_by_another_patient_moves_to_them(household: Household, gql: GraphQLClient) -> None:
    alices = await register(gql, household.alice)

    bobs = await register(gql, household.bob)

    assert bobs["id"] == alices["id"]
    rows = await devices()
    assert [(r["patient_id"], r["disabled_at"]) for r in rows] == [(household.bob.patient.id, None)]
    # It is Bob's now: Alice can no longer switch it off.
    assert (await gql(UNREGISTER, {"token": TOKEN}, actor=household.alice.actor)).ok() == {"unregisterDevice": False}
    assert await devices() == rows


async def test_the_same_token_on_another_provider_is_another_device(household: Household, gql: GraphQLClient) -> None:
    fcm = await register(gql, household.alice, provider="FCM")
    expo = await register(gql, household.alice, provider="EXPO")

    assert fcm["id"] != expo["id"]
    assert len(await devices()) == 2


async def test_unregistering_disables_my_device_once(household: Household, gql: GraphQLClient, now: datetime) -> None:
    device = await register(gql, household.alice)

    first = (await gql(UNREGISTER, {"token": TOKEN}, actor=household.alice.actor)).ok()
    row = await Device.get(id=device["id"])
    second = (await gql(UNREGISTER, {"token": TOKEN}, actor=household.alice.actor)).ok()

    assert first == {"unregisterDevice": True}
    assert (row.disabled_at, row.disabled_reason) == (now, "unregistered")
    assert second == {"unregisterDevice": False}


async def test_registering_a_disabled_device_again_enables_it(household: Household, gql: GraphQLClient) -> None:
    await register(gql, household.alice)
    await gql(UNREGISTER, {"token": TOKEN}, actor=household.alice.actor)

    again = await register(gql, household.alice)

    assert again["enabled"] is True
    assert (await Device.get(id=again["id"])).disabled_at is None


@pytest.mark.parametrize("owner", ["bob", "nobody"])
async def test_unregistering_a_token_that_is_not_mine_answers_false_and_changes_nothing(
    owner: str, household: Household, gql: GraphQLClient
) -> None:
    if owner == "bob":
        await register(gql, household.bob)
    before = await devices()

    result = await gql(UNREGISTER, {"token": TOKEN}, actor=household.alice.actor)

    assert result.ok() == {"unregisterDevice": False}
    assert await devices() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"token": ""}, "token"),
        ({"token": "   "}, "token"),
        ({"token": "t" * 4097}, "token"),
        ({"platform": "p" * 33}, "platform"),
        ({"provider": "SMS"}, "input.provider"),
        ({"token": None}, "input.token"),
    ],
)
async def test_a_refused_registration_names_its_field_and_stores_nothing(
    change: dict[str, Any], field: str, household: Household, gql: GraphQLClient
) -> None:
    result = await gql(
        REGISTER,
        {"input": {"provider": "APNS", "token": "ok", "platform": "ios", **change}},
        actor=household.alice.actor,
    )

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field]), result.errors
    assert result.data is None
    assert await devices() == []


@dataclass
class Recorder:
    """A push provider that records what it was asked to send and answers with one outcome."""

    outcome: Outcome
    name: str = "recorder"
    sent: list[tuple[str, UUID]] = field(default_factory=list)

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        self.sent.append((token, message.prompt_id))
        return SendResult(self.outcome, error_class="http.503" if self.outcome is Outcome.RETRY else None)

    async def aclose(self) -> None:
        return None


async def _tick(provider: Recorder, at: datetime) -> None:
    config = build_job_config(tests.conftest.make_settings(), providers=dict.fromkeys(ProviderName, provider))
    await passes.tick(config, at)


async def test_a_moved_token_is_not_sent_the_previous_owners_pending_check_ins(
    factory: Factory, gql: GraphQLClient
) -> None:
    clinic = await factory.clinic()
    joined = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # her PHQ-9 and GAD-7 come due at 23:00 UTC
    alice = await factory.patient(clinic, name="Alice", joined=joined)
    bob = await factory.patient(clinic, name="Bob", joined=joined)
    due = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    await register(gql, alice, at=due - timedelta(hours=1))
    failing = Recorder(Outcome.RETRY)
    await _tick(failing, due)  # the provider is down: Alice's pushes wait for a retry
    assert len(failing.sent) == 2

    await register(gql, bob, at=due + timedelta(minutes=1))  # the phone now belongs to Bob
    working = Recorder(Outcome.ACCEPTED)
    await _tick(working, due + timedelta(minutes=10))

    assert working.sent == []
