"""updateDiaryEntry and deleteDiaryEntry: revisions kept, optimistic versions, soft deletion."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio

from api.domain.diary.models import DiaryEntry, DiaryEntryRevision
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.diary_support import DELETE, LOG, MY_DIARY, UPDATE, entry_input, stored

LATER = timedelta(hours=2)


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


@pytest_asyncio.fixture
async def logged(gql: GraphQLClient, alice: PatientUser, now: datetime) -> dict[str, Any]:
    """Alice's entry from three hours ago, with every field filled in."""
    sent = entry_input(
        now - timedelta(hours=3),
        painNow=6,
        painWorst=8,
        painAverage=5,
        painLocations=["HEAD", "NECK"],
        sleepHours=6.5,
        sleepQuality=4,
        mood=5,
        sideEffects=[{"code": "NAUSEA", "severity": 2}],
        rescueMedication=True,
        note="Rough night.",
    )
    entry: dict[str, Any] = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    return entry


async def update(
    gql: GraphQLClient, who: PatientUser, entry_id: str, patch: dict[str, Any], now: datetime
) -> dict[str, Any]:
    result = await gql(UPDATE, {"id": entry_id, "input": patch}, actor=who.actor, now=now)
    entry: dict[str, Any] = result.ok()["updateDiaryEntry"]
    return entry


def unchanged_fields(entry: dict[str, Any], *changed: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in {*changed, "updatedAt", "version"}}


