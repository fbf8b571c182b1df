"""Prepared operations (schema/prepared.py) answer exactly what Strawberry's path answers: the same data, errors,
codes and exceptions, the same operation name and root field recorded, for every request the checks let through
and every one they refuse; and they take Strawberry's path for anything refused."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
import strawberry
from graphql.execution.executor import Executor
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from api.domain.actor import Actor, RequestMeta
from api.domain.services import Services
from schema import CACHED_DOCUMENTS, InterludeSchema, OperationChoice, SafeParserCache, build_schema, checks, prepared
from schema.combined import combined
from schema.context import Context
from schema.limits import MAX_LIST_ITEMS, Limits
from schema.operation import ROOT_FIELD
from schema.prepared import KNOWN_PARTS, NAMES_PER_DOCUMENT, OPTIONAL_PARTS, Preparation
from schema.storable import StorableText
from tests.conftest import Database
from tests.factories import Factory, PatientUser
from tests.schema.diary_support import entry_input

INTROSPECTION = "{ __schema { queryType { name } } }"
DIARY = "query Diary($n: Int) { myDiary(first: $n) { edges { node { id painNow } } } }"
LOG = "mutation Log($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id painNow note } }"
LIMITS = Limits(depth=5, aliases=30, tokens=2_000, cost=100)


class _Request:
    """What the view leaves in a context: a request whose state the operation's root field is written to."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {"state": {}}
        self.state = self


@dataclass
class Answer:
    kind: type
    data: Any
    errors: list[dict[str, Any]]
    operation: str | None
    root_field: str | None
    extensions: Any


def pair(**options: Any) -> tuple[InterludeSchema, InterludeSchema]:
    """The same schema twice: with its prepared operations, and with every request on Strawberry's path."""
    prepared_schema, strawberry_only = build_schema(**options), build_schema(**options)
    assert isinstance(prepared_schema, InterludeSchema)
    assert isinstance(strawberry_only, InterludeSchema)
    assert prepared_schema.preparation is not None
    strawberry_only.preparation = None
    return prepared_schema, strawberry_only


async def answer(
    schema: strawberry.Schema,
    services: Services,
    now: datetime,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
    operation_name: str | None = None,
    allowed: set[OperationType] | None = None,
) -> Answer | tuple[type, str]:
    meta = RequestMeta(request_id="prepared-test")
    if actor is not None:
        actor = Actor(actor.account_id, actor.role, actor.clinic_id, actor.patient_id, meta=meta)
    request = _Request()
    context = Context(services=services, now=now, actor=actor, meta=meta, request=request)  # type: ignore[arg-type]
    try:
        result = await schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
            allowed_operation_types=allowed,
        )
    except (CannotGetOperationTypeError, InvalidOperationTypeError) as exc:
        return type(exc), str(exc)
    errors = [dict(e.formatted) for e in result.errors or []]
    root_field = request.scope["state"].get(ROOT_FIELD)
    return Answer(type(result), result.data, errors, meta.operation, root_field, result.extensions)


