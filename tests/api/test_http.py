"""The real ASGI app over HTTP: probes, request ids, bearer auth, the errors contract and request limits."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from starlette.types import Message

from api import migrations
from api.app import create_app
from api.domain.account.tokens import AccessTokens
from api.domain.actor import Role
from api.domain.services import Services
from api.settings import Settings
from tests.api.support import client_for, codes, data, opened, post_graphql, unreachable_database
from tests.conftest import POSTGRES, Database
from tests.factories import PASSWORD, Factory

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken account { id role } }
}
"""
ME = "query Me { me { id email role patient { id displayName } } }"
LOG_ENTRY = """
mutation Log($input: DiaryEntryInput!) {
  logDiaryEntry(input: $input) { id clientId painNow note recordedAt }
}
"""
MY_DIARY = "query Diary { myDiary(first: 10) { edges { node { id clientId painNow note } } } }"


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    token: str = data(await post_graphql(http, LOGIN, {"email": email, "password": password}))["login"]["accessToken"]
    return token


# --- probes -----------------------------------------------------------------------------------------------


async def test_healthz_answers_without_touching_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ok_on_a_migrated_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


@asynccontextmanager
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new database of the session's backend (the same dialect, so shared model metadata stays valid)."""
    if backend == "sqlite":
        yield f"sqlite://{tmp_path / 'empty.db'}"
        return
    name = f"interlude_test_ready_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_readyz_refuses_until_migrations_are_applied(
    db: Database, settings: Settings, tmp_path: Path, now: datetime
) -> None:
    app = create_app(settings, manage_orm=False, clock=lambda: now)
    async with empty_database(db.backend, tmp_path) as url, opened(url), client_for(app) as client:
        pending = await client.get("/readyz")
        assert pending.status_code == 503
        assert pending.json() == {"status": "unavailable", "database": "migrations pending"}
        assert await migrations.pending() > 0

        await migrations.apply(url)
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert await migrations.pending() == 0


async def test_readyz_refuses_when_the_database_is_unreachable(
    db: Database, settings: Settings, tmp_path: Path, now: datetime
) -> None:
    url = unreachable_database(db.backend, tmp_path)
    quick = settings.model_copy(update={"readiness_timeout_seconds": 0.05})
    app = create_app(quick, manage_orm=False, clock=lambda: now)
    async with opened(url), client_for(app) as client:
        responses = [await client.get("/readyz") for _ in range(3)]
    for response in responses:
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "database": "unreachable"}
        assert response.headers["x-request-id"]


# --- request ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/graphql", "/no-such-page"])
async def test_every_response_carries_a_generated_request_id(http: httpx.AsyncClient, path: str) -> None:
    first = await http.get(path)
    second = await http.get(path)
    assert GENERATED_ID.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_safe_incoming_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2_x-1"})
    assert response.headers["x-request-id"] == "lb-7f3a.2_x-1"
    graphql = await post_graphql(http, "{ __typename }", headers={"X-Request-ID": "client-42"})
    assert graphql.headers["x-request-id"] == "client-42"


@pytest.mark.parametrize(
    "unsafe",
    ["has spaces in it", "a" * 200, "line\\nbreak", 'quote"s', "<script>", "semi;colon", "a" * 65],
)
async def test_an_unsafe_incoming_request_id_is_replaced(http: httpx.AsyncClient, unsafe: str) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": unsafe})
    assert response.headers["x-request-id"] != unsafe
    assert GENERATED_ID.match(response.headers["x-request-id"])


