"""GraphQL over HTTP (graphql.github.io/graphql-over-http): media types, status codes, GET for queries only,
refusals of malformed requests, batching, and the websocket's origin check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.types import Message

from api.app import create_app
from api.domain.errors import ErrorCode
from api.graphql_http import GRAPHQL_RESPONSE, JSON, graphql_response, negotiate, status_of
from api.http_status import http_status
from api.settings import Settings
from schema import build_schema
from tests.api.support import client_for
from tests.conftest import Database, count_queries
from tests.factories import PASSWORD, Factory

GQL = {"accept": GRAPHQL_RESPONSE}
LEGACY = {"accept": JSON}
# 11 fields deep; the default limit is 10.
DEEP = """{ patient(id: "x") { alerts { edges { node { patient { alerts { edges { node { patient {
  sessions { id } } } } } } } } } } }"""
# One string literal of 70 kB: a single token, past the byte limit (64 KiB).
LONG = '{ patients(search: "%s") { pageInfo { hasNextPage } } }' % ("x" * 70_000)
LOGIN = (
    "mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }"
)


@pytest_asyncio.fixture
async def client(settings: Settings, now: datetime) -> AsyncIterator[httpx.AsyncClient]:
    """The app without a database: everything here is answered before a resolver reads a row."""
    async with client_for(create_app(settings, manage_orm=False, clock=lambda: now)) as c:
        yield c


async def post(
    client: httpx.AsyncClient, body: object, headers: dict[str, str] | None = None, *, raw: bytes | None = None
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return await client.post("/graphql", content=content, headers={"content-type": JSON, **(headers or {})})


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


def media(response: httpx.Response) -> str:
    return response.headers["content-type"]


# --- the media type of the response -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/json, */*", JSON),
        ("text/html, */*;q=0.1", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.9, {JSON}", JSON),
        (f"{JSON};q=0.5, {GRAPHQL_RESPONSE};q=0.6", GRAPHQL_RESPONSE),
        ("text/html", None),
        (f"{JSON};q=0", None),
        (f"{JSON}; charset=iso-8859-1", None),
        ("nonsense", None),
    ],
)
def test_negotiation(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, JSON), ({"accept": "*/*"}, JSON), (LEGACY, JSON), (GQL, GRAPHQL_RESPONSE)],
    ids=["no-accept", "anything", "json", "graphql-response"],
)
async def test_the_response_is_in_the_negotiated_type(
    client: httpx.AsyncClient, headers: dict[str, str], expected: str
) -> None:
    request = client.build_request("POST", "/graphql", json={"query": "{ __typename }"}, headers=headers)
    if "accept" not in headers:
        del request.headers["accept"]  # httpx sends */* unless told otherwise
    response = await client.send(request)
    assert response.status_code == 200
    assert media(response) == f"{expected}; charset=utf-8"
    assert response.json() == {"data": {"__typename": "Query"}}
    # Health data, negotiated: no cache keeps it, none serves one type for another.
    assert response.headers["cache-control"] == "no-store"
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize("accept", ["text/html", f"{JSON};q=0", "image/png, text/plain"])
async def test_an_accept_that_allows_neither_type_is_406(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(client, {"query": "{ __typename }"}, {"accept": accept})
    assert response.status_code == 406
    assert codes(response) == ["BAD_USER_INPUT"]
    assert response.headers["x-request-id"]


# --- status codes with application/graphql-response+json -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"query": "{ me { id "}, "BAD_USER_INPUT", None),
        ({"query": "{ noSuchField }"}, "BAD_USER_INPUT", None),
        (
            {"query": "query($n: Int) { myDiary(first: $n) { pageInfo { hasNextPage } } }", "variables": {"n": "x"}},
            "BAD_USER_INPUT",
            "n",
        ),
        ({"query": LOGIN, "variables": {"email": "a@b.test"}}, "BAD_USER_INPUT", "password"),
        ({"query": "query A { __typename } query B { __typename }"}, "BAD_USER_INPUT", None),
        ({"query": "query A { __typename }", "operationName": "C"}, "BAD_USER_INPUT", None),
        ({"query": "{" + "".join(f" a{i}: __typename" for i in range(16)) + " }"}, "QUERY_TOO_COMPLEX", None),
        ({"query": DEEP}, "QUERY_TOO_COMPLEX", None),
        ({"query": "{" + " __typename" * 3000 + " }"}, "QUERY_TOO_COMPLEX", None),
        ({"query": LONG}, "QUERY_TOO_COMPLEX", None),
    ],
    ids=[
        "parse",
        "validation",
        "coercion",
        "missing-variable",
        "no-operation-chosen",
        "unknown-operation",
        "aliases",
        "depth",
        "tokens",
        "bytes",
    ],
)
async def test_a_request_error_is_400_without_data(
    client: httpx.AsyncClient, body: dict[str, Any], code: str, field: str | None
) -> None:
    response = await post(client, body, GQL)
    assert response.status_code == 400, response.text
    assert media(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in response.json()
    assert codes(response) == [code] * len(codes(response))
    assert response.json()["errors"][0]["extensions"].get("field") == field
    # application/json keeps the legacy answer: 200, `data` null, the same errors.
    legacy = await post(client, body, LEGACY)
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert legacy.json()["errors"] == response.json()["errors"]


async def test_a_field_error_is_200_with_data_even_when_null(client: httpx.AsyncClient) -> None:
    refused_root = await post(client, {"query": "{ me { id } }"}, GQL)
    assert refused_root.status_code == 200
    assert refused_root.json()["data"] is None
    assert codes(refused_root) == ["UNAUTHENTICATED"]

    partial = await post(client, {"query": '{ __typename patient(id: "x") { id } }'}, GQL)
    assert partial.status_code == 200
    assert partial.json()["data"] == {"__typename": "Query", "patient": None}
    assert codes(partial) == ["UNAUTHENTICATED"]


async def test_operation_name_chooses_among_several(client: httpx.AsyncClient) -> None:
    document = "query A { __typename } query B { me { id } }"
    chosen = await post(client, {"query": document, "operationName": "A"}, GQL)
    assert (chosen.status_code, chosen.json()) == (200, {"data": {"__typename": "Query"}})
    other = await post(client, {"query": document, "operationName": "B"}, GQL)
    assert (other.status_code, codes(other)) == (200, ["UNAUTHENTICATED"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"data": {"x": 1}}, 200),
        ({"data": None, "errors": [{"message": "m", "path": ["me"], "extensions": {"code": "UNAUTHENTICATED"}}]}, 200),
        ({"errors": [{"message": "m", "extensions": {"code": "BAD_USER_INPUT"}}]}, 400),
        ({"errors": [{"message": "m", "extensions": {"code": "QUERY_TOO_COMPLEX"}}]}, 400),
        ({"errors": [{"message": "m", "extensions": {"code": "UNAUTHENTICATED"}}]}, 401),
        ({"errors": [{"message": "m", "extensions": {"code": "FORBIDDEN"}}]}, 403),
        ({"errors": [{"message": "m", "extensions": {"code": "RATE_LIMITED"}}]}, 429),
        ({"errors": [{"message": "m", "extensions": {"code": "INTERNAL", "requestId": "r"}}]}, 500),
        ({"errors": [{"message": "m", "extensions": {"code": "UNAVAILABLE"}}]}, 503),
    ],
    ids=[
        "data",
        "null-data",
        "bad-input",
        "too-complex",
        "unauthenticated",
        "forbidden",
        "rate-limited",
        "internal",
        "unavailable",
    ],
)
def test_status_of_a_graphql_response(body: dict[str, Any], status: int) -> None:
    assert status_of(GRAPHQL_RESPONSE, body) == status
    assert status_of(JSON, {**body, "data": body.get("data")}) == 200


def test_each_error_code_has_one_http_status_for_graphql_and_exports() -> None:
    assert {code: http_status(code) for code in ErrorCode} == {
        "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400, "CONFLICT": 409,
        "PROMPT_EXPIRED": 400, "RATE_LIMITED": 429, "QUERY_TOO_COMPLEX": 400, "UNAVAILABLE": 503, "INTERNAL": 500,
    }  # fmt: skip
    assert http_status(None) == http_status("SOMETHING_NEW") == 400


# --- requests that are not GraphQL-over-HTTP requests -------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/graphql", "application/x-www-form-urlencoded", f"{JSON}; charset=latin-1", ""],
)
async def test_a_post_that_is_not_json_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": content_type, **GQL}
    )
    assert response.status_code == 415
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "data" not in response.json()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"query": ', "The request body is not valid JSON"),
        (b"NONSENSE", "The request body is not valid JSON"),
        (b'{"query": "{ __typename }", "x": "\xff"}', "The request body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "The request body is not valid JSON"),
        (
            b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}]',
            "Batched requests are not supported: send one operation per request",
        ),
        (b'"{ __typename }"', "The request body must be a JSON object"),
        (b"null", "The request body must be a JSON object"),
        (b'{"qeury": "{ __typename }"}', "The request has no GraphQL document (`query`)"),
        (b'{"query": ""}', "The request has no GraphQL document (`query`)"),
        (b'{"query": {"x": 1}}', "`query` must be a string"),
        (b'{"query": "{ __typename }", "variables": [7]}', "`variables` must be an object"),
        (b'{"query": "{ __typename }", "operationName": 7}', "`operationName` must be a string"),
        (b'{"query": "{ __typename }", "extensions": "x"}', "`extensions` must be an object"),
    ],
    ids=[
        "truncated",
        "not-json",
        "not-utf8",
        "nested-too-deep",
        "batch",
        "string",
        "null",
        "no-query",
        "empty-query",
        "query-object",
        "variables-list",
        "operation-name-number",
        "extensions-string",
    ],
)
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_a_malformed_request_is_400_in_either_type(
    client: httpx.AsyncClient, raw: bytes, message: str, accept: str
) -> None:
    response = await post(client, None, {"accept": accept}, raw=raw)
    assert response.status_code == 400
    assert media(response) == f"{accept}; charset=utf-8"
    assert response.json() == {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}
    assert response.headers["x-request-id"]


def test_batching_is_off() -> None:
    # Strawberry's batching would run a JSON array of operations; off, an array is refused (above).
    assert build_schema().config.batching_config is None


# --- GET: queries only -------------------------------------------------------------------------------------------


async def test_a_query_over_get_is_served(client: httpx.AsyncClient) -> None:
    params = {
        "query": "query Q { a: __typename } query R($on: Boolean!) { b: __typename c: __typename @include(if: $on) }",
        "variables": json.dumps({"on": False}),
        "operationName": "R",
        "extensions": json.dumps({}),
    }
    response = await client.get("/graphql", params=params, headers=GQL)
    assert (response.status_code, response.json()) == (200, {"data": {"b": "Query"}})
    assert media(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    # An empty operationName is no operationName.
    single = await client.get("/graphql", params={"query": "{ __typename }", "operationName": ""}, headers=LEGACY)
    assert (single.status_code, single.json()) == (200, {"data": {"__typename": "Query"}})


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ('mutation { logout(refreshToken: "x") }', None),
        ('query Q { __typename } mutation M { logout(refreshToken: "x") }', "M"),
        ("subscription { alertRaised { id } }", None),
    ],
    ids=["mutation", "mutation-chosen-by-name", "subscription"],
)
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_anything_but_a_query_over_get_is_405(
    client: httpx.AsyncClient, query: str, operation_name: str | None, accept: str
) -> None:
    params = {"query": query, **({"operationName": operation_name} if operation_name else {})}
    response = await client.get("/graphql", params=params, headers={"accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["BAD_USER_INPUT"]
    assert response.headers["x-request-id"]


async def test_a_subscription_over_get_points_to_the_websocket(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "subscription { alertRaised { id } }"}, headers=GQL)
    assert response.status_code == 405
    assert (
        response.json()["errors"][0]["message"] == "Subscriptions are served over the websocket (graphql-transport-ws)"
    )


async def test_other_methods_are_405(client: httpx.AsyncClient) -> None:
    head = await client.head("/graphql", params={"query": "{ __typename }"})
    assert (head.status_code, head.headers["allow"]) == (405, "GET, POST")
    put = await client.put("/graphql", json={"query": "{ __typename }"})
    assert put.status_code == 405


async def test_a_mutation_over_get_runs_nothing(http: httpx.AsyncClient, factory: Factory) -> None:
    who = await factory.patient(await factory.clinic())
    with count_queries() as statements:
        response = await http.get(
            "/graphql", params={"query": LOGIN, "variables": json.dumps({"email": who.email, "password": PASSWORD})}
        )
    assert response.status_code == 405
    assert statements.statements == []
    # The same over POST signs in: the refusal is about the method.
    signed_in = await http.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": who.email, "password": PASSWORD}}
    )
    assert signed_in.json()["data"]["login"]["accessToken"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "{ __typename }", "variables": "{not json"}, "`variables` must be JSON"),
        ({"query": "{ __typename }", "variables": "[1]"}, "`variables` must be an object"),
        ({"query": "{ __typename }", "extensions": "{"}, "`extensions` must be JSON"),
        ({"operationName": "Q"}, "The request has no GraphQL document (`query`)"),
    ],
    ids=["variables-not-json", "variables-list", "extensions-not-json", "no-query"],
)
async def test_a_malformed_get_is_400(client: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
    response = await client.get("/graphql", params=params, headers=GQL)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}


async def test_a_subscription_over_post_is_a_request_error(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "subscription { alertRaised { id } }"}, GQL)
    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["message"] == "Subscriptions are served over the websocket (graphql-transport-ws)"
    )
    assert codes(await post(client, {"query": "subscription { alertRaised { id } }"}, LEGACY)) == ["BAD_USER_INPUT"]


# --- errors keep their codes and masking in the new media type ----------------------------------------------------


async def test_an_unexpected_failure_is_masked_with_its_request_id(
    db: Database, settings: Settings, factory: Factory, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    app = create_app(settings, manage_orm=False, clock=lambda: now)

    async def broken_me(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    app.state.services.accounts.me = broken_me
    async with client_for(app) as c:
        login = await c.post("/graphql", json={"query": LOGIN, "variables": {"email": who.email, "password": PASSWORD}})
        token = login.json()["data"]["login"]["accessToken"]
        response = await post(c, {"query": "{ me { id } }"}, {**GQL, "authorization": f"Bearer {token}"})
    assert response.status_code == 200  # a field error: `data` is there, null
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": response.headers["x-request-id"]}
    assert "secret" not in response.text


# --- production and the websocket -----------------------------------------------------------------------------------


async def handshake(app: Starlette, origin: str | None) -> str:
    """The app's first answer to a graphql-transport-ws upgrade: websocket.accept, or websocket.close (403)."""
    headers = [(b"host", b"interlude.test"), *([(b"origin", origin.encode())] if origin else [])]
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.7", 50000),
        "server": ("interlude.test", 80),
        "subprotocols": ["graphql-transport-ws"],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return str(sent[0]["type"])