async def test_an_edit_changes_only_the_given_fields_and_keeps_the_previous_version(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    edited = await update(gql, alice, logged["id"], {"painNow": 3, "sleepHours": 7.25}, now + LATER)
    assert edited["painNow"] == 3
    assert edited["sleepHours"] == 7.25
    assert unchanged_fields(edited, "painNow", "sleepHours") == unchanged_fields(logged, "painNow", "sleepHours")
    assert edited["version"] == 2
    assert edited["updatedAt"] == (now + LATER).isoformat()
    assert edited["createdAt"] == now.isoformat()

    revisions = await DiaryEntryRevision.filter(entry_id=UUID(logged["id"]))
    assert len(revisions) == 1
    revision = revisions[0]
    assert revision.version == 1
    assert revision.reason == "updated"
    assert revision.changed_by_id == alice.account.id
    assert revision.changed_at == now + LATER
    assert revision.snapshot["pain_now"] == 6
    assert revision.snapshot["sleep_hours"] == "6.50"
    assert revision.snapshot["note"] == "Rough night."
    assert revision.snapshot["side_effects"] == [{"code": "NAUSEA", "severity": 2}]
    assert revision.snapshot["recorded_at"] == (now - timedelta(hours=3)).isoformat()
    assert await DiaryEntry.all().count() == 1


async def test_each_edit_keeps_one_more_revision(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    for version, pain in enumerate((5, 4, 3), start=2):
        edited = await update(gql, alice, logged["id"], {"painNow": pain}, now + timedelta(minutes=version))
        assert edited["version"] == version
    revisions = await DiaryEntryRevision.filter(entry_id=UUID(logged["id"])).order_by("version")
    assert [(r.version, r.snapshot["pain_now"]) for r in revisions] == [(1, 6), (2, 5), (3, 4)]


async def test_an_explicit_null_clears_a_field(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    patch = {"note": None, "painLocations": None, "sideEffects": None, "sleepHours": None, "rescueMedication": None}
    edited = await update(gql, alice, logged["id"], patch, now + LATER)
    assert edited["note"] is None
    assert edited["painLocations"] == []
    assert edited["sideEffects"] == []
    assert edited["sleepHours"] is None
    assert edited["rescueMedication"] is None
    assert unchanged_fields(edited, *patch) == unchanged_fields(logged, *patch)
    row = await DiaryEntry.get(id=logged["id"])
    cleared: tuple[object, ...] = (row.note, row.pain_locations, row.side_effects, row.sleep_hours)
    assert cleared == (None, [], [], None)


async def test_moving_an_entry_to_another_offset_keeps_the_new_offset(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    edited = await update(gql, alice, logged["id"], {"recordedAt": "2026-11-26T10:30:00+09:00"}, now)
    assert edited["recordedAt"] == "2026-11-26T10:30:00+09:00"
    assert (await DiaryEntry.get(id=logged["id"])).utc_offset_minutes == 540
    # The same instant written in another offset is a change too: the local day it counts for differs.
    moved = await update(gql, alice, logged["id"], {"recordedAt": "2026-11-26T01:30:00+00:00"}, now)
    assert moved["recordedAt"] == "2026-11-26T01:30:00+00:00"
    assert moved["version"] == 3


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"painNow": 6},
        {"sleepHours": 6.5, "note": "Rough night.", "painLocations": ["HEAD", "NECK"]},
        {"sideEffects": [{"code": "NAUSEA", "severity": 2}], "rescueMedication": True},
        {"recordedAt": "2026-11-26T09:00:00+00:00"},
        {"expectedVersion": 1},
    ],
)
async def test_a_patch_that_changes_nothing_writes_nothing(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime, patch: dict[str, Any]
) -> None:
    before = await stored()
    edited = await update(gql, alice, logged["id"], patch, now + LATER)
    assert edited == logged
    assert await stored() == before


async def test_a_stale_expected_version_is_a_conflict(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    await update(gql, alice, logged["id"], {"painNow": 4, "expectedVersion": 1}, now)
    before = await stored()
    for stale in (1, 3, 0, -1):
        result = await gql(
            UPDATE, {"id": logged["id"], "input": {"painNow": 2, "expectedVersion": stale}}, actor=alice.actor
        )
        assert result.codes == ["CONFLICT"], stale
        assert result.fields == ["expectedVersion"]
    assert await stored() == before
    assert (await update(gql, alice, logged["id"], {"painNow": 2, "expectedVersion": 2}, now))["version"] == 3


async def test_of_two_concurrent_edits_from_the_same_version_one_wins(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any]
) -> None:
    patches = [{"painNow": 1, "expectedVersion": 1}, {"painNow": 9, "expectedVersion": 1}]
    results = await asyncio.gather(*(gql(UPDATE, {"id": logged["id"], "input": p}, actor=alice.actor) for p in patches))
    assert sorted(c for r in results for c in r.codes) == ["CONFLICT"]
    winner = next(r for r in results if not r.errors).ok()["updateDiaryEntry"]
    row = await DiaryEntry.get(id=logged["id"])
    assert (row.version, row.pain_now) == (2, winner["painNow"])
    assert await DiaryEntryRevision.all().count() == 1


async def test_concurrent_edits_without_an_expected_version_are_applied_one_after_the_other(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any]
) -> None:
    patches = [{"painNow": p} for p in (0, 1, 2, 3)]
    results = await asyncio.gather(*(gql(UPDATE, {"id": logged["id"], "input": p}, actor=alice.actor) for p in patches))
    assert sorted(r.ok()["updateDiaryEntry"]["version"] for r in results) == [2, 3, 4, 5]
    revisions = await DiaryEntryRevision.filter(entry_id=UUID(logged["id"])).order_by("version")
    assert [r.version for r in revisions] == [1, 2, 3, 4]
    # Each revision holds the state the next edit replaced: the chain has no gaps and no lost edit.
    row = await DiaryEntry.get(id=logged["id"])
    finals = [r.snapshot["pain_now"] for r in revisions[1:]] + [row.pain_now]
    assert sorted(finals) == [0, 1, 2, 3]


REFUSED_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"painNow": 11}, "painNow"),
    ({"mood": -1}, "mood"),
    ({"sleepHours": 24.5}, "sleepHours"),
    ({"sleepHours": 7.333}, "sleepHours"),
    ({"sideEffects": [{"code": "RASH", "severity": 0}, {"code": "NAUSEA", "severity": 4}]}, "sideEffects[1].severity"),
    ({"painLocations": ["HEAD", "HEAD"]}, "painLocations"),
    ({"note": "y" * 2001}, "note"),
    ({"recordedAt": None}, "recordedAt"),
    ({"recordedAt": "2026-11-26T12:06:00+00:00"}, "recordedAt"),
    ({"recordedAt": "2026-11-26T08:00:00"}, "recordedAt"),
    ({"recordedAt": "2026-01-01T00:00:00+00:00"}, "recordedAt"),
    (
        {
            "painNow": None,
            "painWorst": None,
            "painAverage": None,
            "painLocations": [],
            "sleepHours": None,
            "sleepQuality": None,
            "mood": None,
            "sideEffects": None,
            "rescueMedication": None,
            "note": "",
        },
        "input",
    ),
]


