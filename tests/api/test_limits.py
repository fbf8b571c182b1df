"""Query limits: bytes, depth, aliases, tokens and estimated cost, refused with QUERY_TOO_COMPLEX before anything
runs."""

from __future__ import annotations

import argparse
import gc
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast
from unittest.mock import patch
from uuid import uuid4

import graphql
import pytest
import pytest_asyncio
import uvicorn
from graphql import (
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    is_object_type,
    parse,
    print_ast,
)
from strawberry import Schema
from strawberry.schema.schema import validate_document

from api import cli
from api.app import create_app
from api.domain.actor import Actor, RequestMeta, Role
from api.domain.paging import DEFAULT_PAGE, MAX_PAGE
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.services import Services
from api.settings import Settings
from schema import CACHED_DOCUMENTS, SafeParserCache, build_schema, documents, limits
from schema.context import Context
from schema.limits import CEILING, LIST_WEIGHTS, MAX_LIST_ITEMS, Limits, Size, long_list, measure, oversized
from tests.api.support import client_for, codes, post_graphql
from tests.conftest import Database, count_queries, make_settings
from tests.factories import Factory, PatientUser
from tests.graphql import Result
from tests.schema.test_alert_subscription import bearer, running, websocket

if TYPE_CHECKING:
    from functools import _CacheInfo

SCHEMA = build_schema()
GRAPHQL: GraphQLSchema = SCHEMA._schema

ME = "{ me { id patient { id } } }"  # depth 3; reads the database
DIARY = "query($n: Int) { myDiary(first: $n) { edges { node { id } } } }"  # cost 1 + n × 3


def diary_literal(n: int) -> str:
    return f"{{ myDiary(first: {n}) {{ edges {{ node {{ id }} }} }} }}"


def size(document: str, variables: dict[str, Any] | None = None) -> Size:
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    return measure(GRAPHQL, parsed, operation, variables or {})


async def run(
    schema: Schema,
    services: Services,
    now: datetime,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
) -> Result:
    context = Context(services=services, now=now, actor=actor, meta=RequestMeta(request_id="limits-test"))
    result = await schema.execute(query, variable_values=variables, context_value=context)
    return Result(data=result.data, errors=[dict(e.formatted) for e in result.errors or []])


def limited(**limits: int) -> Schema:
    return build_schema(limits=Limits(**{"depth": 50, "aliases": 200, "tokens": 100_000, "cost": 10**6, **limits}))


# --- what is measured ----------------------------------------------------------------------------------------


def test_the_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.model_construct()
    assert Limits() == Limits(
        depth=defaults.max_query_depth,
        aliases=defaults.max_query_aliases,
        tokens=defaults.max_query_tokens,
        cost=defaults.max_query_cost,
        bytes=defaults.max_query_bytes,
    )


def test_depth_counts_fields_not_fragments() -> None:
    assert size("{ __typename }").depth == 1
    assert size(ME).depth == 3
    inline = "{ me { ... on Account { patient { ... { id } } } } }"
    spread = "{ me { ...A } } fragment A on Account { patient { ...P } } fragment P on Patient { id }"
    assert size(inline).depth == size(spread).depth == 3


@pytest.mark.parametrize(
    ("first", "cost"),
    [("first: 10", 1 + 10 * 3), ("first: 100", 1 + 100 * 3), ("", 1 + DEFAULT_PAGE * 3), ("first: null", 61)],
    ids=["ten", "a-full-page", "default-page", "null-is-the-default"],
)
def test_a_connection_weighs_its_selection_by_first(first: str, cost: int) -> None:
    arguments = f"({first})" if first else ""
    assert size(f"{{ myDiary{arguments} {{ edges {{ node {{ id }} }} }} }}").cost == cost


def test_first_from_a_variable_or_its_default() -> None:
    assert size(DIARY, {"n": 50}).cost == 1 + 50 * 3
    assert size(DIARY).cost == 1 + DEFAULT_PAGE * 3
    with_default = "query($n: Int = 7) { myDiary(first: $n) { edges { node { id } } } }"
    assert size(with_default).cost == 1 + 7 * 3
    assert size(with_default, {"n": 9}).cost == 1 + 9 * 3


@pytest.mark.parametrize(
    "first", [101, 0, -5, 10**6, 101.0, 1e300], ids=["101", "zero", "negative", "a-million", "101.0", "1e300"]
)
def test_a_first_out_of_range_weighs_nothing_since_the_resolver_refuses_it(first: float) -> None:
    # It is refused with BAD_USER_INPUT ("first") when it runs, before a row is read (design §6).
    assert size(DIARY, {"n": first}).cost == 1 + 1 * 3