async def test_a_cross_origin_websocket_is_refused_unless_allowed(settings: Settings, now: datetime) -> None:
    allowing = settings.model_copy(update={"cors_origins": ["https://clinic.example"]})
    app = create_app(allowing, manage_orm=False, clock=lambda: now)
    assert await handshake(app, "https://evil.example") == "websocket.close"
    assert await handshake(app, "https://clinic.example") == "websocket.accept"
    assert await handshake(app, "http://interlude.test") == "websocket.accept"  # same origin
    assert await handshake(app, None) == "websocket.accept"  # not a browser: no ambient credentials to abuse
    closed = create_app(settings, manage_orm=False, clock=lambda: now)
    assert await handshake(closed, "https://clinic.example") == "websocket.close"


@pytest.mark.parametrize(
    ("document", "variables", "hint"),
    [
        ("{ mee { id } }", None, "'me'"),
        ("{ patients(firstt: 1) { pageInfo { hasNextPage } } }", None, "'first'"),
        ("{ alerts(status: [OPN]) { pageInfo { hasNextPage } } }", None, "'OPEN'"),
        ("query($s: [AlertStatus!]) { alerts(status: $s) { pageInfo { hasNextPage } } }", {"s": ["OPN"]}, "'OPEN'"),
        ("mutation($i: DiaryEntryInput!) { logDiaryEntry(input: $i) { id } }", {"i": {"painNoww": 1}}, "'painNow'"),
        ("query($x: Strin) { __typename }", None, "'String'"),
    ],
    ids=["field", "argument", "enum-literal", "enum-variable", "input-field", "type"],
)
async def test_production_suggests_no_name_of_the_schema(
    document: str, variables: dict[str, Any] | None, hint: str
) -> None:
    production = await build_schema(production=True).execute(document, variable_values=variables)
    development = await build_schema().execute(document, variable_values=variables)
    assert any(hint in e.message for e in development.errors or [])
    assert production.errors
    assert not any("Did you mean" in e.message or hint in e.message for e in production.errors)


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"note": 'über 😀 "quoted" \\ </script>', "n": 2**53, "x": 1.5, "none": None}},
        # What orjson refuses and the standard library escapes: a lone surrogate (an error quoting the document).
        {"errors": [{"message": "Syntax Error: Unexpected '\ud800'."}], "data": None},
        {"data": {"big": 2**70}},
    ],
)
def test_a_response_body_is_the_json_the_standard_library_would_write(body: dict[str, Any]) -> None:
    encoded = graphql_response(JSON, body, 200).body
    assert json.loads(bytes(encoded)) == json.loads(json.dumps(body))


def test_what_the_standard_library_cannot_encode_is_still_refused() -> None:
    # A programming error stays one, as before orjson: no instant or dataclass quietly becomes a string.
    with pytest.raises(TypeError):
        graphql_response(JSON, {"data": {"at": datetime(2026, 11, 26, tzinfo=UTC)}}, 200)
