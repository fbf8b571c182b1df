"""logDiaryEntry over GraphQL: what is stored, what comes back, idempotency on clientId, and every refusal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from api.domain.diary.models import DiaryEntry
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.diary_support import LOG, MY_DIARY, entry_input, stored


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


async def test_log_stores_and_returns_the_entry_as_sent(gql: GraphQLClient, alice: PatientUser, now: datetime) -> None:
    sent = entry_input(
        now - timedelta(hours=2),
        painNow=4,
        painWorst=7,
        painAverage=5,
        painLocations=["LOWER_BACK", "LEG_LEFT"],
        sleepHours=7.6,
        sleepQuality=6,
        mood=8,
        sideEffects=[{"code": "NAUSEA", "severity": 1}, {"code": "DIZZINESS", "severity": 2}],
        rescueMedication=True,
        note="Better after the walk.",
    )
    entry = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    expected = {k: v for k, v in sent.items() if k != "recordedAt"}
    assert {k: entry[k] for k in expected} == expected
    assert entry["recordedAt"] == "2026-11-26T10:00:00+00:00"
    assert entry["createdAt"] == entry["updatedAt"] == now.isoformat()
    assert entry["version"] == 1
    assert entry["deleted"] is False
    assert entry["promptId"] is None
    row = await DiaryEntry.get(id=entry["id"])
    assert row.patient_id == alice.patient.id
    assert row.clinic_id == alice.patient.clinic_id
    assert str(row.client_id) == sent["clientId"]


@pytest.mark.parametrize("hours", [7.6, 7.25, 8.1, 0.1, 0.0, 24.0, 9.99])
async def test_sleep_hours_come_back_exactly_as_sent(
    gql: GraphQLClient, alice: PatientUser, now: datetime, hours: float
) -> None:
    sent = entry_input(now - timedelta(hours=1), sleepHours=hours)
    logged = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    assert logged["sleepHours"] == hours
    # And read back from the database, not only from the object that was just written.
    page = (await gql(MY_DIARY, {}, actor=alice.actor)).ok()["myDiary"]
    assert [e["node"]["sleepHours"] for e in page["edges"]] == [hours]
    assert repr(page["edges"][0]["node"]["sleepHours"]) == repr(hours)


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("2026-11-26T15:30:00+05:30", "2026-11-26T15:30:00+05:30"),
        ("2026-11-26T06:45:00-03:30", "2026-11-26T06:45:00-03:30"),
        ("2026-11-26T11:00:00Z", "2026-11-26T11:00:00+00:00"),
        ("2026-11-26T11:00:00.250000+01:00", "2026-11-26T11:00:00.250000+01:00"),
    ],
)
async def test_recorded_at_comes_back_in_the_offset_it_was_sent_with(
    gql: GraphQLClient, alice: PatientUser, sent: str, returned: str
) -> None:
    data = {"clientId": str(uuid4()), "recordedAt": sent, "mood": 6}
    logged = (await gql(LOG, {"input": data}, actor=alice.actor)).ok()["logDiaryEntry"]
    assert logged["recordedAt"] == returned
    page = (await gql(MY_DIARY, {}, actor=alice.actor)).ok()["myDiary"]
    assert page["edges"][0]["node"]["recordedAt"] == returned


async def test_a_resend_with_the_same_content_returns_the_stored_entry_and_writes_nothing(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    sent = entry_input(now - timedelta(hours=3), sleepHours=7.6, sideEffects=[{"code": "NAUSEA", "severity": 1}])
    first = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    before = await stored()
    # The phone retries an hour later, after losing the first answer.
    again = (await gql(LOG, {"input": sent}, actor=alice.actor, now=now + timedelta(hours=1))).ok()["logDiaryEntry"]
    assert again == first
    assert again["updatedAt"] == now.isoformat()
    assert again["version"] == 1
    assert await stored() == before
    assert len(before.entries) == 1


async def test_a_resend_after_an_edit_returns_the_edited_entry_unchanged(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    sent = entry_input(now - timedelta(hours=3), note="first draft")
    logged = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    update = 'mutation($id: ID!) { updateDiaryEntry(id: $id, input: {note: "fixed"}) { version } }'
    (await gql(update, {"id": logged["id"]}, actor=alice.actor)).ok()
    before = await stored()
    again = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    assert again["id"] == logged["id"]
    assert again["note"] == "fixed"
    assert again["version"] == 2
    assert await stored() == before


async def test_the_same_client_id_with_other_content_is_a_conflict(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    sent = entry_input(now - timedelta(hours=3), painNow=5)
    (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()
    before = await stored()
    for changed in ({"painNow": 6}, {"recordedAt": (now - timedelta(hours=4)).isoformat()}, {"note": "extra"}):
        result = await gql(LOG, {"input": {**sent, **changed}}, actor=alice.actor)
        assert result.codes == ["CONFLICT"]
        assert result.fields == ["clientId"]
        assert result.data is None
    assert await stored() == before


async def test_the_same_instant_sent_in_another_offset_is_other_content(gql: GraphQLClient, alice: PatientUser) -> None:
    sent = {"clientId": str(uuid4()), "recordedAt": "2026-11-26T10:00:00+00:00", "painNow": 5}
    (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()
    before = await stored()
    result = await gql(LOG, {"input": {**sent, "recordedAt": "2026-11-26T11:00:00+01:00"}}, actor=alice.actor)
    assert result.codes == ["CONFLICT"]
    assert await stored() == before


def _score_cases() -> list[tuple[dict[str, Any], str]]:
    names = ("painNow", "painWorst", "painAverage", "sleepQuality", "mood")
    return [({name: value}, name) for name in names for value in (-1, 11)]


REFUSED: list[tuple[dict[str, Any], str]] = [
    *_score_cases(),
    ({"sleepHours": -0.5}, "sleepHours"),
    ({"sleepHours": 24.01}, "sleepHours"),
    ({"sleepHours": 7.255}, "sleepHours"),
    (
        {"sideEffects": [{"code": "NAUSEA", "severity": 1}, {"code": "HEADACHE", "severity": 4}]},
        "sideEffects[1].severity",
    ),
    (
        {"sideEffects": [{"code": "NAUSEA", "severity": 1}, {"code": "HEADACHE", "severity": -1}]},
        "sideEffects[1].severity",
    ),
    ({"sideEffects": [{"code": "NAUSEA", "severity": 1}, {"code": "NAUSEA", "severity": 2}]}, "sideEffects"),
    ({"painLocations": ["HEAD", "NECK", "HEAD"]}, "painLocations"),
    ({"note": "x" * 2001}, "note"),
    ({"note": "nul \x00 byte"}, "note"),
    ({"note": "lone \ud83d surrogate"}, "note"),
    ({"recordedAt": "2026-11-26T12:05:01+00:00"}, "recordedAt"),
    ({"recordedAt": "2026-11-26T13:05:01+01:00"}, "recordedAt"),
    ({"recordedAt": "2026-11-26T10:00:00"}, "recordedAt"),  # naive: no offset, no meaning
    # Registered 60 days ago with 14 days of backfill allowed: 74 days and a second is too early.
    ({"recordedAt": "2026-09-13T11:59:59+00:00"}, "recordedAt"),
    ({"painNow": None}, "input"),
    ({"painNow": None, "painLocations": [], "sideEffects": [], "note": "   "}, "input"),
]


@pytest.mark.parametrize(("fields", "field"), REFUSED)
async def test_invalid_input_is_refused_naming_the_field_and_nothing_is_stored(
    gql: GraphQLClient, alice: PatientUser, factory: Factory, now: datetime, *, fields: dict[str, Any], field: str
) -> None:
    await factory.entry(alice)
    before = await stored()
    result = await gql(LOG, {"input": entry_input(now - timedelta(hours=1), **fields)}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == [field]
    assert result.data is None
    assert await stored() == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"painLocations": ["TAIL"]}, "input.painLocations[0]"),
        ({"sideEffects": [{"code": "HICCUPS", "severity": 1}]}, "input.sideEffects[0].code"),
        ({"sideEffects": [{"code": "NAUSEA"}]}, "input.sideEffects[0].severity"),
        ({"clientId": "not-a-uuid"}, "input.clientId"),
        ({"clientId": None}, "input.clientId"),
        ({"recordedAt": "yesterday evening"}, "input.recordedAt"),
        ({"painNow": 5.5}, "input.painNow"),
        ({"painNow": "5"}, "input.painNow"),
        ({"sleepHours": "7.5"}, "input.sleepHours"),
        ({"rescueMedication": "yes"}, "input.rescueMedication"),
    ],
)
async def test_values_graphql_cannot_coerce_are_bad_user_input(
    gql: GraphQLClient, alice: PatientUser, factory: Factory, now: datetime, *, fields: dict[str, Any], field: str
) -> None:
    await factory.entry(alice)
    before = await stored()
    result = await gql(LOG, {"input": entry_input(now - timedelta(hours=1), **fields)}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == [field]
    assert await stored() == before


async def test_a_missing_recorded_at_is_bad_user_input(gql: GraphQLClient, alice: PatientUser) -> None:
    result = await gql(LOG, {"input": {"clientId": str(uuid4()), "painNow": 3}}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == ["input.recordedAt"]
    assert await DiaryEntry.all().count() == 0


async def test_an_unknown_prompt_id_is_not_found_and_nothing_is_stored(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    for prompt_id in (str(uuid4()), "garbage"):
        result = await gql(LOG, {"input": entry_input(now, promptId=prompt_id)}, actor=alice.actor)
        assert result.codes == ["NOT_FOUND"]
        assert result.fields == ["promptId"]
    assert await DiaryEntry.all().count() == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"note": "x" * 2000},
        {"recordedAt": "2026-11-26T12:05:00+00:00"},  # exactly the allowed clock skew ahead
        {"recordedAt": "2026-09-13T12:00:00+00:00"},  # exactly 60 + 14 days before now
        {"painNow": 0, "painWorst": 10, "painAverage": 0, "sleepQuality": 10, "mood": 0},
        {"painNow": None, "rescueMedication": False},
        {"painNow": None, "sideEffects": [{"code": "BLOOD_IN_URINE", "severity": 3}]},
    ],
)
async def test_values_at_the_limits_are_accepted(
    gql: GraphQLClient, alice: PatientUser, now: datetime, fields: dict[str, Any]
) -> None:
    sent = entry_input(now - timedelta(hours=1), **fields)
    entry = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    for name, value in fields.items():
        if name != "recordedAt":
            assert entry[name] == value
    assert await DiaryEntry.all().count() == 1


async def test_two_patients_may_use_the_same_client_id(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    bob = await factory.patient(await factory.clinic())
    sent = entry_input(now - timedelta(hours=1), painNow=2)
    mine = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    # Bob's phone happens to reuse the id with other content: that must neither conflict nor show Alice's entry.
    theirs = (await gql(LOG, {"input": {**sent, "painNow": 9}}, actor=bob.actor)).ok()["logDiaryEntry"]
    assert theirs["id"] != mine["id"]
    assert theirs["painNow"] == 9
    assert await DiaryEntry.filter(patient_id=bob.patient.id).count() == 1
    assert await DiaryEntry.filter(patient_id=alice.patient.id).count() == 1


@pytest.mark.parametrize("recorded_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_recorded_at_outside_the_representable_range_is_refused(
    gql: GraphQLClient, alice: PatientUser, now: datetime, recorded_at: str
) -> None:
    result = await gql(LOG, {"input": entry_input(now, recordedAt=recorded_at)}, actor=alice.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["recordedAt"])
    assert await DiaryEntry.all().count() == 0
