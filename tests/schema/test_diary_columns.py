"""A page of the diary reads only the columns its selection shows (schema/selection.py, `DiaryEntry.reads`), and
answers each field exactly as a page that reads them all."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from graphql import get_named_type, is_object_type

from api.domain.diary.models import DiaryEntry as DiaryEntryModel
from schema.diary.types import DiaryEntry
from tests.conftest import QueryCounter, count_queries
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import SCHEMA, GraphQLClient
from tests.schema.diary_support import MY_DIARY, PATIENT_DIARY

PATIENT_PAGE = "query Page($id: ID!) { patient(id: $id) { diary(includeDeleted: true) { edges { node { %s } } } } }"
MY_PAGE = "query Page%s { myDiary(includeDeleted: true) { edges { node { %s } } } } %s"


def entry_fields() -> list[str]:
    """Every field of DiaryEntry as a selection: an object field with its own leaves."""
    entry = SCHEMA._schema.get_type("DiaryEntry")
    assert is_object_type(entry)
    selections = []
    for name, field in entry.fields.items():
        inner = get_named_type(field.type)
        selections.append(f"{name} {{ {' '.join(inner.fields)} }}" if is_object_type(inner) else name)
    return selections


def diary_selects(counter: QueryCounter) -> list[str]:
    """The text of each SELECT of diary_entry that Tortoise sent (the statement only, never its values)."""
    return [sql for sql in counter.texts if sql.lstrip().upper().startswith("SELECT") and '"diary_entry"' in sql]


async def two_entries(factory: Factory, alice: PatientUser, now: datetime) -> None:
    """One entry with every field set, and one entered in error: every column holds something to show."""
    full = await factory.entry(
        alice,
        recorded_at=(now - timedelta(hours=3)).astimezone(timezone(timedelta(hours=-5))),
        pain_now=4,
        pain_worst=8,
        pain_average=6,
        pain_locations=["HEAD", "NECK"],
        sleep_hours=6.5,
        sleep_quality=3,
        mood=7,
        side_effects=[{"code": "NAUSEA", "severity": 2}],
        rescue_medication=True,
        note="a long day",
    )
    # No prompt is due in this test: the column is set as an answer would have set it.
    await DiaryEntryModel.filter(id=full.id).update(prompt_id=uuid4())
    gone = await factory.entry(alice, recorded_at=now - timedelta(hours=2), pain_now=2)
    await factory.services.diary.delete(alice.actor, gone.id, now=now)


@pytest.mark.parametrize("as_clinician", [False, True], ids=["myDiary", "patient.diary"])
async def test_each_field_alone_is_answered_as_in_the_whole_entry(
    gql: GraphQLClient, factory: Factory, now: datetime, *, as_clinician: bool
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, joined=now - timedelta(days=30))
    clinician: Staff = await factory.staff(clinic)
    await two_entries(factory, alice, now)

    async def page(selection: str) -> list[dict[str, Any]]:
        if as_clinician:
            result = await gql(PATIENT_PAGE % selection, {"id": str(alice.patient.id)}, actor=clinician.actor)
            edges = result.ok()["patient"]["diary"]["edges"]
        else:
            edges = (await gql(MY_PAGE % ("", selection, ""), actor=alice.actor)).ok()["myDiary"]["edges"]
        return [e["node"] for e in edges]

    fields = entry_fields()
    whole = await page(" ".join(fields))
    assert len(whole) == 2
    # Every column shows something: an unread one would be missed.
    assert all(v not in (None, []) for k, v in whole[1].items() if k != "deleted"), whole[1]
    assert whole[1]["recordedAt"].endswith("-05:00")
    assert whole[0]["deleted"] is True
    for selection in fields:
        name = selection.split(" ", 1)[0]
        assert await page(selection) == [{name: node[name]} for node in whole], name


@pytest.mark.parametrize(
    ("selection", "fragments", "read", "unread"),
    [
        ("painNow", "", ["pain_now"], ["note", "pain_locations", "side_effects", "created_at"]),
        ("shown: note", "", ["note"], ["pain_now"]),
        ("...Pain", "fragment Pain on DiaryEntry { painAverage }", ["pain_average"], ["pain_now", "note"]),
        ("... on DiaryEntry { mood }", "", ["mood"], ["pain_now", "note"]),
        ("sideEffects { code }", "", ["side_effects"], ["pain_locations", "note"]),
        ("deleted", "", ["deleted_at"], ["note"]),
    ],
    ids=["field", "alias", "fragment", "inline-fragment", "object-field", "computed"],
)
async def test_a_page_reads_only_the_columns_its_selection_shows(
    gql: GraphQLClient,
    factory: Factory,
    now: datetime,
    *,
    selection: str,
    fragments: str,
    read: list[str],
    unread: list[str],
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now - timedelta(days=30))
    await two_entries(factory, alice, now)

    with count_queries() as counter:
        (await gql(MY_PAGE % ("", selection, fragments), actor=alice.actor)).ok()

    [sql] = diary_selects(counter)
    left = set(re.findall(r'NULL AS "(\w+)"', sql))
    # The page's key and what recordedAt is made of are always read.
    assert not left & {*read, "id", "recorded_at", "utc_offset_minutes"}
    assert left >= set(unread)


@pytest.mark.parametrize(
    ("selection", "fragments"),
    [
        ("painNow note @include(if: true)", ""),
        ("painNow ...Rest @skip(if: false)", "fragment Rest on DiaryEntry { note }"),
        ("painNow ... @include(if: true) { note }", ""),
    ],
    ids=["field", "spread", "inline-fragment"],
)
async def test_a_selection_decided_by_a_directive_reads_every_column(
    gql: GraphQLClient, factory: Factory, now: datetime, selection: str, fragments: str
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now - timedelta(days=30))
    await two_entries(factory, alice, now)

    with count_queries() as counter:
        nodes = (await gql(MY_PAGE % ("", selection, fragments), actor=alice.actor)).ok()["myDiary"]["edges"]

    [sql] = diary_selects(counter)
    assert "NULL AS" not in sql
    assert [n["node"]["note"] for n in nodes] == [None, "a long day"]


@pytest.mark.parametrize("show", [True, False])
async def test_a_directive_on_a_variable_is_answered_as_the_variable_says(
    gql: GraphQLClient, factory: Factory, now: datetime, *, show: bool
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now - timedelta(days=30))
    await two_entries(factory, alice, now)
    document = MY_PAGE % ("($show: Boolean!)", "painNow note @include(if: $show)", "")

    nodes = (await gql(document, {"show": show}, actor=alice.actor)).ok()["myDiary"]["edges"]

    if show:
        assert [n["node"] for n in nodes] == [{"painNow": 2, "note": None}, {"painNow": 4, "note": "a long day"}]
    else:
        assert [n["node"] for n in nodes] == [{"painNow": 2}, {"painNow": 4}]


async def test_the_shared_documents_read_every_column_they_show(
    gql: GraphQLClient, factory: Factory, now: datetime
) -> None:
    """The tests' documents select every field through a fragment: only what no field shows is left unread."""
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, joined=now - timedelta(days=30))
    clinician = await factory.staff(clinic)
    await two_entries(factory, alice, now)

    with count_queries() as counter:
        (await gql(MY_DIARY, {"includeDeleted": True}, actor=alice.actor)).ok()
        (await gql(PATIENT_DIARY, {"id": str(alice.patient.id)}, actor=clinician.actor)).ok()

    selects = diary_selects(counter)
    assert len(selects) == 2
    for sql in selects:
        assert re.findall(r'NULL AS "(\w+)"', sql) == ["client_hash", "clinic_id", "patient_id"]


def test_every_field_of_the_type_says_what_it_reads() -> None:
    """A field added to DiaryEntry without its columns would make every page read every column (below)."""
    names = {selection.split(" ", 1)[0] for selection in entry_fields()}
    assert all(DiaryEntry.reads(frozenset({name})) is not None for name in names)


def test_a_field_that_says_nothing_makes_a_page_read_everything() -> None:
    assert DiaryEntry.reads(frozenset({"painNow", "aFieldAddedLater"})) is None
    assert DiaryEntry.reads(None) is None
    assert DiaryEntry.reads(frozenset({"painNow"})) == frozenset(
        {"id", "recorded_at", "utc_offset_minutes", "pain_now"}
    )
