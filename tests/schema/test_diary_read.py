"""myDiary and patient(id) { diary }: keyset pages newest first on (recordedAt, id), date bounds, bad arguments."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio

from api.domain.actor import Actor
from api.domain.diary.models import DiaryEntry
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient
from tests.schema.diary_support import MY_DIARY, PATIENT_DIARY


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


@pytest_asyncio.fixture
async def clinician(factory: Factory, alice: PatientUser) -> Staff:
    return await factory.staff(await alice.patient.clinic)


async def diary(
    gql: GraphQLClient, actor: Actor, patient: PatientUser | None = None, **variables: Any
) -> dict[str, Any]:
    """One page, from myDiary (no patient) or from patient(id) { diary }."""
    if patient is None:
        page: dict[str, Any] = (await gql(MY_DIARY, variables, actor=actor)).ok()["myDiary"]
    else:
        data = (await gql(PATIENT_DIARY, {"id": str(patient.patient.id), **variables}, actor=actor)).ok()
        page = data["patient"]["diary"]
    return page


async def forty_five_entries(factory: Factory, who: PatientUser, now: datetime) -> list[DiaryEntry]:
    """45 entries on 30 distinct instants: groups of 2, 3 and 10 entries share a recordedAt, across page breaks."""
    base = now - timedelta(days=10)
    offsets = [*range(30), 3, 7, 7, 19, 19, 19, 19, 19, 19, 19, 19, 19, 0, 29, 29]
    assert len(offsets) == 45
    return [await factory.entry(who, recorded_at=base + timedelta(hours=h)) for h in offsets]


def between(start: datetime | str | None, end: datetime | str | None) -> dict[str, Any]:
    """`from` and `to` arguments (a Python keyword, hence this helper)."""
    bounds = {"from": start, "to": end}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in bounds.items() if v is not None}


def newest_first(entries: list[DiaryEntry]) -> list[str]:
    return [str(e.id) for e in sorted(entries, key=lambda e: (e.recorded_at, e.id), reverse=True)]


async def walk(gql: GraphQLClient, actor: Actor, patient: PatientUser | None, **variables: Any) -> list[list[str]]:
    """Every page, following endCursor until hasNextPage is false."""
    pages: list[list[str]] = []
    after = None
    while True:
        page = await diary(gql, actor, patient, after=after, **variables)
        pages.append([e["node"]["id"] for e in page["edges"]])
        assert [e["cursor"] for e in page["edges"]][-1:] == ([page["pageInfo"]["endCursor"]] if pages[-1] else [])
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]
        assert len(pages) <= 45, "paging does not end"


@pytest.mark.parametrize("as_clinician", [False, True], ids=["myDiary", "patient.diary"])
async def test_pages_of_twenty_through_forty_five_entries_skip_and_repeat_nothing(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, clinician: Staff, now: datetime, *, as_clinician: bool
) -> None:
    entries = await forty_five_entries(factory, alice, now)
    actor, patient = (clinician.actor, alice) if as_clinician else (alice.actor, None)
    pages = await walk(gql, actor, patient, first=20)
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [i for p in pages for i in p] == newest_first(entries)


async def test_pages_of_every_size_agree_with_one_big_page(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entries = await forty_five_entries(factory, alice, now)
    expected = newest_first(entries)
    assert [e["node"]["id"] for e in (await diary(gql, alice.actor, first=100))["edges"]] == expected
    for size in (1, 2, 3, 7, 44, 45):
        pages = await walk(gql, alice.actor, None, first=size)
        assert [i for p in pages for i in p] == expected, size
        assert all(len(p) == size for p in pages[:-1])


async def test_the_default_page_is_twenty(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    await forty_five_entries(factory, alice, now)
    page = await diary(gql, alice.actor)
    assert len(page["edges"]) == 20
    assert page["pageInfo"]["hasNextPage"] is True


async def test_an_empty_diary_is_an_empty_page(gql: GraphQLClient, alice: PatientUser) -> None:
    page = await diary(gql, alice.actor, first=5)
    assert page == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_a_page_that_ends_exactly_at_the_last_entry_has_no_next_page(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    for h in range(4):
        await factory.entry(alice, recorded_at=now - timedelta(hours=h + 1))
    page = await diary(gql, alice.actor, first=4)
    assert len(page["edges"]) == 4
    assert page["pageInfo"]["hasNextPage"] is False


async def test_entries_written_while_paging_do_not_shift_the_pages(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    old = [await factory.entry(alice, recorded_at=now - timedelta(hours=h + 1)) for h in range(6)]
    first = await diary(gql, alice.actor, first=3)
    await factory.entry(alice, recorded_at=now - timedelta(minutes=1))
    second = await diary(gql, alice.actor, first=3, after=first["pageInfo"]["endCursor"])
    ids = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert ids == [str(e.id) for e in old]


async def test_from_is_inclusive_and_to_exclusive(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    day = datetime.fromisoformat("2026-11-20T00:00:00+00:00")
    at = {h: await factory.entry(alice, recorded_at=day + timedelta(hours=h)) for h in (-1, 0, 5, 23, 24, 25)}
    page = await diary(gql, alice.actor, **between(day, day + timedelta(days=1)))
    assert [e["node"]["id"] for e in page["edges"]] == [str(at[h].id) for h in (23, 5, 0)]
    only_from = await diary(gql, alice.actor, **between(day + timedelta(hours=24), None))
    assert [e["node"]["id"] for e in only_from["edges"]] == [str(at[h].id) for h in (25, 24)]
    only_to = await diary(gql, alice.actor, to=day.isoformat())
    assert [e["node"]["id"] for e in only_to["edges"]] == [str(at[-1].id)]


async def test_bounds_in_another_offset_mean_the_same_instants(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    # The patient's local day 2026-11-20 in New York (UTC-5) runs from 05:00 UTC to 05:00 UTC the next day.
    utc_day = datetime.fromisoformat("2026-11-20T05:00:00+00:00")
    at = {h: await factory.entry(alice, recorded_at=utc_day + timedelta(hours=h)) for h in (-1, 0, 12, 23, 24)}
    page = await diary(gql, alice.actor, **between("2026-11-20T00:00:00-05:00", "2026-11-21T00:00:00-05:00"))
    assert [e["node"]["id"] for e in page["edges"]] == [str(at[h].id) for h in (23, 12, 0)]
    east = await diary(gql, alice.actor, **between("2026-11-20T14:00:00+09:00", "2026-11-21T04:00:00+09:00"))
    assert [e["node"]["id"] for e in east["edges"]] == [str(at[h].id) for h in (12, 0)]


async def test_paging_within_bounds_stays_within_them(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entries = await forty_five_entries(factory, alice, now)
    start, end = now - timedelta(days=10, hours=-3), now - timedelta(days=10, hours=-20)
    inside = [e for e in entries if start <= e.recorded_at < end]
    pages = await walk(gql, alice.actor, None, first=4, **between(start, end))
    assert [i for p in pages for i in p] == newest_first(inside)
    assert len(inside) > 8


@pytest.mark.parametrize("bound", ["from", "to"])
async def test_a_bound_without_offset_is_refused(gql: GraphQLClient, alice: PatientUser, bound: str) -> None:
    result = await gql(MY_DIARY, {bound: "2026-11-20T00:00:00"}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == [bound]


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
async def test_first_outside_one_to_a_hundred_is_refused_not_clamped(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, clinician: Staff, first: int
) -> None:
    await factory.entry(alice)
    mine = await gql(MY_DIARY, {"first": first}, actor=alice.actor)
    assert (mine.codes, mine.fields, mine.data) == (["BAD_USER_INPUT"], ["first"], None)
    theirs = await gql(PATIENT_DIARY, {"id": str(alice.patient.id), "first": first}, actor=clinician.actor)
    assert (theirs.codes, theirs.fields) == (["BAD_USER_INPUT"], ["first"])


async def test_first_may_be_one_hundred(gql: GraphQLClient, factory: Factory, alice: PatientUser) -> None:
    await factory.entry(alice)
    assert len((await diary(gql, alice.actor, first=100))["edges"]) == 1


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


# Fixed, not random: test ids must be the same in every process (pytest-xdist compares them).
UNKNOWN_ID = "3f8e0e1c-5b7a-4c55-9d1e-6a2b8c4d0e11"
GARBAGE_CURSORS = [
    "garbage",
    "",
    "!!!!",
    b64(b"not json"),
    b64(b"\xff\xfe"),
    b64(b"5"),
    b64(b"{}"),
    b64(b'["2026-11-26T10:00:00+00:00"]'),
    b64(b'["2026-11-26T10:00:00+00:00", "not-a-uuid"]'),
    b64(json.dumps(["yesterday", UNKNOWN_ID]).encode()),
    b64(json.dumps([12345, UNKNOWN_ID]).encode()),
    b64(json.dumps([None, UNKNOWN_ID]).encode()),
    b64(json.dumps(["2026-11-26T10:00:00+00:00", 7]).encode()),
    # A well-formed cursor whose instant has no offset: not one this list ever hands out.
    b64(json.dumps(["2026-11-26T10:00:00", UNKNOWN_ID]).encode()),
    b64(json.dumps(["0001-01-01T00:00:00+01:00", UNKNOWN_ID]).encode()),
]


@pytest.mark.parametrize("after", GARBAGE_CURSORS)
async def test_a_cursor_this_list_did_not_hand_out_is_refused(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, clinician: Staff, after: str
) -> None:
    await factory.entry(alice)
    mine = await gql(MY_DIARY, {"after": after}, actor=alice.actor)
    assert (mine.codes, mine.fields) == (["BAD_USER_INPUT"], ["after"])
    theirs = await gql(PATIENT_DIARY, {"id": str(alice.patient.id), "after": after}, actor=clinician.actor)
    assert (theirs.codes, theirs.fields) == (["BAD_USER_INPUT"], ["after"])


async def test_a_cursor_in_another_offset_pages_from_the_same_instant(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entries = [await factory.entry(alice, recorded_at=now - timedelta(hours=h + 1)) for h in range(4)]
    pivot = entries[1]
    elsewhere = pivot.recorded_at.astimezone(datetime.fromisoformat("2026-01-01T00:00:00-07:00").tzinfo)
    cursor = b64(json.dumps([elsewhere.isoformat(), str(pivot.id)]).encode())
    page = await diary(gql, alice.actor, after=cursor)
    assert [e["node"]["id"] for e in page["edges"]] == [str(e.id) for e in entries[2:]]


async def test_the_clinician_sees_the_same_entries_as_the_patient(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, clinician: Staff, now: datetime
) -> None:
    bob = await factory.patient(await alice.patient.clinic)
    for who in (alice, bob, alice):
        await factory.entry(who, recorded_at=now - timedelta(hours=1), sleep_hours=7.6)
    mine = await diary(gql, alice.actor)
    theirs = await diary(gql, clinician.actor, alice)
    assert mine == theirs
    assert len(mine["edges"]) == 2
    assert {e["node"]["sleepHours"] for e in mine["edges"]} == {7.6}
    owners = {e.patient_id for e in await DiaryEntry.filter(id__in=[UUID(x["node"]["id"]) for x in mine["edges"]])}
    assert owners == {alice.patient.id}


async def test_instants_a_microsecond_apart_keep_their_order(
    gql: GraphQLClient, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    # SQLite keeps instants as text: "…11:00:00+00:00" against "…11:00:00.000001+00:00" must still sort right.
    base = now - timedelta(hours=1)
    steps = [timedelta(0), timedelta(microseconds=1), timedelta(microseconds=500_000), timedelta(microseconds=-1)]
    entries = [await factory.entry(alice, recorded_at=base + step) for step in steps]
    expected = newest_first(entries)
    assert expected == [str(entries[i].id) for i in (2, 1, 0, 3)]
    pages = await walk(gql, alice.actor, None, first=1)
    assert [i for p in pages for i in p] == expected
    window = await diary(gql, alice.actor, **between(base, base + timedelta(microseconds=2)))
    assert [e["node"]["id"] for e in window["edges"]] == [str(entries[i].id) for i in (1, 0)]


@pytest.mark.parametrize("bound", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_bound_outside_the_representable_range_is_refused(
    gql: GraphQLClient, alice: PatientUser, bound: str
) -> None:
    for name in ("from", "to"):
        result = await gql(MY_DIARY, {name: bound}, actor=alice.actor)
        assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [name])