@pytest.mark.parametrize(
    ("first", "items"),
    [(100.0, 100), (7.0, 7), (99.5, MAX_PAGE), (float("inf"), MAX_PAGE), ("100", MAX_PAGE), (True, MAX_PAGE)],
    ids=["100.0", "7.0", "fraction", "infinity", "string", "boolean"],
)
def test_a_first_that_is_not_an_int_weighs_what_it_may_run_as(first: object, items: int) -> None:
    # graphql-core runs `100.0` (JSON's `1e2`) as the Int 100; what it would refuse weighs a full page all the same.
    assert size(DIARY, {"n": first}).cost == 1 + items * 3


def test_a_document_sent_again_is_measured_once_per_page_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser cache hands every request the same tree: its size is kept per page size its variables ask for,
    and is what measuring afresh gives, whatever the order of the requests."""
    document = (
        "query($n: Int, $m: Int = 4, $on: Boolean!) { myDiary(first: $n) { edges { node { id } } } "
        "a: myDiary(first: $m) @include(if: $on) { edges { cursor } } }"
    )
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    measured: list[int] = []
    original = limits._Measure.__init__

    def counted(self: Any, *args: Any) -> None:
        measured.append(1)
        original(self, *args)

    monkeypatch.setattr(limits._Measure, "__init__", counted)
    requests: list[dict[str, Any]] = [
        {"n": 10, "on": True},
        {"n": 100, "on": True},
        {"n": 10, "on": False},  # the same page sizes: `on` weighs nothing
        {"n": 10.0, "m": 4, "on": True},  # a float page of 10, and the default given
        {"n": 100, "m": 50, "on": True},
        {"on": True},  # the default page
        {"n": 100, "on": True},
    ]
    for variables in requests:
        assert measure(GRAPHQL, parsed, operation, variables) == size(document, variables)
    # Fresh ones by `size`, and one for each of the four distinct (n, m) page sizes through the kept tree.
    assert len(measured) == len(requests) + 4


def test_connections_multiply_when_nested_and_other_lists_weigh_their_declared_size() -> None:
    nested = """{ patients(first: 10) { edges { node { diary(first: 5) { edges { node { id } } } } } } }"""
    assert size(nested).cost == 1 + 10 * (1 + 1 + (1 + 5 * 3))
    sessions = "{ patient(id: 1) { sessions { id status } } }"
    assert size(sessions).cost == 1 + 1 + LIST_WEIGHTS["Patient", "sessions"] * 2
    # A page of patients with their check-ins: 500 check-ins each (the service's cap), not a handful.
    prompts = "{ patients(first: 10) { edges { node { prompts { id status dueAt } } } } }"
    assert LIST_WEIGHTS["Patient", "prompts"] == 500
    assert size(prompts).cost == 1 + 10 * (1 + 1 + (1 + 500 * 3))
    # A list of leaves (`CourseOutcome.sessions`, dates) weighs 1, as any leaf.
    courses, outcomes = LIST_WEIGHTS["Patient", "courses"], LIST_WEIGHTS["Patient", "outcomes"]
    leaves = "{ patient(id: 1) { courses { id } outcomes { sessions } } }"
    assert size(leaves).cost == 1 + (1 + courses * 1) + (1 + outcomes * 1)


def test_aliases_count_wherever_they_are_including_each_spread_of_a_fragment() -> None:
    assert size("{ a: __typename b: me { c: id } }").aliases == 3
    fragment = "fragment F on Query { x: __typename y: __typename }"
    assert size("{ ...F }" + fragment).aliases == 2
    assert size("{ ...F ... on Query { ...F z: __typename } }" + fragment).aliases == 5


def test_fragment_cycles_are_measured_without_hanging() -> None:
    cycle = "{ ...A } fragment A on Query { me { id } ...B } fragment B on Query { ...A __typename }"
    assert size(cycle) == Size(depth=2, aliases=0, cost=3)
    assert size("{ ...A } fragment A on Query { ...A }") == Size()


def test_a_long_chain_of_fragments_does_not_exhaust_the_stack() -> None:
    chain = 5000
    document = (
        "{ ...F0 }\n"
        + "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(chain))
        + f"\nfragment F{chain} on Query {{ me {{ id }} }}"
    )
    assert size(document) == Size(depth=2, aliases=0, cost=2)


def test_fragments_doubling_each_other_are_capped_and_measured_at_once() -> None:
    doubling = 200  # 2^200 copies of `me { id }`
    document = (
        "{ ...F0 }\n"
        + "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} a{i}: __typename ...F{i + 1} }}" for i in range(doubling))
        + f"\nfragment F{doubling} on Query {{ me {{ id }} }}"
    )
    started = time.perf_counter()
    measured = size(document)
    assert time.perf_counter() - started < 1.0
    assert measured.cost == measured.aliases == CEILING


def test_introspection_is_not_measured() -> None:
    # GraphiQL's query is 15 fields deep; production refuses introspection before limits apply.
    introspection = size(get_introspection_query(descriptions=True))
    assert introspection.depth == 1
    assert introspection.cost == 1


# --- refused before anything runs -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def alice(factory: Factory) -> PatientUser:
    return await factory.patient(await factory.clinic())


async def test_depth_just_under_passes_and_just_over_is_refused(
    alice: PatientUser, services: Services, now: datetime
) -> None:
    schema = limited(depth=3)
    with count_queries() as allowed:
        under = await run(schema, services, now, ME, actor=alice.actor)
    assert under.ok()["me"]["patient"]["id"] == str(alice.patient.id)
    assert allowed.statements

    deeper = "{ me { id patient { id diary(first: 1) { pageInfo { hasNextPage } } } } }"
    with count_queries() as refused:
        over = await run(schema, services, now, deeper, actor=alice.actor)
    assert over.codes == ["QUERY_TOO_COMPLEX"]
    assert over.data is None
    assert over.errors[0]["message"] == "The query nests fields 5 deep; the limit is 3."
    assert refused.statements == []


async def test_aliases_just_under_pass_and_just_over_are_refused(
    alice: PatientUser, services: Services, now: datetime
) -> None:
    schema = limited(aliases=2)
    fragment = " fragment F on Query { b: me { id } }"
    with count_queries() as allowed:
        under = await run(schema, services, now, "{ a: me { id } ...F }" + fragment, actor=alice.actor)
    assert set(under.ok()) == {"a", "b"}
    assert allowed.statements

    with count_queries() as refused:
        over = await run(
            schema, services, now, "{ a: me { id } ...F ... on Query { c: __typename } }" + fragment, actor=alice.actor
        )
    assert over.codes == ["QUERY_TOO_COMPLEX"]
    assert over.errors[0]["message"] == "The query uses 3 aliases; the limit is 2."
    assert refused.statements == []


@pytest.mark.parametrize("literal", [False, True], ids=["variable", "literal"])
async def test_cost_just_under_passes_and_just_over_is_refused(
    alice: PatientUser, services: Services, now: datetime, literal: bool
) -> None:
    schema = limited(cost=31)

    async def diary(n: int) -> Result:
        if literal:
            return await run(schema, services, now, diary_literal(n), actor=alice.actor)
        return await run(schema, services, now, DIARY, {"n": n}, actor=alice.actor)

    with count_queries() as allowed:
        under = await diary(10)
    assert under.ok()["myDiary"]["edges"] == []
    assert allowed.statements

    with count_queries() as refused:
        over = await diary(11)
    assert over.codes == ["QUERY_TOO_COMPLEX"]
    assert over.errors[0]["message"].startswith("The query's estimated cost is 34; the limit is 31.")
    assert refused.statements == []


@pytest.mark.parametrize("first", ["100", "100.0", "1e2", "1.0e+2"])
async def test_a_first_sent_as_a_float_is_weighed_as_the_int_it_runs_as(
    settings: Settings, now: datetime, first: str
) -> None:
    # graphql-core runs each of these as `first: 100`; the default page fits the limit, a hundred items do not.
    limited_app = settings.model_copy(update={"max_query_cost": 1 + DEFAULT_PAGE * 3})
    # Written out, so that `1e2` reaches the server as a client wrote it.
    body = '{"query": "%s", "variables": {"n": %s}}'
    async with client_for(create_app(limited_app, manage_orm=False, clock=lambda: now)) as client:
        refused = await client.post(
            "/graphql", content=body % (DIARY, first), headers={"content-type": "application/json"}
        )
        within = await client.post(
            "/graphql", content=body % (DIARY, "20.0"), headers={"content-type": "application/json"}
        )
    assert codes(refused) == ["QUERY_TOO_COMPLEX"], refused.text
    assert refused.json()["errors"][0]["message"].startswith(f"The query's estimated cost is {1 + 100 * 3};")
    assert codes(within) == ["UNAUTHENTICATED"]  # past the limits, to the resolver


async def test_a_first_above_a_page_is_still_bad_user_input_not_too_complex(
    alice: PatientUser, services: Services, now: datetime
) -> None:
    result = await run(limited(cost=31), services, now, DIARY, {"n": 101}, actor=alice.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["first"])


async def test_tokens_just_under_pass_and_just_over_are_refused(services: Services, now: datetime) -> None:
    schema = limited(tokens=50)
    under = await run(schema, services, now, "{" + " __typename" * 48 + " }")  # 50 tokens
    assert under.ok() == {"__typename": "Query"}
    over = await run(schema, services, now, "{" + " __typename" * 49 + " }")
    assert over.codes == ["QUERY_TOO_COMPLEX"]
    assert over.errors[0]["message"] == "The document has more than 50 tokens, the limit."


@pytest.mark.parametrize(
    "document",
    ["{" + " a" * 500_000 + " }", "{ a\n" + "# padding\n" * 100_000 + "}"],
    ids=["a-megabyte-of-fields", "a-megabyte-of-comments"],
)
async def test_a_huge_document_is_refused_without_being_read_to_the_end(
    services: Services, now: datetime, document: str
) -> None:
    result = await run(SCHEMA, services, now, document)
    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["message"] == f"The document has more than {Limits().tokens} tokens, the limit."
    # The parser stopped at the token past the limit: a few kilobytes into the megabyte.
    [location] = result.errors[0]["locations"]
    assert location["line"] <= Limits().tokens + 2
    assert location["column"] <= 5 * Limits().tokens


async def test_a_document_nested_past_what_the_parser_reads_is_too_complex(services: Services, now: datetime) -> None:
    nested = "{" + " me {" * 600 + " id" + " }" * 600 + " }"
    result = await run(SCHEMA, services, now, nested)
    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["message"] == "The document is nested too deeply; the depth limit is 10."


async def test_a_fragment_cycle_is_a_validation_error_answered_at_once(services: Services, now: datetime) -> None:
    result = await run(SCHEMA, services, now, "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert set(result.codes) == {"BAD_USER_INPUT"}
    assert "Cannot spread fragment" in result.errors[0]["message"]


async def test_exponential_fragments_are_refused_as_too_complex(
    alice: PatientUser, services: Services, now: datetime
) -> None:
    document = (
        "{ ...F0 }\n"
        + "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
        + "\nfragment F40 on Query { me { id } }"
    )
    with count_queries() as refused:
        result = await run(SCHEMA, services, now, document, actor=alice.actor)
    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert result.errors[0]["message"].startswith(f"The query's estimated cost is over {CEILING};")
    assert refused.statements == []


async def test_a_refused_mutation_writes_nothing(alice: PatientUser, services: Services, now: datetime) -> None:
    log = """mutation($input: DiaryEntryInput!) {
      a: logDiaryEntry(input: $input) { id } b: logDiaryEntry(input: $input) { id }
    }"""
    entry = {"clientId": "0b5d1c1e-7c55-4f6b-9a39-2f1c1f3e9d10", "recordedAt": now.isoformat(), "painNow": 3}
    with count_queries() as refused:
        result = await run(limited(aliases=1), services, now, log, {"input": entry}, actor=alice.actor)
    assert result.codes == ["QUERY_TOO_COMPLEX"]
    assert refused.statements == []


# --- bytes, before parsing ---------------------------------------------------------------------------------------

LONG_SEARCH = '{ patients(search: "%s") { pageInfo { hasNextPage } } }' % ("A" * 100_000)  # one token


def test_bytes_are_counted_in_utf8_not_characters() -> None:
    limits = Limits(bytes=1024)
    assert oversized("{ __typename }" + " " * 1010, limits) is None  # 1024 bytes
    refused = oversized("{ __typename }" + " " * 1011, limits)
    assert refused is not None
    assert refused.message == "The document has 1025 bytes; the limit is 1024. Send values as variables."
    assert refused.extensions == {"code": "QUERY_TOO_COMPLEX"}
    # 601 characters, 1202 bytes.
    assert oversized("{ __typename }#" + "é" * 586, limits) is not None
    assert oversized("{ __typename }#\udc80", limits) is None  # a lone surrogate (JSON allows it) still measures
    assert oversized(None, limits) is None


async def test_a_long_document_over_http_is_refused_before_it_is_parsed(settings: Settings, now: datetime) -> None:
    # A single string literal is one token: the token limit does not stop it, and the parser would read all of it.
    parsed = _parser_cache()
    app = create_app(settings, manage_orm=False, clock=lambda: now)
    async with client_for(app) as client:
        before = parsed.cache_info()
        refused = await post_graphql(client, LONG_SEARCH)
        assert parsed.cache_info().misses == before.misses
        allowed = await post_graphql(client, f"{{ a{uuid4().hex}: __typename }}")
        assert parsed.cache_info().misses == before.misses + 1
    assert codes(refused) == ["QUERY_TOO_COMPLEX"]
    assert refused.json()["errors"][0]["message"].startswith(f"The document has {len(LONG_SEARCH)} bytes; the limit is")
    assert refused.json()["data"] is None
    assert codes(allowed) == []


async def test_a_long_document_over_the_websocket_is_refused_before_it_is_parsed(
    db: Database, factory: Factory, now: datetime
) -> None:
    who = await factory.patient(await factory.clinic())
    app = create_app(make_settings(db.url), manage_orm=False, clock=lambda: now)
    parsed = _parser_cache()
    async with running(app) as server, websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(app.state.services, who.actor, now)}"}) == {
            "type": "connection_ack"
        }
        before = parsed.cache_info()
        await ws.subscribe("long", LONG_SEARCH)
        refused = await ws.receive()
        assert parsed.cache_info().misses == before.misses
        # The connection stays open, for documents within the limit.
        assert (await ws.run("short", "{ me { id } }"))["payload"]["data"]["me"]["id"]
    assert (refused["id"], refused["type"]) == ("long", "error")
    assert [e["extensions"]["code"] for e in refused["payload"]] == ["QUERY_TOO_COMPLEX"]
    assert refused["payload"][0]["message"].startswith(f"The document has {len(LONG_SEARCH)} bytes;")


def test_serve_bounds_a_websocket_message_as_it_bounds_a_request_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's own bound is 16 MiB a message. Only the server's entry point is replaced: nothing listens.
    options: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **given: options.update(given))
    settings = make_settings().model_copy(update={"max_body_bytes": 20_000})
    assert cli._serve(settings, argparse.Namespace(host=None, port=None)) == 0
    assert options["ws_max_size"] == 20_000


# --- the settings reach the app ---------------------------------------------------------------------------------


LIMITED_BY_SETTING = {
    "bytes": ("max_query_bytes", 1024, "{ __typename }" + " " * 1010, "{ __typename }" + " " * 1011),
    "depth": ("max_query_depth", 2, "{ me { id } }", "{ me { patient { id } } }"),
    "aliases": ("max_query_aliases", 0, "{ __typename }", "{ a: __typename }"),
    "tokens": ("max_query_tokens", 100, "{" + " __typename" * 98 + " }", "{" + " __typename" * 99 + " }"),
    "cost": ("max_query_cost", 31, diary_literal(10), diary_literal(11)),
}


@pytest.mark.parametrize("limit", sorted(LIMITED_BY_SETTING))
async def test_each_setting_limits_the_app(settings: Settings, now: datetime, limit: str) -> None:
    setting, value, under, over = LIMITED_BY_SETTING[limit]
    app = create_app(settings.model_copy(update={setting: value}), manage_orm=False, clock=lambda: now)
    async with client_for(app) as client:
        allowed = await post_graphql(client, under)
        refused = await post_graphql(client, over)
    assert "QUERY_TOO_COMPLEX" not in codes(allowed), allowed.text
    assert codes(refused) == ["QUERY_TOO_COMPLEX"], refused.text
    assert refused.status_code == 200  # application/json; test_graphql_over_http.py has the other media type


# --- every list a caller can ask for or send is bounded --------------------------------------------------------

# Each connection, with the caller who may read it and the document that reaches it.
CONNECTIONS = {
    ("Query", "myDiary"): ("patient", "{ myDiary(first: 101) { edges { node { id } } } }"),
    ("Query", "myQuestionnaires"): ("patient", "{ myQuestionnaires(first: 101) { edges { node { id } } } }"),
    ("Query", "patients"): ("clinician", "{ patients(first: 101) { edges { node { id } } } }"),
    ("Query", "alerts"): ("clinician", "{ alerts(first: 101) { edges { node { id } } } }"),
    ("Query", "auditEvents"): ("admin", "{ auditEvents(first: 101) { edges { node { id } } } }"),
    ("Patient", "diary"): (
        "clinician",
        "query($id: ID!) { patient(id: $id) { diary(first: 101) { edges { node { id } } } } }",
    ),
    ("Patient", "questionnaires"): (
        "clinician",
        "query($id: ID!) { patient(id: $id) { questionnaires(first: 101) { edges { node { id } } } } }",
    ),
    ("Patient", "alerts"): (
        "clinician",
        "query($id: ID!) { patient(id: $id) { alerts(first: 101) { edges { node { id } } } } }",
    ),
}
# Each list argument and list input field, with what bounds it.
LIST_INPUTS = {
    "Mutation.syncDiaryEntries(entries)": "at most 200 entries (BAD_USER_INPUT)",
    "DiaryEntryInput.painLocations": "an enum; a region listed twice is refused",
    "DiaryEntryPatch.painLocations": "an enum; a region listed twice is refused",
    "DiaryEntryInput.sideEffects": "known codes; a code listed twice is refused",
    "DiaryEntryPatch.sideEffects": "known codes; a code listed twice is refused",
    "QuestionnaireInput.answers": "the instrument's items; an item answered twice is refused",
    "Query.alerts(status)": "an enum filter",
    "Query.alerts(severity)": "an enum filter",
    "Patient.alerts(status)": "an enum filter",
    "Patient.alerts(severity)": "an enum filter",
    "Query.myPrompts(status)": "an enum filter",
}


def _connections() -> set[tuple[str, str]]:
    return {
        (type_name, field_name)
        for type_name, named in GRAPHQL.type_map.items()
        if isinstance(named, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in named.fields.items()
        if get_named_type(field.type).name.endswith("Connection")
    }


def _list_inputs() -> set[str]:
    found = set()
    for type_name, named in GRAPHQL.type_map.items():
        if isinstance(named, GraphQLObjectType) and not type_name.startswith("__"):
            for field_name, field in named.fields.items():
                found |= {
                    f"{type_name}.{field_name}({a})"
                    for a, arg in field.args.items()
                    if is_list_type(get_nullable_type(arg.type))
                }
        elif isinstance(named, GraphQLInputObjectType):
            found |= {
                f"{type_name}.{f}" for f, value in named.fields.items() if is_list_type(get_nullable_type(value.type))
            }
    return found


def test_every_connection_takes_first_and_is_checked_below() -> None:
    assert _connections() == set(CONNECTIONS), "a new connection: add it to CONNECTIONS (and bound its `first`)"
    for type_name, field_name in CONNECTIONS:
        argument = GRAPHQL.type_map[type_name].fields[field_name].args["first"]  # type: ignore[attr-defined]
        assert str(argument.type) == "Int"


def _object_lists() -> set[tuple[str, str]]:
    return {
        (type_name, field_name)
        for type_name, named in GRAPHQL.type_map.items()
        if isinstance(named, GraphQLObjectType) and not type_name.startswith("__")
        if not type_name.endswith("Connection")  # edges: counted by `first`
        for field_name, field in named.fields.items()
        if is_list_type(get_nullable_type(field.type)) and is_composite_type(get_named_type(field.type))
    }


def _holders(type_name: str) -> set[tuple[str, str]]:
    """The fields whose value is (a list of) `type_name`."""
    return {
        (holder, field_name)
        for holder, named in GRAPHQL.type_map.items()
        if isinstance(named, GraphQLObjectType) and not holder.startswith("__")
        for field_name, field in named.fields.items()
        if get_named_type(field.type).name == type_name
    }


def _reachable(type_name: str) -> set[str]:
    """Object types a selection on `type_name` can reach."""
    seen, pending = set(), [type_name]
    while pending:
        named = GRAPHQL.type_map[pending.pop()]
        if is_object_type(named) and named.name not in seen:
            seen.add(named.name)
            pending.extend(get_named_type(f.type).name for f in named.fields.values())
    return seen


def test_every_list_of_objects_has_a_declared_weight() -> None:
    assert _object_lists() == set(LIST_WEIGHTS), "a new list of objects: give it its weight in LIST_WEIGHTS"


def test_lists_weighed_as_one_are_never_multiplied() -> None:
    # Instrument definitions hang from the root only; only aliases repeat them.
    assert _holders("Instrument") == {("Query", "instruments"), ("Query", "instrument")}
    assert _reachable("Instrument") == {"Instrument", "InstrumentItem", "InstrumentOption", "InstrumentBand"}
    # A sync's results are the entries just sent: nothing under them reads anything more.
    assert _reachable("SyncResult") == {"SyncResult", "DiaryEntry", "SideEffectReport", "FieldError"}
    assert {key for key, weight in LIST_WEIGHTS.items() if weight == 1} == {
        ("Query", "instruments"),
        ("Instrument", "items"),
        ("Instrument", "bands"),
        ("InstrumentItem", "options"),
        ("Mutation", "syncDiaryEntries"),
    }


def _prompt(who: PatientUser, due_at: datetime) -> Prompt:
    return Prompt(
        id=uuid4(),
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        plan_id=uuid4(),
        rule_id="limits",
        anchor=f"n:{uuid4().hex[:12]}",
        instrument="daily_diary",
        due_at=due_at,
        deliver_at=due_at,
        expires_at=due_at + timedelta(hours=6),
        status=PromptStatus.SENT,
        created_at=due_at,
        updated_at=due_at,
    )


CAPPED = {
    ("Patient", "prompts"): ("clinician", "query($id: ID!) { patient(id: $id) { prompts { id } } }"),
    ("Query", "myPrompts"): ("patient", "{ myPrompts { id } }"),
}


@pytest.mark.parametrize("field", sorted(CAPPED), ids=".".join)
async def test_a_capped_list_weighs_what_its_service_returns_at_most(
    factory: Factory, services: Services, now: datetime, field: tuple[str, str]
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    callers = {"patient": alice.actor, "clinician": (await factory.staff(clinic)).actor}
    weight = LIST_WEIGHTS[field]
    await Prompt.filter(patient_id=alice.patient.id).delete()  # registration plans some
    await Prompt.bulk_create([_prompt(alice, now - timedelta(minutes=i)) for i in range(weight + 1)])
    caller, document = CAPPED[field]
    variables = {"id": str(alice.patient.id)} if "$id" in document else None
    result = (await run(SCHEMA, services, now, document, variables, actor=callers[caller])).ok()
    listed = result["patient"]["prompts"] if "patient" in result else result["myPrompts"]
    assert len(listed) == weight


def test_every_list_input_is_known_to_be_bounded() -> None:
    assert _list_inputs() == set(LIST_INPUTS), "a new list input: say what bounds it (and test that it holds)"


@pytest.mark.parametrize("connection", sorted(CONNECTIONS), ids=".".join)
async def test_a_first_above_a_hundred_is_refused_on_every_connection(
    factory: Factory, services: Services, now: datetime, connection: tuple[str, str]
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    callers = {
        "patient": alice.actor,
        "clinician": (await factory.staff(clinic)).actor,
        "admin": (await factory.staff(clinic, Role.ADMIN)).actor,
    }
    caller, document = CONNECTIONS[connection]
    variables = {"id": str(alice.patient.id)} if "$id" in document else None
    refused = await run(SCHEMA, services, now, document, variables, actor=callers[caller])
    assert (refused.codes, refused.fields) == (["BAD_USER_INPUT"], ["first"])
    allowed = await run(SCHEMA, services, now, document.replace("101", "100"), variables, actor=callers[caller])
    assert allowed.errors == []


async def test_a_sync_of_more_than_two_hundred_entries_is_refused_before_it_runs(
    alice: PatientUser, services: Services, now: datetime
) -> None:
    sync = "mutation($e: [DiaryEntryInput!]!) { syncDiaryEntries(entries: $e) { clientId status } }"
    entries = [{"clientId": str(uuid4()), "recordedAt": now.isoformat(), "painNow": 1} for _ in range(201)]
    with count_queries() as writes:
        result = await run(SCHEMA, services, now, sync, {"e": entries}, actor=alice.actor)
    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["entries"])
    assert [s for s in writes.statements if s != "SELECT"] == []


@pytest.mark.parametrize(
    ("document", "caller"),
    [
        ("query($s: [AlertStatus!]) { alerts(status: $s) { edges { node { id } } } }", "clinician"),
        ("query($s: [PromptStatus!]) { myPrompts(status: $s) { id } }", "patient"),
    ],
    ids=["alerts", "myPrompts"],
)
async def test_a_filter_longer_than_any_list_is_refused_as_input_before_it_reaches_sql(
    factory: Factory, services: Services, now: datetime, document: str, caller: str
) -> None:
    # PostgreSQL takes at most 32767 parameters: 40000 statuses would fail the statement (INTERNAL).
    clinic = await factory.clinic()
    actors = {"patient": (await factory.patient(clinic)).actor, "clinician": (await factory.staff(clinic)).actor}
    status = "OPEN" if caller == "clinician" else "SENT"
    with count_queries() as refused_sql:
        refused = await run(SCHEMA, services, now, document, {"s": [status] * 40_000}, actor=actors[caller])
    assert (refused.codes, refused.fields) == (["BAD_USER_INPUT"], ["s"])
    assert refused.errors[0]["message"] == f"s has 40000 items; at most {MAX_LIST_ITEMS} are accepted."
    assert refused_sql.statements == []
    allowed = await run(SCHEMA, services, now, document, {"s": [status] * MAX_LIST_ITEMS}, actor=actors[caller])
    assert allowed.errors == []


def test_long_lists_are_found_inside_inputs_and_written_in_the_document() -> None:
    def long(document: str, variables: dict[str, Any]) -> tuple[str | None, int] | None:
        parsed = parse(document)
        operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
        return long_list(parsed, operation, variables)

    sync = "mutation($e: [DiaryEntryInput!]!) { syncDiaryEntries(entries: $e) { clientId } }"
    effects = [{"code": "NAUSEA", "severity": 1}] * (MAX_LIST_ITEMS + 1)
    assert long(sync, {"e": [{"painNow": 1}, {"sideEffects": effects}]}) == ("e[1].sideEffects", 1001)
    assert long(sync, {"e": [{"sideEffects": effects[:-1]}] * 3}) is None
    assert long(sync, {"undeclared": [1] * 5000}) is None
    statuses = "[" + "OPEN " * (MAX_LIST_ITEMS + 1) + "]"
    written = "{ alerts(status: " + statuses + ") { pageInfo { hasNextPage } } }"
    assert long(written, {}) == (None, MAX_LIST_ITEMS + 1)
    in_a_fragment = "{ ...F } fragment F on Query { alerts(status: " + statuses + ") { pageInfo { hasNextPage } } }"
    assert long(in_a_fragment, {}) == (None, MAX_LIST_ITEMS + 1)


def test_a_documents_longest_literal_is_found_once_and_forgotten_with_the_document() -> None:
    statuses = "[" + "OPEN " * (MAX_LIST_ITEMS + 1) + "]"
    parsed = parse("{ alerts(status: " + statuses + ") { pageInfo { hasNextPage } } }")
    operation = get_operation_ast(parsed)
    assert operation is not None
    walks: list[int] = []
    real_visit = graphql.visit

    def counted(document: Any, visitor: Any) -> Any:
        walks.append(id(document))
        return real_visit(document, visitor)

    with patch("schema.limits.visit", counted):
        for _ in range(3):
            assert long_list(parsed, operation, {}) == (None, MAX_LIST_ITEMS + 1)
        # Another tree of the same text is another document (the parser cache's entry was replaced, say).
        again = parse(print_ast(parsed))
        assert long_list(again, get_operation_ast(again) or operation, {}) == (None, MAX_LIST_ITEMS + 1)
    assert walks == [id(parsed), id(again)]

    known = len(limits._LONGEST_LITERALS)
    del parsed, again, operation
    gc.collect()
    assert len(limits._LONGEST_LITERALS) == known - 2


# --- caches -----------------------------------------------------------------------------------------------------


class LruCache(Protocol):
    def cache_info(self) -> _CacheInfo: ...


def _parser_cache() -> LruCache:
    """The cache the schema's extensions parse through (module-level, shared by every schema)."""
    # The schema's one extension runs its parts (schema/combined.py).
    extensions = [part for e in SCHEMA.get_extensions() for part in getattr(e, "parts", [e])]
    parser = next(e for e in extensions if isinstance(e, SafeParserCache))
    # Typed by Strawberry as a plain callable; it is a `functools.lru_cache` wrapper.
    return cast("LruCache", parser.cached_parse_document)