@pytest.fixture
def strawberry_calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The documents that went to Strawberry's own `Schema.execute`."""
    calls: list[str | None] = []
    original = strawberry.Schema.execute

    async def recording(self: strawberry.Schema, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        calls.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(strawberry.Schema, "execute", recording)
    return calls


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The operations whose executor graphql-core's `Executor.build` made, by name."""
    calls: list[str | None] = []
    original = Executor.build.__func__  # type: ignore[attr-defined]

    def recording(cls: type[Executor[Any]], *args: Any, **kwargs: Any) -> Any:
        made = original(cls, *args, **kwargs)
        calls.append(made.operation.name.value if isinstance(made, Executor) and made.operation.name else None)
        return made

    monkeypatch.setattr(Executor, "build", classmethod(recording))
    return calls


@pytest_asyncio.fixture
async def alice(factory: Factory) -> PatientUser:
    return await factory.patient(await factory.clinic())


# Each: the document, its variables (a callable of now, for instants), the operation name sent.
ACCEPTED = {
    "typename": ("{ __typename }", None, None),
    "named": ("query Who { me { id role } }", None, None),
    "name sent": ("query Who { me { id } } query Other { __typename }", None, "Other"),
    "variables": (DIARY, {"n": 3}, None),
    "variable default": ("query($n: Int = 2) { myDiary(first: $n) { edges { cursor } } }", None, None),
    "skipped root field": ("query($s: Boolean!) { a: me @skip(if: $s) { id } __typename }", {"s": True}, None),
    "fragment": ("query { ...F } fragment F on Query { me { id } }", None, None),
    "domain error": ('{ patient(id: "00000000-0000-0000-0000-000000000000") { id } }', None, None),
    "bad id": ('{ patient(id: "nope") { id } }', None, None),
    "variable refused by graphql-core": (LOG, {"input": {"painNow": "five"}}, None),
    "variable missing": ("query($n: Int!) { myDiary(first: $n) { edges { cursor } } }", None, None),
    "page too large": (DIARY, {"n": 100_000}, None),
}

# Accepted cases whose executor graphql-core's `Executor.build` makes, as it coerces (or refuses) the variables: the
# operation's plan (schema/variables.py) declines them. Every other accepted case is executed without `build`.
BUILT_BY_GRAPHQL_CORE = {"variable default", "variable refused by graphql-core", "variable missing"}

REFUSED = {
    "invalid": ("{ nope }", None, None),
    "syntax": ("{ me { id ", None, None),
    "several unnamed": ("query A { __typename } query B { __typename }", None, None),
    "name not sent": ("query A { __typename }", None, "B"),
    "too deep": ("{ me { patient { diary(first: 1) { edges { node { id } } } } } }", None, None),
    "too costly by variable": (DIARY, {"n": 50}, None),
    "long list in variables": (LOG, {"input": {"sideEffects": ["NAUSEA"] * (MAX_LIST_ITEMS + 1)}}, None),
    "unstorable variable": ("query($id: ID!) { patient(id: $id) { id } }", {"id": "a\x00"}, None),
    "unstorable literal": ('{ patient(id: "\\u0000") { id } }', None, None),
    "subscription": ("subscription { alertRaised { id } }", None, None),
    "subscription allowed": ("subscription { alertRaised { id } }", None, None),
}
# The operation types each refused case is sent where they are allowed: Strawberry's default, unless named here.
ALLOWED = {"subscription allowed": set(OperationType)}


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
async def test_what_the_checks_let_through_runs_prepared_and_answers_as_strawberry_does(
    case: str,
    *,
    alice: PatientUser,
    services: Services,
    now: datetime,
    strawberry_calls: list[str | None],
    builds: list[str | None],
) -> None:
    query, variables, name = ACCEPTED[case]
    fast, slow = pair(limits=LIMITS)
    expected = await answer(slow, services, now, query, variables, actor=alice.actor, operation_name=name)
    assert len(builds) == 1
    strawberry_calls.clear()
    builds.clear()
    got = await answer(fast, services, now, query, variables, actor=alice.actor, operation_name=name)
    assert strawberry_calls == []
    assert len(builds) == (case in BUILT_BY_GRAPHQL_CORE)
    assert got == expected


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
async def test_what_a_check_refuses_goes_to_strawberrys_path_and_is_refused_as_before(
    case: str,
    alice: PatientUser,
    services: Services,
    now: datetime,
    strawberry_calls: list[str | None],
) -> None:
    query, variables, name = REFUSED[case]
    fast, slow = pair(limits=LIMITS)
    options: dict[str, Any] = {"actor": alice.actor, "operation_name": name, "allowed": ALLOWED.get(case)}
    expected = await answer(slow, services, now, query, variables, **options)
    assert not isinstance(expected, Answer) or expected.errors, "the case must be refused"
    strawberry_calls.clear()
    got = await answer(fast, services, now, query, variables, **options)
    assert strawberry_calls == [query]
    assert got == expected


async def test_a_mutation_runs_prepared_and_writes_once(
    alice: PatientUser, services: Services, now: datetime, strawberry_calls: list[str | None]
) -> None:
    fast, _ = pair()
    entry = entry_input(now - timedelta(hours=1), note="fine")
    got = await answer(fast, services, now, LOG, {"input": entry}, actor=alice.actor)
    assert isinstance(got, Answer)
    assert got.errors == []
    assert got.data == {"logDiaryEntry": {"id": got.data["logDiaryEntry"]["id"], "painNow": 5, "note": "fine"}}
    assert (got.operation, got.root_field) == ("Log", "logDiaryEntry")
    assert strawberry_calls == []
    # Sent again: the same entry, judged against the stored one, on the same path.
    again = await answer(fast, services, now, LOG, {"input": entry}, actor=alice.actor)
    assert isinstance(again, Answer)
    assert again.data == got.data


async def test_the_same_document_is_let_through_or_refused_by_each_requests_variables(
    alice: PatientUser, services: Services, now: datetime, strawberry_calls: list[str | None]
) -> None:
    fast, slow = pair(limits=LIMITS)
    for n in (3, 50, 3, 50):  # within the cost limit, over it, and again
        expected = await answer(slow, services, now, DIARY, {"n": n}, actor=alice.actor)
        strawberry_calls.clear()
        got = await answer(fast, services, now, DIARY, {"n": n}, actor=alice.actor)
        assert got == expected
        assert strawberry_calls == ([] if n == 3 else [DIARY])
        assert isinstance(got, Answer)
        assert bool(got.errors) == (n == 50)
    assert isinstance(got, Answer)
    assert [e["extensions"]["code"] for e in got.errors] == ["QUERY_TOO_COMPLEX"]


async def test_an_operation_type_the_transport_does_not_allow_is_refused_as_before(
    alice: PatientUser, services: Services, now: datetime, strawberry_calls: list[str | None]
) -> None:
    fast, slow = pair()
    queries_only = {OperationType.QUERY}
    entry = {"input": entry_input(now)}
    expected = await answer(slow, services, now, LOG, entry, actor=alice.actor, allowed=queries_only)
    assert expected == (InvalidOperationTypeError, str(expected[1]))  # type: ignore[index]
    # Prepared and run first where mutations are allowed (as a POST sends it), then sent where they are not (GET).
    strawberry_calls.clear()
    ran = await answer(fast, services, now, LOG, entry, actor=alice.actor)
    assert isinstance(ran, Answer)
    assert ran.errors == []
    assert strawberry_calls == []
    assert await answer(fast, services, now, LOG, entry, actor=alice.actor, allowed=queries_only) == expected
    assert strawberry_calls == [LOG]


async def test_a_check_that_fails_on_this_path_leaves_the_request_to_strawberrys(
    alice: PatientUser,
    services: Services,
    now: datetime,
    strawberry_calls: list[str | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a check failed")

    fast, slow = pair()
    expected = await answer(slow, services, now, DIARY, {"n": 3}, actor=alice.actor)
    # Only this path's own reference: Strawberry's path (`QueryLimits`) runs the limits as before.
    monkeypatch.setattr(prepared, "limit_refusals", failing)
    strawberry_calls.clear()
    assert await answer(fast, services, now, DIARY, {"n": 3}, actor=alice.actor) == expected
    assert strawberry_calls == [DIARY]


async def test_what_validates_against_one_schema_is_prepared_for_that_schema_only(
    db: Database, services: Services, now: datetime, strawberry_calls: list[str | None]
) -> None:
    development, production = build_schema(), build_schema(production=True)
    allowed = await answer(development, services, now, INTROSPECTION)
    assert isinstance(allowed, Answer)
    assert allowed.data == {"__schema": {"queryType": {"name": "Query"}}}
    # The same text, the same parsed document (the parser's cache is shared): production still refuses it.
    strawberry_calls.clear()
    refused = await answer(production, services, now, INTROSPECTION)
    assert isinstance(refused, Answer)
    assert refused.data is None
    assert refused.errors
    assert all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in refused.errors)
    assert all("introspection has been disabled" in e["message"] for e in refused.errors)
    assert strawberry_calls == [INTROSPECTION]


async def test_an_exception_outside_the_fields_is_answered_as_strawberry_answers_it(
    db: Database, services: Services, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the executor failed")

    fast, slow = pair()
    answers = []
    for schema in (slow, fast):
        with monkeypatch.context() as patched:
            # Both paths run the executor's `execute_operation` (the prepared one makes its executor without `build`).
            patched.setattr(schema.execution_context_class, "execute_operation", failing)
            answers.append(await answer(schema, services, now, "{ __typename }"))
    expected, got = answers
    assert isinstance(got, Answer)
    assert got.kind is PreExecutionError
    assert got.errors == [{"message": "the executor failed"}]  # uncoded: the view masks it as INTERNAL
    assert got == expected


async def test_each_request_of_a_prepared_operation_gets_its_own_fragment_tables(
    alice: PatientUser, services: Services, now: datetime, monkeypatch: pytest.MonkeyPatch, builds: list[str | None]
) -> None:
    """The fragments are worked out once per operation (`Built`); a resolver sees its executor's tables
    (`info.fragments`), so each request gets copies: what one request did to them never reaches the next."""
    fast, _ = pair()
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
    original = fast.execution_context_class.execute_operation

    def recording(self: Executor[Any], *args: Any, **kwargs: Any) -> Any:
        seen.append((self.fragment_definitions, self.fragments))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fast.execution_context_class, "execute_operation", recording)
    query = "query Me { ...F } fragment F on Query { me { id } }"
    for _ in range(2):
        got = await answer(fast, services, now, query, actor=alice.actor)
        assert isinstance(got, Answer)
        assert not got.errors
    assert builds == []  # made without graphql-core's `build`
    (definitions, fragments), (definitions_again, fragments_again) = seen
    assert list(definitions) == list(fragments) == ["F"]
    assert definitions_again == definitions
    assert definitions_again is not definitions
    assert fragments_again is not fragments


async def test_operation_names_kept_per_document_are_bounded(db: Database, services: Services, now: datetime) -> None:
    fast, _ = pair()
    assert fast.preparation is not None
    query = f"query Known {{ __typename }} # {uuid4()}"
    for i in range(3 * NAMES_PER_DOCUMENT):
        got = await answer(fast, services, now, query, operation_name=f"Unknown{i}")
        assert got == (CannotGetOperationTypeError, f"Unknown{i}")
    document = SafeParserCache(maxsize=CACHED_DOCUMENTS).cached_parse_document(
        query, **fast.preparation.settings.parse_options
    )
    assert len(fast.preparation._prepared.get(document) or {}) == NAMES_PER_DOCUMENT
    # A name that prepares still runs, prepared or not.
    assert isinstance(await answer(fast, services, now, query, operation_name="Known"), Answer)


async def test_a_prepared_operation_leaves_with_its_document(db: Database, services: Services, now: datetime) -> None:
    fast, _ = pair()
    assert fast.preparation is not None
    query = f"{{ __typename }} # {uuid4()}"
    assert isinstance(await answer(fast, services, now, query), Answer)
    parse = SafeParserCache(maxsize=CACHED_DOCUMENTS).cached_parse_document
    document = weakref.ref(parse(query, **fast.preparation.settings.parse_options))
    assert fast.preparation._prepared.get(document()) is not None  # type: ignore[arg-type]
    kept = len(fast.preparation._prepared)
    # As the parser's cache lets go of the document it has kept longest.
    parse.cache_clear()  # type: ignore[attr-defined]  # an lru_cache
    gc.collect()
    assert document() is None
    assert len(fast.preparation._prepared) == kept - 1


def test_the_apps_schemas_are_prepared_and_a_part_missing_or_not_known_turns_preparation_off() -> None:
    known = KNOWN_PARTS | {SafeParserCache, OperationChoice}
    for production in (False, True):
        schema = build_schema(production=production)
        assert isinstance(schema, InterludeSchema)
        assert schema.preparation is not None
    parts = checks(LIMITS)

    def schema_of(parts: list[Callable[[], SchemaExtension]], **config: Any) -> InterludeSchema:
        return InterludeSchema(query=_Query, extensions=[combined(parts)], config=StrawberryConfig(**config))

    assert Preparation.of(schema_of(parts), known, OPTIONAL_PARTS) is not None
    # A part this path does not know; one it stands in for missing; one twice.
    assert Preparation.of(schema_of(parts), known - {StorableText}, OPTIONAL_PARTS) is None
    assert Preparation.of(schema_of(parts[1:]), known, OPTIONAL_PARTS) is None
    assert Preparation.of(schema_of([*parts, StorableText]), known, OPTIONAL_PARTS) is None
    # Incremental execution, which this path does not do.
    incremental = schema_of(parts, enable_experimental_incremental_execution=True)
    assert Preparation.of(incremental, known, OPTIONAL_PARTS) is None

    class Extra(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            yield

    plain = strawberry.Schema(query=_Query, extensions=[Extra])
    assert Preparation.of(plain, known | {Extra}, OPTIONAL_PARTS) is None  # not one combined extension


def test_the_parser_options_and_rules_are_those_the_extensions_set() -> None:
    development, production = build_schema(limits=LIMITS), build_schema(production=True)
    assert isinstance(development, InterludeSchema)
    assert isinstance(production, InterludeSchema)
    assert development.preparation is not None
    assert production.preparation is not None
    assert development.preparation.settings.parse_options == {"max_tokens": LIMITS.tokens}
    extra = set(production.preparation.settings.rules) - set(development.preparation.settings.rules)
    assert [rule.__name__ for rule in extra] == ["NoSchemaIntrospectionCustomRule"]
    # Parsed with those options: a document over the token limit does not prepare.
    assert development.preparation.prepared("{ " + "__typename " * LIMITS.tokens + "}", None) is None
    assert development.preparation.prepared("{ __typename }", None) is not None


@strawberry.type
class _Query:
    ok: int = 1
