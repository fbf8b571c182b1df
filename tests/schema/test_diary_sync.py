"""syncDiaryEntries: an offline queue, at most 200 per call, one result per item, safe to resend."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio

from api.domain.diary.models import DiaryEntry
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.diary_support import LOG, SYNC, entry_input, stored


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


def queue(now: datetime, count: int) -> list[dict[str, Any]]:
    """What a phone collects offline: one entry an hour, oldest first."""
    return [entry_input(now - timedelta(hours=count - i), painNow=i % 11) for i in range(count)]


async def test_each_item_gets_its_own_result_and_one_bad_item_blocks_nothing(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    logged = entry_input(now - timedelta(hours=10), painNow=4)
    (await gql(LOG, {"input": logged}, actor=alice.actor)).ok()
    batch = [
        entry_input(now - timedelta(hours=9), painNow=3),
        entry_input(now - timedelta(hours=8), painNow=11),
        {**logged, "painNow": 5},
        logged,
        entry_input(now - timedelta(hours=7), sleepHours=7.6),
        entry_input(
            now - timedelta(hours=6), sideEffects=[{"code": "NAUSEA", "severity": 1}, {"code": "RASH", "severity": 9}]
        ),
        entry_input(now - timedelta(hours=5), painNow=None),
        entry_input(now + timedelta(hours=1)),
        entry_input(now - timedelta(hours=4), mood=7),
    ]
    results = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]

    assert [r["clientId"] for r in results] == [item["clientId"] for item in batch]
    assert [r["status"] for r in results] == [
        "CREATED", "INVALID", "CONFLICT", "UNCHANGED", "CREATED", "INVALID", "INVALID", "INVALID", "CREATED"
    ]  # fmt: skip
    assert [r["error"] and (r["error"]["code"], r["error"]["field"]) for r in results] == [
        None,
        ("BAD_USER_INPUT", "entries[1].painNow"),
        ("CONFLICT", "entries[2].clientId"),
        None,
        None,
        ("BAD_USER_INPUT", "entries[5].sideEffects[1].severity"),
        ("BAD_USER_INPUT", "entries[6]"),
        ("BAD_USER_INPUT", "entries[7].recordedAt"),
        None,
    ]
    assert all(r["error"]["message"] for r in results if r["error"])
    assert [r["entry"] is not None for r in results] == [r["status"] in ("CREATED", "UNCHANGED") for r in results]
    assert results[4]["entry"]["sleepHours"] == 7.6
    assert results[3]["entry"]["painNow"] == 4
    stored_ids = {str(e.id) for e in await DiaryEntry.filter(patient_id=alice.patient.id)}
    assert stored_ids == {results[i]["entry"]["id"] for i in (0, 3, 4, 8)}


async def test_resending_the_whole_batch_stores_each_entry_once(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    batch = queue(now, 12)
    first = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]
    assert {r["status"] for r in first} == {"CREATED"}
    before = await stored()
    assert len(before.entries) == 12

    again = (await gql(SYNC, {"entries": batch}, actor=alice.actor, now=now + timedelta(minutes=30))).ok()
    results = again["syncDiaryEntries"]
    assert {r["status"] for r in results} == {"UNCHANGED"}
    assert [r["entry"] for r in results] == [r["entry"] for r in first]
    assert await stored() == before


async def test_a_partly_delivered_batch_completes_on_resend(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    batch = queue(now, 6)
    (await gql(SYNC, {"entries": batch[:4]}, actor=alice.actor)).ok()
    results = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]
    assert [r["status"] for r in results] == ["UNCHANGED"] * 4 + ["CREATED"] * 2
    assert await DiaryEntry.all().count() == 6


async def test_the_same_client_id_twice_in_one_batch_is_stored_once(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    item = entry_input(now - timedelta(hours=2), painNow=6)
    batch = [item, item, {**item, "painNow": 7}]
    results = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]
    assert [r["status"] for r in results] == ["CREATED", "UNCHANGED", "CONFLICT"]
    assert results[0]["entry"]["id"] == results[1]["entry"]["id"]
    assert results[2]["error"]["field"] == "entries[2].clientId"
    assert await DiaryEntry.all().count() == 1


async def test_two_hundred_entries_are_accepted(gql: GraphQLClient, alice: PatientUser, now: datetime) -> None:
    results = (await gql(SYNC, {"entries": queue(now, 200)}, actor=alice.actor)).ok()["syncDiaryEntries"]
    assert len(results) == 200
    assert {r["status"] for r in results} == {"CREATED"}
    assert await DiaryEntry.all().count() == 200


async def test_two_hundred_and_one_entries_are_refused_whole(
    gql: GraphQLClient, alice: PatientUser, factory: Factory, now: datetime
) -> None:
    await factory.entry(alice)
    before = await stored()
    result = await gql(SYNC, {"entries": queue(now, 201)}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == ["entries"]
    assert result.data is None
    assert await stored() == before


async def test_an_empty_batch_answers_an_empty_list(gql: GraphQLClient, alice: PatientUser) -> None:
    assert (await gql(SYNC, {"entries": []}, actor=alice.actor)).ok() == {"syncDiaryEntries": []}


async def test_an_unknown_prompt_id_is_invalid_for_that_item_only(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    batch = [entry_input(now - timedelta(hours=1), promptId="00000000-0000-4000-8000-000000000000"), *queue(now, 1)]
    results = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]
    assert [r["status"] for r in results] == ["INVALID", "CREATED"]
    assert results[0]["error"]["code"] == "NOT_FOUND"
    assert results[0]["error"]["field"] == "entries[0].promptId"
    assert await DiaryEntry.all().count() == 1


async def test_an_item_graphql_cannot_coerce_refuses_the_call_and_stores_nothing(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    batch = [*queue(now, 2), entry_input(now, clientId="not-a-uuid")]
    result = await gql(SYNC, {"entries": batch}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == ["entries[2].clientId"]
    assert await DiaryEntry.all().count() == 0
