"""eraseMyAccount and erasePatient over GraphQL: the Erasure they answer, every refusal with its code and field and
nothing changed after it, the held record as staff read it until the purge, and the erased patient's tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import uuid4

import httpx
import pytest_asyncio

from api.domain.actor import Actor, Role
from api.domain.patient.erasure import purge_held_records
from api.domain.services import Services
from tests.erasure_support import ALICE_EMAIL, RETENTION, World, table_dump, world
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient

ERASURE = "patientId status requestedAt retainedUntil erasedAt"
ERASE_ME = f"mutation EraseMe($password: String!) {{ eraseMyAccount(password: $password) {{ {ERASURE} }} }}"
ERASE = f"""
mutation Erase($patientId: ID!, $reason: String!, $password: String!, $otp: String) {{
  erasePatient(patientId: $patientId, reason: $reason, password: $password, otp: $otp) {{ {ERASURE} }}
}}
"""
PATIENT = "query Patient($id: ID!) { patient(id: $id) { displayName status email diary { edges { node { id } } } } }"
ERASED_LIST = "{ patients(status: ERASED) { edges { node { id displayName } } } }"
REASON = "asked by phone"
ALERTS = "{ alerts { edges { node { id status patient { id displayName } } } } }"
RESOLVE = "mutation Resolve($id: ID!) { resolveAlert(id: $id) { status } }"
SCHEDULE = "mutation S($input: ScheduleInfusionInput!) { scheduleInfusion(input: $input) { id } }"


@pytest_asyncio.fixture
async def w(factory: Factory, services: Services, now: datetime) -> World:
    return await world(factory, services, now)


def expected(w: World, now: datetime) -> dict[str, Any]:
    return {
        "patientId": str(w.alice.patient.id),
        "status": "ERASED",
        "requestedAt": now.isoformat(),
        "retainedUntil": (w.latest_entry.recorded_at + RETENTION).isoformat(),
        "erasedAt": None,
    }


async def test_an_admin_erases_a_patient_of_their_clinic(w: World, gql: GraphQLClient, now: datetime) -> None:
    variables = {"patientId": str(w.alice.patient.id), "reason": REASON, "password": PASSWORD}
    result = (await gql(ERASE, variables, actor=w.admin.actor)).ok()
    assert result["erasePatient"] == expected(w, now)
    # Again, a day later: the same answer.
    again = await gql(ERASE, variables, actor=w.admin.actor, now=now + timedelta(days=1))
    assert again.ok()["erasePatient"] == expected(w, now)


async def test_the_patient_erases_their_own_account(w: World, gql: GraphQLClient, now: datetime) -> None:
    result = (await gql(ERASE_ME, {"password": PASSWORD}, actor=w.alice.actor)).ok()
    assert result["eraseMyAccount"] == expected(w, now)


class Refusal(NamedTuple):
    name: str
    who: str | None
    document: str
    variables: dict[str, Any]
    code: str
    field: str | None
    # The one thing a refusal may change: a wrong password counts on the account's login throttle.
    counted: bool = False


REFUSALS = [
    Refusal("wrong password", "alice", ERASE_ME, {"password": "not the password"}, "BAD_USER_INPUT", "password", True),
    Refusal(
        "admin's wrong password", "admin", ERASE, {"password": "not the password"}, "BAD_USER_INPUT", "password", True
    ),
    Refusal("admin's missing password", "admin", ERASE, {"password": None}, "BAD_USER_INPUT", "password"),
    Refusal("anonymous erases themself", None, ERASE_ME, {"password": PASSWORD}, "UNAUTHENTICATED", None),
    Refusal("anonymous erases a patient", None, ERASE, {"reason": REASON}, "UNAUTHENTICATED", None),
    Refusal("staff have no account to erase here", "admin", ERASE_ME, {"password": PASSWORD}, "FORBIDDEN", None),
    Refusal("empty reason", "admin", ERASE, {"reason": ""}, "BAD_USER_INPUT", "reason"),
    Refusal("blank reason", "admin", ERASE, {"reason": " \n\t "}, "BAD_USER_INPUT", "reason"),
    Refusal("overlong reason", "admin", ERASE, {"reason": "x" * 2001}, "BAD_USER_INPUT", "reason"),
    Refusal("missing reason", "admin", ERASE, {"reason": None}, "BAD_USER_INPUT", "reason"),
    Refusal("clinician", "clinician", ERASE, {"reason": REASON}, "FORBIDDEN", None),
    Refusal("patient erases a patient", "alice", ERASE, {"reason": REASON}, "FORBIDDEN", None),
    Refusal("admin of another clinic", "foreign admin", ERASE, {"reason": REASON}, "NOT_FOUND", "patientId"),
    Refusal("unknown patient", "admin", ERASE, {"patientId": str(uuid4()), "reason": REASON}, "NOT_FOUND", "patientId"),
    Refusal("malformed id", "admin", ERASE, {"patientId": "1;DROP", "reason": REASON}, "NOT_FOUND", "patientId"),
]


async def test_every_refusal_names_its_code_and_field_and_changes_nothing(
    w: World, factory: Factory, gql: GraphQLClient
) -> None:
    """One world for all the cases (building it is most of a case's cost); each names itself when it fails."""
    actors: dict[str | None, Actor | None] = {
        None: None,
        "alice": w.alice.actor,
        "admin": w.admin.actor,
        "clinician": w.clinician.actor,
        "foreign admin": (await factory.staff(await factory.clinic(), Role.ADMIN)).actor,
    }
    stored = await table_dump()
    for case in REFUSALS:
        variables = case.variables
        if case.document == ERASE:
            variables = {"patientId": str(w.alice.patient.id), "reason": REASON, "password": PASSWORD, **variables}
        variables = {k: v for k, v in variables.items() if v is not None}

        result = await gql(case.document, variables, actor=actors[case.who])

        assert result.data is None, case.name
        assert (result.codes, result.fields) == ([case.code], [case.field]), case.name
        after = await table_dump()
        changed = {table for table, rows in after.items() if rows != stored[table]}
        assert changed == ({"throttle_bucket"} if case.counted else set()), case.name
        stored = after


async def test_guessing_the_password_with_a_stolen_token_locks_like_a_sign_in(
    w: World, gql: GraphQLClient, services: Services
) -> None:
    for _ in range(services.accounts.policy.per_account.max_failures - 1):  # her world has one failed sign-in
        assert (await gql(ERASE_ME, {"password": "a guess"}, actor=w.alice.actor)).codes == ["BAD_USER_INPUT"]
    stored = await table_dump()

    locked = await gql(ERASE_ME, {"password": PASSWORD}, actor=w.alice.actor)

    assert (locked.data, locked.codes) == (None, ["RATE_LIMITED"])
    assert await table_dump() == stored


async def test_another_clinics_patient_is_refused_exactly_as_a_missing_one(
    w: World, factory: Factory, gql: GraphQLClient
) -> None:
    foreign = await factory.staff(await factory.clinic(), Role.ADMIN)
    asked = {"reason": REASON, "password": PASSWORD}
    theirs = await gql(ERASE, {"patientId": str(w.alice.patient.id), **asked}, actor=foreign.actor)
    missing = await gql(ERASE, {"patientId": str(uuid4()), **asked}, actor=foreign.actor)
    assert theirs.errors == missing.errors


async def test_staff_read_the_held_record_under_the_pseudonym_until_the_purge(
    w: World, gql: GraphQLClient, now: datetime
) -> None:
    erase = {"patientId": str(w.alice.patient.id), "reason": REASON, "password": PASSWORD}
    (await gql(ERASE, erase, actor=w.admin.actor)).ok()

    held = (await gql(PATIENT, {"id": str(w.alice.patient.id)}, actor=w.clinician.actor)).ok()["patient"]
    pseudonym = f"Erased patient {w.alice.patient.id.hex[:8]}"
    assert (held["displayName"], held["status"], held["email"]) == (pseudonym, "ERASED", None)
    assert len(held["diary"]["edges"]) == 2
    listed = (await gql(ERASED_LIST, actor=w.clinician.actor)).ok()["patients"]["edges"]
    assert listed == [{"node": {"id": str(w.alice.patient.id), "displayName": pseudonym}}]
    # Her chest-pain alert is listed until resolved; staff close it, and write nothing else to the record.
    [alert] = (await gql(ALERTS, actor=w.clinician.actor)).ok()["alerts"]["edges"]
    assert alert["node"]["patient"] == {"id": str(w.alice.patient.id), "displayName": pseudonym}
    booking = {"patientId": str(w.alice.patient.id), "startsAt": "2026-12-01T09:00:00Z", "plannedDurationMinutes": 60}
    assert (await gql(SCHEDULE, {"input": booking}, actor=w.clinician.actor)).codes == ["CONFLICT"]
    closed = await gql(RESOLVE, {"id": alert["node"]["id"]}, actor=w.clinician.actor)
    assert closed.ok()["resolveAlert"]["status"] == "RESOLVED"

    retained_until = w.latest_entry.recorded_at + RETENTION
    assert await purge_held_records(now=retained_until) == 1

    later = retained_until + timedelta(minutes=1)
    gone = await gql(PATIENT, {"id": str(w.alice.patient.id)}, actor=w.clinician.actor, now=later)
    assert gone.codes == ["NOT_FOUND"]
    assert (await gql(ERASED_LIST, actor=w.clinician.actor, now=later)).ok()["patients"]["edges"] == []


async def graphql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return response.json()


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


LOGIN = "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }"
REFRESH = "mutation R($t: String!) { refreshSession(refreshToken: $t) { accessToken } }"
MY_DIARY = "{ myDiary { edges { node { id } } } }"
ME = "{ me { id email } }"
LOG = "mutation Log($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id } }"
TRENDS = "{ myTrends { days } }"
MY_PROMPTS = "{ myPrompts(status: [SENT]) { id } }"
ACK_PROMPT = "mutation A($id: ID!) { acknowledgePrompt(id: $id, event: OPENED) { status } }"


async def test_the_erased_patients_tokens_stop_working_at_once(
    w: World, http: httpx.AsyncClient, now: datetime
) -> None:
    session = (await graphql(http, LOGIN, {"e": ALICE_EMAIL, "p": PASSWORD}))["data"]["login"]
    token = session["accessToken"]
    assert codes(await graphql(http, MY_DIARY, {}, token)) == []
    [sent] = (await graphql(http, MY_PROMPTS, {}, token))["data"]["myPrompts"]

    erased = await graphql(http, ERASE_ME, {"password": PASSWORD}, token)
    assert erased["data"]["eraseMyAccount"]["status"] == "ERASED"

    # The access token is still unexpired: the domain refuses the erased patient's data, reads and writes alike.
    entry = {"clientId": str(uuid4()), "recordedAt": now.isoformat(), "painNow": 3}
    assert codes(await graphql(http, MY_DIARY, {}, token)) == ["NOT_FOUND"]
    # Nor does the closed account answer for itself (its placeholder email is nobody's business).
    assert codes(await graphql(http, ME, {}, token)) == ["UNAUTHENTICATED"]
    assert codes(await graphql(http, LOG, {"input": entry}, token)) == ["NOT_FOUND"]
    assert codes(await graphql(http, TRENDS, {}, token)) == ["NOT_FOUND"]
    assert codes(await graphql(http, MY_PROMPTS, {}, token)) == ["NOT_FOUND"]
    assert codes(await graphql(http, ACK_PROMPT, {"id": sent["id"]}, token)) == ["NOT_FOUND"]
    assert codes(await graphql(http, REFRESH, {"t": session["refreshToken"]})) == ["UNAUTHENTICATED"]
    assert codes(await graphql(http, LOGIN, {"e": ALICE_EMAIL, "p": PASSWORD})) == ["UNAUTHENTICATED"]
    # A retry of the erasure (its answer lost) answers the same.
    again = await graphql(http, ERASE_ME, {"password": PASSWORD}, token)
    assert again["data"]["eraseMyAccount"] == erased["data"]["eraseMyAccount"]