async def test_the_parser_cache_is_bounded_and_used(services: Services, now: datetime) -> None:
    used = _parser_cache()
    assert used.cache_info().maxsize == CACHED_DOCUMENTS
    document = f"{{ a{uuid4().hex}: __typename }}"  # never seen before
    before = used.cache_info()
    for _ in range(2):
        assert (await run(SCHEMA, services, now, document)).errors == []
    after = used.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


async def test_a_document_is_validated_once_and_its_errors_kept_with_it(services: Services, now: datetime) -> None:
    validations: list[int] = []
    real_validate = validate_document

    def counted(schema: Any, document: Any, rules: Any) -> Any:
        validations.append(id(document))
        return real_validate(schema, document, rules)

    invalid = f"{{ a{uuid4().hex}: noSuchField }}"  # never seen before
    with patch("schema.documents.validate_document", counted):
        for _ in range(2):
            assert (await run(SCHEMA, services, now, f"{{ a{uuid4().hex[:8]}x: __typename }}")).errors == []
        assert len(validations) == 2  # two texts, two documents
        first = await run(SCHEMA, services, now, invalid)
        again = await run(SCHEMA, services, now, invalid)
        assert len(validations) == 3
    assert again.errors == first.errors
    assert "noSuchField" in str(first.errors[0]["message"])


def test_kept_validations_leave_with_their_documents() -> None:
    """Bounded by the parser cache: a document no longer held by anyone takes its entry with it."""
    known = len(documents._VALIDATED)
    parsed = parse("{ __typename }")
    rules = tuple(graphql.specified_rules)
    assert documents.validated(SCHEMA._schema, parsed, rules) == []
    assert documents.validated(SCHEMA._schema, parsed, rules) == []
    assert len(documents._VALIDATED) == known + 1
    # Other rules are another validation of the same document, replacing the kept one.
    assert documents.validated(SCHEMA._schema, parsed, rules[:1]) == []
    assert len(documents._VALIDATED) == known + 1
    del parsed
    gc.collect()
    assert len(documents._VALIDATED) == known