@pytest.mark.parametrize(("patch", "field"), REFUSED_PATCHES)
async def test_an_invalid_patch_is_refused_naming_the_field_and_changes_nothing(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], patch: dict[str, Any], field: str
) -> None:
    before = await stored()
    result = await gql(UPDATE, {"id": logged["id"], "input": patch}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == [field]
    assert await stored() == before


async def test_the_client_id_cannot_be_patched(gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any]) -> None:
    before = await stored()
    result = await gql(UPDATE, {"id": logged["id"], "input": {"clientId": str(uuid4())}}, actor=alice.actor)
    assert result.codes == ["BAD_USER_INPUT"]
    assert await stored() == before


# A fixed unknown id, not a random one: test ids must match in every pytest-xdist worker.
@pytest.mark.parametrize("entry_id", ["3f8e0e1c-5b7a-4c55-9d1e-6a2b8c4d0e11", "not-an-id", ""])
async def test_editing_an_entry_that_does_not_exist_is_not_found(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], entry_id: str
) -> None:
    before = await stored()
    for document, variables in ((UPDATE, {"input": {"painNow": 1}}), (DELETE, {})):
        result = await gql(document, {"id": entry_id, **variables}, actor=alice.actor)
        assert result.codes == ["NOT_FOUND"]
        assert result.fields == ["id"]
    assert await stored() == before


async def test_a_deleted_entry_is_kept_marked_and_its_last_version_kept(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    result = await gql(DELETE, {"id": logged["id"]}, actor=alice.actor, now=now + LATER)
    deleted = result.ok()["deleteDiaryEntry"]
    assert deleted["deleted"] is True
    assert deleted["version"] == 2
    assert deleted["updatedAt"] == (now + LATER).isoformat()
    assert unchanged_fields(deleted, "deleted") == unchanged_fields(logged, "deleted")

    row = await DiaryEntry.get(id=logged["id"])
    assert row.deleted_at == now + LATER
    assert row.pain_now == 6
    revision = await DiaryEntryRevision.get(entry_id=row.id)
    assert (revision.version, revision.reason, revision.changed_by_id) == (1, "entered_in_error", alice.account.id)
    assert revision.snapshot["pain_now"] == 6


async def test_deleting_twice_changes_nothing_the_second_time(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    first = (await gql(DELETE, {"id": logged["id"]}, actor=alice.actor, now=now)).ok()["deleteDiaryEntry"]
    before = await stored()
    again = (await gql(DELETE, {"id": logged["id"]}, actor=alice.actor, now=now + LATER)).ok()["deleteDiaryEntry"]
    assert again == first
    assert await stored() == before
    assert len(before.revisions) == 1


async def test_a_deleted_entry_cannot_be_edited(
    gql: GraphQLClient, alice: PatientUser, logged: dict[str, Any], now: datetime
) -> None:
    (await gql(DELETE, {"id": logged["id"]}, actor=alice.actor)).ok()
    before = await stored()
    for patch in ({"painNow": 1}, {}, {"painNow": 1, "expectedVersion": 2}):
        result = await gql(UPDATE, {"id": logged["id"], "input": patch}, actor=alice.actor)
        assert result.codes == ["CONFLICT"]
    assert await stored() == before


async def test_resending_a_deleted_entry_does_not_bring_it_back(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    sent = entry_input(now - timedelta(hours=1), painNow=7)
    entry = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    (await gql(DELETE, {"id": entry["id"]}, actor=alice.actor)).ok()
    before = await stored()
    again = (await gql(LOG, {"input": sent}, actor=alice.actor)).ok()["logDiaryEntry"]
    assert again["id"] == entry["id"]
    assert again["deleted"] is True
    assert await stored() == before


async def test_deleted_entries_are_hidden_unless_asked_for(
    gql: GraphQLClient, alice: PatientUser, factory: Factory, now: datetime
) -> None:
    kept = await factory.entry(alice, recorded_at=now - timedelta(hours=1))
    gone = await factory.entry(alice, recorded_at=now - timedelta(hours=2))
    (await gql(DELETE, {"id": str(gone.id)}, actor=alice.actor)).ok()

    default = (await gql(MY_DIARY, {}, actor=alice.actor)).ok()["myDiary"]["edges"]
    assert [e["node"]["id"] for e in default] == [str(kept.id)]
    everything = (await gql(MY_DIARY, {"includeDeleted": True}, actor=alice.actor)).ok()["myDiary"]["edges"]
    assert [(e["node"]["id"], e["node"]["deleted"]) for e in everything] == [
        (str(kept.id), False),
        (str(gone.id), True),
    ]
