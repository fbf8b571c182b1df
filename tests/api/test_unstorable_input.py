"""Input no column can hold is refused as BAD_USER_INPUT naming it, never an internal error, on both databases.

Text with a NUL (PostgreSQL's text refuses it) or a lone surrogate (no encoding has one), anywhere in a document or
its variables, is refused before anything runs (schema/storable.py), except where the domain refuses it better
(a diary note: each entry of a sync batch is answered on its own). Strings longer than the column they are
compared with are answered as the domain means them: an email no account can have is an unknown one; an
instrument filter or a cursor key no row can have is refused.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from strawberry.types import ExecutionResult

from api.domain.account.models import ThrottleBucket
from api.domain.actor import Actor
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient
from api.domain.services import Services
from schema.context import Context
from tests.factories import PASSWORD, Factory, PatientUser, Staff
from tests.graphql import SCHEMA, GraphQLClient
from tests.schema.diary_support import SYNC, entry_input

NUL, SURROGATE, LOW_SURROGATE = "nul \x00 here", "half \ud83d an emoji", "\udfff"


@pytest.fixture
async def staff(factory: Factory) -> Staff:
    return await factory.staff(await factory.clinic())


@pytest.fixture
async def alice(factory: Factory, staff: Staff) -> PatientUser:
    clinic = await staff.account.clinic
    return await factory.patient(clinic, name="Alice Smith")


def caller(who: str, staff: Staff, alice: PatientUser) -> Actor | None:
    return {"staff": staff.actor, "patient": alice.actor, "nobody": None}[who]


# (who calls, document, variables, the field the refusal names). Each is what the fuzzer found answering INTERNAL,
# or a shape of input (a literal, a list, a default, a JSON value) the check must reach.
REFUSED: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "login email": (
        "nobody",
        'mutation($e: String!) { login(email: $e, password: "x") { accessToken } }',
        {"e": f"a{NUL}@example.test"},
        "e",
    ),
    "login password": (
        "nobody",
        'mutation($p: String!) { login(email: "a@example.test", password: $p) { accessToken } }',
        {"p": SURROGATE},
        "p",
    ),
    "refresh": (
        "nobody",
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
        {"t": NUL},
        "t",
    ),
    "logout": ("patient", "mutation($t: String!) { logout(refreshToken: $t) }", {"t": LOW_SURROGATE}, "t"),
    "change password": (
        "staff",
        'mutation($n: String!) { changePassword(currentPassword: "x", newPassword: $n) }',
        {"n": NUL},
        "n",
    ),
    "device token": (
        "patient",
        "mutation($input: DeviceInput!) { registerDevice(input: $input) { id } }",
        {"input": {"provider": "FCM", "token": NUL, "platform": "android"}},
        "input.token",
    ),
    "device platform": (
        "patient",
        "mutation($input: DeviceInput!) { registerDevice(input: $input) { id } }",
        {"input": {"provider": "FCM", "token": "t" * 40, "platform": SURROGATE}},
        "input.platform",
    ),
    "unregister device": ("patient", "mutation($t: String!) { unregisterDevice(token: $t) }", {"t": NUL}, "t"),
    "patient search": ("staff", "query($s: String) { patients(search: $s) { edges { cursor } } }", {"s": NUL}, "s"),
    "questionnaire instrument": (
        "patient",
        "query($i: String) { myQuestionnaires(instrument: $i) { edges { cursor } } }",
        {"i": SURROGATE},
        "i",
    ),
    "invite display name": (
        "staff",
        "mutation($input: InvitePatientInput!) { invitePatient(input: $input) { code } }",
        {"input": {"displayName": NUL, "timezone": "Europe/Paris"}},
        "input.displayName",
    ),
    "crisis message": (
        "staff",
        "mutation($input: AlertSettingsInput!) { updateAlertSettings(input: $input) { version } }",
        {"input": {"version": 0, "crisisMessage": NUL}},
        "input.crisisMessage",
    ),
    "json value": (
        "staff",
        "mutation($input: AlertSettingsInput!) { updateAlertSettings(input: $input) { version } }",
        {"input": {"version": 0, "thresholds": {"self_harm": {"note": ["ok", SURROGATE]}}}},
        "input.thresholds.self_harm.note[1]",
    ),
    "json key": (
        "staff",
        "mutation($input: AlertSettingsInput!) { updateAlertSettings(input: $input) { version } }",
        {"input": {"version": 0, "thresholds": {"self_harm": {NUL: True}}}},
        "input.thresholds.self_harm",
    ),
    "inside a list": (
        "patient",
        "mutation($entries: [DiaryEntryInput!]!) { syncDiaryEntries(entries: $entries) { status } }",
        {"entries": [{"clientId": str(UUID(int=1)), "recordedAt": "2026-11-26T11:00:00Z", "promptId": NUL}]},
        "entries[0].promptId",
    ),
    "literal": ("staff", r'{ patients(search: "a\u0000") { edges { cursor } } }', {}, "search"),
    "braced escape": ("staff", r'{ patients(search: "a\u{0}") { edges { cursor } } }', {}, "search"),
    "literal in an input": (
        "staff",
        r'mutation { invitePatient(input: {displayName: "\u0000", timezone: "Europe/Paris"}) { code } }',
        {},
        "input.displayName",
    ),
    "literal in a list": (
        "staff",
        r'mutation { updateAlertSettings(input: {version: 0, thresholds: {a: ["x", "\u0000"]}}) { version } }',
        {},
        "input.thresholds.a[1]",
    ),
    "default value": (
        "staff",
        r'query($s: String = "\u0000") { patients(search: $s) { edges { cursor } } }',
        {},
        "s",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_text_no_column_can_hold_is_refused_before_anything_runs(
    gql: GraphQLClient, staff: Staff, alice: PatientUser, case: str
) -> None:
    who, document, variables, field = REFUSED[case]
    patients = await Patient.all().count()

    result = await gql(document, variables, actor=caller(who, staff, alice))

    assert result.data is None
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.fields == [field]
    assert result.errors[0]["message"] == "contains characters that cannot be stored"
    assert await Patient.all().count() == patients
    # Nothing ran: not even a failed sign-in was counted.
    assert await ThrottleBucket.all().count() == 0


async def test_a_note_is_left_to_the_diary_which_answers_each_entry_of_a_batch(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    batch = [entry_input(now - timedelta(hours=h), note=note) for h, note in ((3, "fine"), (2, SURROGATE), (1, NUL))]

    results = (await gql(SYNC, {"entries": batch}, actor=alice.actor)).ok()["syncDiaryEntries"]

    assert [r["status"] for r in results] == ["CREATED", "INVALID", "INVALID"]
    assert [r["error"] and r["error"]["field"] for r in results] == [None, "entries[1].note", "entries[2].note"]
    assert await DiaryEntry.all().count() == 1


async def test_text_that_can_be_stored_passes(gql: GraphQLClient, staff: Staff) -> None:
    document = "mutation($input: InvitePatientInput!) { invitePatient(input: $input) { patient { displayName } } }"
    name = "Zoë 😀 \u200b\ufffd O'Brien"

    result = await gql(document, {"input": {"displayName": name, "timezone": "Europe/Paris"}}, actor=staff.actor)

    assert result.ok()["invitePatient"]["patient"]["displayName"] == name
    # An escape in a literal that is not NUL is text like any other.
    (await gql(r'{ patients(search: "zo\u00eb \u{1F600}") { edges { cursor } } }', actor=staff.actor)).ok()


async def test_over_http_an_escaped_surrogate_is_refused_the_same(http: httpx.AsyncClient, alice: PatientUser) -> None:
    # json.dumps escapes the surrogate (\ud800): the only way it can travel in a JSON body.
    body = {"query": "mutation($t: String!) { logout(refreshToken: $t) }", "variables": {"t": "\ud800"}}

    response = await http.post("/graphql", content=json.dumps(body), headers={"Content-Type": "application/json"})

    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "t"}


async def test_over_a_stream_as_on_a_websocket_it_is_refused_the_same(
    services: Services, staff: Staff, now: datetime
) -> None:
    # graphql-transport-ws runs queries and mutations through `Schema.stream`, not `execute`.
    context = Context(services=services, now=now, actor=staff.actor)
    stream = await SCHEMA.stream(
        "query($s: String) { patients(search: $s) { edges { cursor } } }", {"s": NUL}, context_value=context
    )

    results = [result async for result in stream]

    assert len(results) == 1
    assert isinstance(results[0], ExecutionResult)
    assert [e.extensions for e in results[0].errors or []] == [{"code": "BAD_USER_INPUT", "field": "s"}]


LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"


async def test_an_email_longer_than_any_account_fails_as_an_unknown_one(gql: GraphQLClient, staff: Staff) -> None:
    too_long = "a" * 400 + "@example.test"

    unknown = await gql(LOGIN, {"e": "nobody@example.test", "p": PASSWORD})
    unknown_buckets = {b.key.split(":")[0]: b.failures for b in await ThrottleBucket.all()}
    await ThrottleBucket.all().delete()
    long = await gql(LOGIN, {"e": too_long, "p": PASSWORD})

    assert long.codes == unknown.codes == ["UNAUTHENTICATED"]
    assert long.errors[0]["message"] == unknown.errors[0]["message"]
    # Counted as any failure is: against the address and against that email's key.
    assert {b.key.split(":")[0]: b.failures for b in await ThrottleBucket.all()} == unknown_buckets
    assert len(unknown_buckets) == 2


QUESTIONNAIRES = "query($i: String) { myQuestionnaires(instrument: $i) { edges { cursor } } }"
PATIENT_QUESTIONNAIRES = (
    "query($p: ID!, $i: String) { patient(id: $p) { questionnaires(instrument: $i) { edges { cursor } } } }"
)


async def test_an_instrument_longer_than_any_is_refused(gql: GraphQLClient, staff: Staff, alice: PatientUser) -> None:
    longest = await gql(QUESTIONNAIRES, {"i": "x" * 32}, actor=alice.actor)
    mine = await gql(QUESTIONNAIRES, {"i": "x" * 33}, actor=alice.actor)
    theirs = await gql(PATIENT_QUESTIONNAIRES, {"p": str(alice.patient.id), "i": "x" * 5000}, actor=staff.actor)

    assert longest.ok()["myQuestionnaires"]["edges"] == []
    for refused in (mine, theirs):
        assert refused.codes == ["BAD_USER_INPUT"], refused.errors
        assert refused.fields == ["instrument"]


PATIENTS = "query($a: String) { patients(first: 1, after: $a) { edges { cursor node { displayName } } } }"


def cursor(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, str(UUID(int=1))]).encode()).decode()


@pytest.mark.parametrize("key", ["smith\x00", "smith\ud800", "s" * 201], ids=["nul", "surrogate", "too-long"])
async def test_a_patients_cursor_whose_key_no_row_can_have_is_refused_on_after(
    gql: GraphQLClient, staff: Staff, alice: PatientUser, key: str
) -> None:
    result = await gql(PATIENTS, {"a": cursor(key)}, actor=staff.actor)

    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.fields == ["after"]


async def test_a_patients_cursor_as_long_as_the_column_still_pages(
    gql: GraphQLClient, factory: Factory, staff: Staff, alice: PatientUser
) -> None:
    clinic = await staff.account.clinic
    await factory.patient(clinic, name="z" * 200)

    first = (await gql(PATIENTS, {}, actor=staff.actor)).ok()["patients"]["edges"]
    second = (await gql(PATIENTS, {"a": first[0]["cursor"]}, actor=staff.actor)).ok()["patients"]["edges"]
    last = (await gql(PATIENTS, {"a": second[0]["cursor"]}, actor=staff.actor)).ok()["patients"]["edges"]

    assert [e["node"]["displayName"] for e in [*first, *second, *last]] == ["Alice Smith", "z" * 200]


@pytest.mark.parametrize(
    "path",
    ["/fhir/Patient/%00/$everything", "/fhir/Patient/%ED%A0%80/$everything", "/export/diary.csv?patientId=%00"],
    ids=["fhir-nul", "fhir-surrogate-bytes", "csv-nul"],
)
async def test_export_routes_answer_a_patient_id_no_row_can_have_as_not_found(
    http: httpx.AsyncClient, services: Services, staff: Staff, now: datetime, path: str
) -> None:
    token, _ = services.accounts.tokens.issue(
        account_id=staff.account.id, role=staff.actor.role, clinic_id=staff.actor.clinic_id, patient_id=None, now=now
    )

    response = await http.get(path, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 404