async def test_the_longest_safe_request_id_is_kept(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": "b" * 64})
    assert response.headers["x-request-id"] == "b" * 64


# --- authentication over HTTP ------------------------------------------------------------------------------


async def test_login_then_authenticated_diary_round_trip(
    http: httpx.AsyncClient, factory: Factory, now: datetime
) -> None:
    clinic = await factory.clinic()
    who = await factory.patient(clinic, name="Ada Lovelace")
    token = await login(http, who.email.upper())  # emails are matched case-insensitively

    me = data(await post_graphql(http, ME, token=token))["me"]
    assert me["email"] == who.email
    assert me["role"] == "PATIENT"
    assert me["patient"]["displayName"] == "Ada Lovelace"

    client_id = str(uuid4())
    entry_input = {"clientId": client_id, "recordedAt": (now - timedelta(hours=2)).isoformat(), "painNow": 4}
    logged = data(await post_graphql(http, LOG_ENTRY, {"input": {**entry_input, "note": "slept badly"}}, token=token))
    entry = logged["logDiaryEntry"]
    assert entry["clientId"] == client_id
    assert entry["painNow"] == 4

    diary = data(await post_graphql(http, MY_DIARY, token=token))["myDiary"]
    assert [edge["node"] for edge in diary["edges"]] == [
        {"id": entry["id"], "clientId": client_id, "painNow": 4, "note": "slept badly"}
    ]


async def test_a_patient_token_reads_only_their_own_diary(http: httpx.AsyncClient, factory: Factory) -> None:
    clinic = await factory.clinic()
    mine, other = await factory.patient(clinic), await factory.patient(clinic)
    await factory.entry(other, note="not yours")
    token = await login(http, mine.email)
    assert data(await post_graphql(http, MY_DIARY, token=token))["myDiary"]["edges"] == []


async def test_no_token_is_unauthenticated(http: httpx.AsyncClient) -> None:
    response = await post_graphql(http, ME)
    assert response.status_code == 200
    assert codes(response) == ["UNAUTHENTICATED"]
    assert response.json()["data"] is None


def _expired_and_foreign_tokens(services: Services, factory_now: datetime, who: Any) -> dict[str, str]:
    tokens = services.accounts.tokens
    claims = {"account_id": who.account.id, "role": Role.PATIENT, "clinic_id": who.actor.clinic_id}
    expired, _ = tokens.issue(**claims, patient_id=who.patient.id, now=factory_now - tokens.ttl - timedelta(seconds=1))
    foreign = AccessTokens(secret_key="another-deployment-secret-0123456789abcdef", ttl=tokens.ttl)
    forged, _ = foreign.issue(**claims, patient_id=who.patient.id, now=factory_now)
    return {"expired": expired, "signed with another key": forged}


async def test_malformed_expired_and_foreign_tokens_are_unauthenticated(
    http: httpx.AsyncClient, factory: Factory, services: Services, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    valid = await login(http, who.email)
    bad_headers = {
        "garbage token": "Bearer not.a.jwt",
        "empty bearer": "Bearer ",
        "wrong scheme": f"Basic {valid}",
        "tampered": "Bearer " + valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB"),
        **{k: f"Bearer {v}" for k, v in _expired_and_foreign_tokens(services, now, who).items()},
    }
    for label, header in bad_headers.items():
        response = await post_graphql(http, ME, headers={"Authorization": header})
        assert codes(response) == ["UNAUTHENTICATED"], (label, response.text)
        assert response.json()["data"] is None, label
    # The same request with the valid token succeeds, so the refusals above are about the tokens.
    assert data(await post_graphql(http, ME, token=valid))["me"]["email"] == who.email


async def test_login_works_with_a_stale_token_in_the_header(http: httpx.AsyncClient, factory: Factory) -> None:
    who = await factory.patient(await factory.clinic())
    response = await post_graphql(
        http, LOGIN, {"email": who.email, "password": PASSWORD}, headers={"Authorization": "Bearer stale.old.token"}
    )
    assert data(response)["login"]["account"]["role"] == "PATIENT"


async def test_a_failed_login_is_unauthenticated_without_saying_why(http: httpx.AsyncClient, factory: Factory) -> None:
    who = await factory.patient(await factory.clinic())
    wrong_password = await post_graphql(http, LOGIN, {"email": who.email, "password": "not the password"})
    unknown_email = await post_graphql(http, LOGIN, {"email": "nobody@example.test", "password": PASSWORD})
    assert codes(wrong_password) == codes(unknown_email) == ["UNAUTHENTICATED"]
    assert wrong_password.json()["errors"][0]["message"] == unknown_email.json()["errors"][0]["message"]


# --- the errors contract -----------------------------------------------------------------------------------


async def test_a_bad_uuid_variable_is_bad_user_input_naming_the_field(
    http: httpx.AsyncClient, factory: Factory, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    token = await login(http, who.email)
    bad = {"clientId": "not-a-uuid", "recordedAt": now.isoformat(), "painNow": 3}
    response = await post_graphql(http, LOG_ENTRY, {"input": bad}, token=token)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.clientId"}
    assert response.json()["data"] is None
    assert data(await post_graphql(http, MY_DIARY, token=token))["myDiary"]["edges"] == []


async def test_a_missing_required_variable_names_the_variable(http: httpx.AsyncClient) -> None:
    response = await post_graphql(http, LOGIN, {"email": "a@b.test"})
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clientId": None}, "input.clientId"),
        ({"bogus": 1}, "input.bogus"),
        (
            {"sideEffects": [{"code": "NAUSEA", "severity": 1}, {"code": "NAUSEA", "severity": "high"}]},
            "input.sideEffects[1].severity",
        ),
        ({"painLocations": ["HEAD", "ELBOW"]}, "input.painLocations[1]"),
    ],
)
async def test_coercion_errors_name_the_path_inside_the_input(
    http: httpx.AsyncClient, now: datetime, change: dict[str, Any], field: str
) -> None:
    entry = {"clientId": str(uuid4()), "recordedAt": now.isoformat(), **change}
    if change.get("clientId", "") is None:
        del entry["clientId"]
    response = await post_graphql(http, LOG_ENTRY, {"input": entry})
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


@pytest.mark.parametrize(
    "query", ["{ me { id ", "{ noSuchField }", "query { me { id } } query { me { id } }", "mutation { me { id } }"]
)
async def test_syntax_and_validation_errors_are_bad_user_input(http: httpx.AsyncClient, query: str) -> None:
    response = await post_graphql(http, query)
    assert codes(response), response.text
    assert set(codes(response)) == {"BAD_USER_INPUT"}, response.text
    assert all("field" not in e["extensions"] for e in response.json()["errors"])


async def test_a_domain_error_keeps_its_code_and_message(http: httpx.AsyncClient, factory: Factory) -> None:
    who = await factory.patient(await factory.clinic())
    token = await login(http, who.email)
    response = await post_graphql(http, "{ patients(first: 5) { edges { node { id } } } }", token=token)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN"}
    assert error["message"] == "clinic staff only"
    assert error["path"] == ["patients"]


async def test_a_domain_input_error_names_the_field_as_the_api_spells_it(
    http: httpx.AsyncClient, factory: Factory, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    token = await login(http, who.email)
    entry = {"clientId": str(uuid4()), "recordedAt": (now - timedelta(hours=1)).isoformat(), "painWorst": 11}
    response = await post_graphql(http, LOG_ENTRY, {"input": entry}, token=token)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "painWorst"}


async def test_an_unexpected_exception_is_masked_and_logged_with_the_request_id(
    db: Database, settings: Settings, factory: Factory, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    who = await factory.patient(await factory.clinic())
    app = create_app(settings, manage_orm=False, clock=lambda: now)

    async def broken_me(*_: object, **__: object) -> None:
        raise RuntimeError("database driver exploded: secret internals")

    # A boundary fake on this app's own service object only: nothing else shares it.
    app.state.services.accounts.me = broken_me
    async with client_for(app) as client:
        token = await login(client, who.email)
        with caplog.at_level(logging.ERROR, logger="interlude.graphql"):
            response = await post_graphql(client, ME, token=token)

    request_id = response.headers["x-request-id"]
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "Internal error"
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert error["path"] == ["me"]
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text

    [logged] = [r for r in caplog.records if r.name == "interlude.graphql"]
    assert logged.levelno == logging.ERROR
    assert logged.__dict__["request_id"] == request_id
    assert logged.exc_info is not None
    assert logged.exc_info[0] is RuntimeError
    assert "broken_me" in caplog.text  # the traceback reached the log


async def test_an_unexpected_exception_keeps_the_callers_request_id(
    db: Database, settings: Settings, now: datetime
) -> None:
    app = create_app(settings, manage_orm=False, clock=lambda: now)

    async def broken_login(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    app.state.services.accounts.login = broken_login
    async with client_for(app) as client:
        response = await post_graphql(
            client, LOGIN, {"email": "a@b.test", "password": "whatever12"}, headers={"X-Request-ID": "trace-991"}
        )
    assert response.headers["x-request-id"] == "trace-991"
    assert response.json()["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": "trace-991"}


async def test_an_exception_outside_graphql_is_a_500_that_names_its_request_id(
    db: Database, settings: Settings, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    class ExplodingTokens:
        def verify(self, *_: object, **__: object) -> None:
            raise RuntimeError("token store exploded")

    app = create_app(settings, manage_orm=False, clock=lambda: now)
    # A boundary fake on this app's own service object: the bearer check now fails before GraphQL runs.
    app.state.services.accounts.tokens = ExplodingTokens()
    async with client_for(app) as client:
        with caplog.at_level(logging.INFO, logger="interlude.http"):
            response = await post_graphql(client, ME, token="anything")
        after = await client.get("/healthz")

    request_id = response.headers["x-request-id"]
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "requestId": request_id}
    assert "exploded" not in response.text
    [failure] = [r for r in caplog.records if r.getMessage() == "http.unhandled_error"]
    assert failure.__dict__["request_id"] == request_id
    assert failure.exc_info is not None
    assert failure.exc_info[0] is RuntimeError
    [line] = [r for r in caplog.records if r.getMessage() == "http.request" and r.__dict__["request_id"] == request_id]
    assert line.__dict__["status"] == 500
    assert after.status_code == 200  # the app keeps serving


async def test_a_client_that_hangs_up_mid_request_is_logged_not_answered(
    db: Database, settings: Settings, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, manage_orm=False, clock=lambda: now)
    parts: list[Message] = [
        {"type": "http.request", "body": b'{"query": "{ me', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return parts.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"hung-up")],
        "client": ("203.0.113.7", 50000),
        "server": ("interlude.test", 80),
    }
    with caplog.at_level(logging.INFO, logger="interlude.http"):
        await app(scope, receive, send)

    assert sent == []  # nobody is there to read an answer
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("http.")] == [
        "http.client_disconnected",
        "http.request",
    ]
    assert caplog.records[-1].__dict__["status"] == 499


# --- request limits ----------------------------------------------------------------------------------------


async def test_oversized_bodies_are_refused(db: Database, settings: Settings, now: datetime) -> None:
    limited = settings.model_copy(update={"max_body_bytes": 10_000})
    app = create_app(limited, manage_orm=False, clock=lambda: now)
    padding = " " * 12_000
    async with client_for(app) as client:
        small = await post_graphql(client, "{ __typename }")
        big = await post_graphql(client, "{ __typename " + padding + "}")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"query": "{ __typename '
            for _ in range(12):
                yield b" " * 1000
            yield b'}"}'

        streamed = await client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert small.status_code == 200
    assert small.json() == {"data": {"__typename": "Query"}}
    assert big.status_code == 413
    assert streamed.status_code == 413
    assert big.headers["x-request-id"]


async def test_a_body_just_under_the_limit_is_served(db: Database, settings: Settings, now: datetime) -> None:
    limited = settings.model_copy(update={"max_body_bytes": 10_000})
    app = create_app(limited, manage_orm=False, clock=lambda: now)
    async with client_for(app) as client:
        query = "{ __typename " + " " * 9_000 + "}"
        response = await post_graphql(client, query)
    assert len(response.request.content) < 10_000
    assert response.status_code == 200
