"""The clinician's patient list: search, status filter, keyset pages, clinic isolation, constant query count."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.domain.actor import Actor, Role
from api.domain.patient.models import Patient, PatientStatus
from api.domain.services import Services
from tests.conftest import count_queries
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient, Result

PATIENTS = """
query Patients($first: Int, $after: String, $search: String, $status: PatientStatus) {
  patients(first: $first, after: $after, search: $search, status: $status) {
    edges { cursor node { id displayName status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RICH = "query Rich { patients(first: 50) { edges { node { id displayName email lastEntry { painNow } } } } }"


async def _page(gql: GraphQLClient, actor: Actor, **variables: Any) -> Result:
    return await gql(PATIENTS, variables, actor=actor)


async def _names(gql: GraphQLClient, actor: Actor, **variables: Any) -> list[str]:
    data = (await _page(gql, actor, **variables)).ok()["patients"]
    return [edge["node"]["displayName"] for edge in data["edges"]]


async def _invited(services: Services, staff: Actor, name: str, now: datetime) -> Patient:
    issued = await services.patients.invite(staff, display_name=name, email=None, timezone="Europe/Paris", now=now)
    return issued.patient


async def test_patients_are_listed_by_name_case_insensitively(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for name in ("charlie Brown", "Alice Smith", "bob Jones"):
        await factory.patient(clinic, name=name)

    assert await _names(gql, staff.actor) == ["Alice Smith", "bob Jones", "charlie Brown"]


async def test_pages_cover_every_patient_once_in_order(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    # Equal names force the id tie-breaker across page boundaries.
    names = ["Dana", "Dana", "Dana", "Eve", "Ann", "Ann", "Zoe"]
    ids = {str((await factory.patient(clinic, name=n)).patient.id): n for n in names}

    seen: list[tuple[str, str]] = []
    after = None
    for _ in range(10):
        data = (await _page(gql, staff.actor, first=2, after=after)).ok()["patients"]
        seen += [(e["node"]["displayName"], e["node"]["id"]) for e in data["edges"]]
        assert data["pageInfo"]["endCursor"] == (data["edges"][-1]["cursor"] if data["edges"] else None)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]

    assert sorted(i for _, i in seen) == sorted(ids)
    assert len(seen) == len(ids)
    assert [n for n, _ in seen] == sorted(names)
    ties = [i for n, i in seen if n == "Dana"]
    assert ties == sorted(ties)


async def test_a_full_last_page_says_there_is_no_next(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for name in ("A", "B", "C", "D"):
        await factory.patient(clinic, name=name)

    first = (await _page(gql, staff.actor, first=2)).ok()["patients"]
    second = (await _page(gql, staff.actor, first=2, after=first["pageInfo"]["endCursor"])).ok()["patients"]

    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["displayName"] for e in second["edges"]] == ["C", "D"]
    assert second["pageInfo"]["hasNextPage"] is False


async def test_search_is_a_case_insensitive_substring(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for name in ("Ada Lovelace", "Nadia Comaneci", "Bob Marley", "Ådne Ødegård"):
        await factory.patient(clinic, name=name)

    assert await _names(gql, staff.actor, search="AD") == ["Ada Lovelace", "Nadia Comaneci"]
    assert await _names(gql, staff.actor, search="  marley ") == ["Bob Marley"]
    assert await _names(gql, staff.actor, search="ødegÅrd") == ["Ådne Ødegård"]
    assert await _names(gql, staff.actor, search="zzz") == []


async def test_like_wildcards_in_the_search_are_literal(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for name in ("50% Better", "50 Better", "A_B", "AxB", "Back\\Slash", "Backslash"):
        await factory.patient(clinic, name=name)

    assert await _names(gql, staff.actor, search="%") == ["50% Better"]
    assert await _names(gql, staff.actor, search="50%") == ["50% Better"]
    assert await _names(gql, staff.actor, search="a_b") == ["A_B"]
    assert await _names(gql, staff.actor, search="_") == ["A_B"]
    assert await _names(gql, staff.actor, search="\\") == ["Back\\Slash"]
    assert await _names(gql, staff.actor, search="k\\s") == ["Back\\Slash"]


async def test_the_status_filter(factory: Factory, gql: GraphQLClient, services: Services, now: datetime) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await factory.patient(clinic, name="Active One")
    paused = await factory.patient(clinic, name="Paused One")
    erased = await factory.patient(clinic, name="Erased One")
    await _invited(services, staff.actor, "Invited One", now)
    await Patient.filter(id=paused.patient.id).update(status=PatientStatus.PAUSED)
    await Patient.filter(id=erased.patient.id).update(status=PatientStatus.ERASED)

    assert await _names(gql, staff.actor, status="ACTIVE") == ["Active One"]
    assert await _names(gql, staff.actor, status="PAUSED") == ["Paused One"]
    assert await _names(gql, staff.actor, status="INVITED") == ["Invited One"]
    assert await _names(gql, staff.actor, status="ERASED") == []
    assert await _names(gql, staff.actor) == ["Active One", "Invited One", "Paused One"]
    assert await _names(gql, staff.actor, status="ACTIVE", search="one") == ["Active One"]


async def test_first_above_100_is_refused_not_clamped(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    for bad in (101, 0, -1):
        result = await _page(gql, staff.actor, first=bad)
        assert (result.data, result.codes, result.fields) == (None, ["BAD_USER_INPUT"], ["first"]), bad
    (await _page(gql, staff.actor, first=100)).ok()


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="not-base64-json"),
        pytest.param(_cursor(["a", 5]), id="numeric-id"),
        pytest.param(_cursor(["a", None]), id="null-id"),
        pytest.param(_cursor(["a", "not-a-uuid"]), id="bad-id"),
        pytest.param(_cursor([1, "6f1c1c8e-0d7e-4a57-9a55-0b0f8d3c2a11"]), id="numeric-name"),
        pytest.param(_cursor({"a": 1}), id="object"),
        pytest.param(_cursor("x"), id="string"),
        pytest.param(_cursor(["a", "b", "c"]), id="three-items"),
    ],
)
async def test_a_cursor_that_is_not_ours_is_bad_input(cursor: str, factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    result = await _page(gql, staff.actor, after=cursor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["after"])


async def test_another_clinics_patients_never_appear(factory: Factory, gql: GraphQLClient) -> None:
    mine, theirs = await factory.clinic(), await factory.clinic()
    staff = await factory.staff(mine)
    await factory.patient(mine, name="Mine Smith")
    await factory.patient(theirs, name="Theirs Smith")

    assert await _names(gql, staff.actor) == ["Mine Smith"]
    assert await _names(gql, staff.actor, search="smith") == ["Mine Smith"]
    assert await _names(gql, staff.actor, search="theirs") == []


async def test_nodes_carry_email_and_the_newest_live_entry(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    logger = await factory.patient(clinic, name="A Logger")
    await factory.entry(logger, recorded_at=now - timedelta(days=2), pain_now=2)
    await factory.entry(logger, recorded_at=now - timedelta(hours=3), pain_now=7)
    newest = await factory.entry(logger, recorded_at=now - timedelta(hours=1), pain_now=9)
    await services.diary.delete(logger.actor, newest.id, now=now)
    silent = await factory.patient(clinic, name="B Silent")
    await _invited(services, staff.actor, "C Invited", now)

    nodes = [e["node"] for e in (await gql(RICH, actor=staff.actor)).ok()["patients"]["edges"]]

    assert [(n["displayName"], n["email"], n["lastEntry"]) for n in nodes] == [
        ("A Logger", logger.email, {"painNow": 7}),
        ("B Silent", silent.email, None),
        ("C Invited", None, None),
    ]


async def _clinic_with_patients(factory: Factory, count: int, now: datetime) -> Actor:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for i in range(count):
        who: PatientUser = await factory.patient(clinic, name=f"Patient {i:03d}")
        await factory.entry(who, recorded_at=now - timedelta(hours=2), pain_now=i % 11)
        await factory.entry(who, recorded_at=now - timedelta(hours=1), pain_now=(i + 1) % 11)
    return staff.actor


async def _statements(gql: GraphQLClient, actor: Actor, expected_rows: int) -> int:
    with count_queries() as counter:
        result = await gql(RICH, actor=actor)
    edges = result.ok()["patients"]["edges"]
    assert len(edges) == expected_rows
    assert all(e["node"]["email"] and e["node"]["lastEntry"] for e in edges)
    return len(counter.statements)


async def test_the_rich_list_runs_a_constant_number_of_statements(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    small = await _clinic_with_patients(factory, 5, now)
    large = await _clinic_with_patients(factory, 50, now)

    few = await _statements(gql, small, 5)
    many = await _statements(gql, large, 50)

    assert few == many
    # The page, the newest entries (their instants, then the rows), the emails, the audit event and its subjects.
    assert many <= 6


async def test_a_patient_may_not_list_patients(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    who = await factory.patient(clinic)

    result = await _page(gql, who.actor)

    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_an_admin_lists_patients_too(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    await factory.patient(clinic, name="Only One")

    assert await _names(gql, admin.actor) == ["Only One"]
