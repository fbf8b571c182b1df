"""updateMyPreferences: the patient's own zone, diary time, quiet hours and notifications. Valid changes move the
next daily diary prompt; a refused change names its field and changes nothing.

`now` is 26 November, 12:00 UTC (07:00 in New York, 13:00 in Berlin).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptStatus
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient

PATIENT_FIELDS = "id timezone diaryTime quietHoursStart quietHoursEnd notificationsEnabled"
UPDATE = f"""
mutation Preferences($input: PreferencesInput!) {{ updateMyPreferences(input: $input) {{ {PATIENT_FIELDS} }} }}
"""
PROMPTS = "query Prompts($id: ID!) { patient(id: $id) { prompts { id ruleId dueAt deliverAt status } } }"


@pytest.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    clinic = await factory.clinic()
    return await factory.patient(clinic, name="Alice", timezone="America/New_York", joined=now - timedelta(days=2))


async def next_diary(gql: GraphQLClient, alice: PatientUser, now: datetime) -> dict[str, Any]:
    """The first daily diary prompt still to come, as the patient reads it."""
    result = (await gql(PROMPTS, {"id": str(alice.patient.id)}, actor=alice.actor)).ok()
    upcoming = [
        p
        for p in result["patient"]["prompts"]
        if p["ruleId"] == "daily_diary" and p["status"] == "SCHEDULED" and datetime.fromisoformat(p["dueAt"]) > now
    ]
    first = min(upcoming, key=lambda p: p["dueAt"])
    assert isinstance(first, dict)
    return first


async def stored(alice: PatientUser) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    patient = await Patient.filter(id=alice.patient.id).values()
    prompts = await Prompt.filter(patient_id=alice.patient.id).order_by("id").values()
    return list(patient), list(prompts)


async def test_the_defaults_before_any_change(alice: PatientUser, gql: GraphQLClient, now: datetime) -> None:
    result = (await gql(UPDATE, {"input": {}}, actor=alice.actor)).ok()["updateMyPreferences"]

    assert result == {
        "id": str(alice.patient.id),
        "timezone": "America/New_York",
        "diaryTime": "20:00",
        "quietHoursStart": "21:30",
        "quietHoursEnd": "08:00",
        "notificationsEnabled": True,
    }
    assert (await next_diary(gql, alice, now))["dueAt"] == "2026-11-27T01:00:00+00:00"


async def test_a_new_diary_time_moves_the_next_diary_prompt(
    alice: PatientUser, gql: GraphQLClient, now: datetime
) -> None:
    before = await next_diary(gql, alice, now)

    result = (await gql(UPDATE, {"input": {"diaryTime": "18:30"}}, actor=alice.actor)).ok()["updateMyPreferences"]

    assert result["diaryTime"] == "18:30"
    after = await next_diary(gql, alice, now)
    assert after["id"] == before["id"]
    assert (after["dueAt"], after["deliverAt"]) == ("2026-11-26T23:30:00+00:00", "2026-11-26T23:30:00+00:00")
    assert (await Patient.get(id=alice.patient.id)).diary_time == "18:30"


async def test_a_new_time_zone_moves_the_next_diary_prompt_to_20_00_there(
    alice: PatientUser, gql: GraphQLClient, now: datetime
) -> None:
    before = await next_diary(gql, alice, now)

    result = (await gql(UPDATE, {"input": {"timezone": "Europe/Berlin"}}, actor=alice.actor)).ok()

    assert result["updateMyPreferences"]["timezone"] == "Europe/Berlin"
    after = await next_diary(gql, alice, now)
    assert after["id"] == before["id"]  # the same local day's diary, now at 20:00 in Berlin
    assert after["dueAt"] == "2026-11-26T19:00:00+00:00"


async def test_quiet_hours_delay_delivery_and_a_change_to_them_re_plans_it(
    alice: PatientUser, gql: GraphQLClient, now: datetime
) -> None:
    early = (await gql(UPDATE, {"input": {"diaryTime": "07:30"}}, actor=alice.actor)).ok()
    first = await next_diary(gql, alice, now)
    shorter = {"quietHoursStart": "22:00", "quietHoursEnd": "07:00"}
    result = (await gql(UPDATE, {"input": shorter}, actor=alice.actor)).ok()["updateMyPreferences"]
    second = await next_diary(gql, alice, now)

    assert early["updateMyPreferences"]["diaryTime"] == "07:30"
    # 07:30 in New York is inside the default quiet hours (until 08:00): delivered when they end.
    assert (first["dueAt"], first["deliverAt"]) == ("2026-11-26T12:30:00+00:00", "2026-11-26T13:00:00+00:00")
    assert (result["quietHoursStart"], result["quietHoursEnd"]) == ("22:00", "07:00")
    assert second["id"] == first["id"]
    assert (second["dueAt"], second["deliverAt"]) == ("2026-11-26T12:30:00+00:00", "2026-11-26T12:30:00+00:00")


async def test_notifications_can_be_turned_off_and_on(alice: PatientUser, gql: GraphQLClient) -> None:
    off = (await gql(UPDATE, {"input": {"notificationsEnabled": False}}, actor=alice.actor)).ok()
    assert off["updateMyPreferences"]["notificationsEnabled"] is False
    assert (await Patient.get(id=alice.patient.id)).notifications_enabled is False

    on = (await gql(UPDATE, {"input": {"notificationsEnabled": True}}, actor=alice.actor)).ok()
    assert on["updateMyPreferences"]["notificationsEnabled"] is True


async def test_a_change_leaves_sent_prompts_alone(alice: PatientUser, gql: GraphQLClient, now: datetime) -> None:
    sent = await next_diary(gql, alice, now)
    await Prompt.filter(id=sent["id"]).update(status=PromptStatus.SENT, sent_at=now)
    before = await Prompt.filter(id=sent["id"]).values()

    (await gql(UPDATE, {"input": {"diaryTime": "18:30", "timezone": "Europe/Berlin"}}, actor=alice.actor)).ok()

    assert await Prompt.filter(id=sent["id"]).values() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "europe/berlin"}, "timezone"),
        ({"diaryTime": "25:00"}, "diaryTime"),
        ({"diaryTime": "8pm"}, "diaryTime"),
        ({"diaryTime": "20:60"}, "diaryTime"),
        ({"diaryTime": "8:00"}, "diaryTime"),
        ({"diaryTime": "20:00:00"}, "diaryTime"),
        ({"diaryTime": ""}, "diaryTime"),
        ({"diaryTime": 2000}, "input.diaryTime"),
        ({"quietHoursStart": "24:00"}, "quietHoursStart"),
        ({"quietHoursEnd": "7h00"}, "quietHoursEnd"),
        ({"notificationsEnabled": "no"}, "input.notificationsEnabled"),
        # A valid change sent with an invalid one is not kept either.
        ({"timezone": "Europe/Berlin", "diaryTime": "8pm"}, "diaryTime"),
        ({"diaryTime": "18:30", "quietHoursEnd": "25:00"}, "quietHoursEnd"),
    ],
)
async def test_a_refused_change_names_its_field_and_changes_nothing(
    change: dict[str, Any], field: str, alice: PatientUser, gql: GraphQLClient
) -> None:
    before = await stored(alice)

    result = await gql(UPDATE, {"input": change}, actor=alice.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field]), result.errors
    assert result.data is None
    assert await stored(alice) == before


@pytest.mark.parametrize("value", ["+8:00", "\u0660\u0668:\u0663\u0660"], ids=["sign", "arabic-indic digits"])
async def test_a_time_is_exactly_two_ascii_digits_colon_two_ascii_digits(
    value: str, alice: PatientUser, gql: GraphQLClient
) -> None:
    """Python's int() accepts signs, spaces and non-ASCII digits; "HH:MM" does not."""
    before = await stored(alice)

    result = await gql(UPDATE, {"input": {"diaryTime": value}}, actor=alice.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["diaryTime"]), result.data
    assert await stored(alice) == before
