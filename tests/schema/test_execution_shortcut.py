"""The plain-field shortcut (schema/execution.py) answers exactly what graphql-core answers: the same data, the
same errors at the same paths, for every shape it takes a shortcut on and every case it must hand back."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
import strawberry
from graphql import parse
from graphql.execution import executor as executor_module
from graphql.execution.executor import Executor
from strawberry.extensions import FieldExtension, ParserCache
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.types import ExecutionResult, Info

from schema import build_schema, execution
from schema.execution import PlainLeaf, PlainLeafExecutionContext, PlainObject, plain_fields


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Leaf:
    number: int
    maybe: int | None
    label: str
    colour: Colour
    colours: list[Colour]
    loose: list[int | None]
    at: datetime
    ratio: float
    uid: UUID
    day: date
    extra: JSON | None = None
    extras: list[JSON] | None = None

    @strawberry.field
    def computed(self) -> int:
        return self.number * 2

    @strawberry.field
    async def later(self) -> int:
        return self.number + 1

    @strawberry.field
    def sync_failing(self) -> int:
        if self.number == 2:
            raise ValueError("no value now")
        return self.number

    @strawberry.field
    async def failing(self) -> int:
        raise ValueError("no value")

    @strawberry.field
    async def failing_maybe(self) -> int | None:
        raise ValueError("no maybe")


@strawberry.type
class Edge:
    cursor: str
    node: Leaf


@strawberry.type
class Holder:
    edges: list[Edge]
    loose_edges: list[Edge | None]
    first: Leaf
    maybe_first: Leaf | None


def leaf(n: int, **overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "number": n,
        "maybe": None if n % 2 else n,
        "label": f"leaf {n}",
        "colour": Colour.RED if n % 2 else Colour.BLUE,
        "colours": [Colour.RED, Colour.BLUE],
        "loose": [n, None],
        "at": datetime(2026, 11, 26, 12, n, tzinfo=UTC),
        "ratio": n + 0.5,
        "uid": UUID(int=n),
        "day": date(2026, 11, n),
    }
    values.update(overrides)
    return Leaf(**values)


def holder(*leaves: Leaf, loose: list[Edge | None] | None = None) -> Holder:
    edges = [Edge(cursor=f"c{i}", node=x) for i, x in enumerate(leaves)]
    return Holder(
        edges=edges, loose_edges=loose if loose is not None else [*edges, None], first=leaves[0], maybe_first=None
    )


GOOD = holder(leaf(1), leaf(2), leaf(3))


def schemas(root: Holder) -> tuple[strawberry.Schema, strawberry.Schema]:
    @strawberry.type
    class Query:
        @strawberry.field
        def holder(self) -> Holder:
            return root

        @strawberry.field
        def maybe_holder(self) -> Holder | None:
            return root

    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query)
    fast.execution_context_class = PlainLeafExecutionContext.for_schema(fast._schema)
    return plain, fast


async def both(document: str, root: Holder = GOOD) -> tuple[ExecutionResult, ExecutionResult]:
    plain, fast = schemas(root)
    return await plain.execute(document), await fast.execute(document)


def same(expected: ExecutionResult, actual: ExecutionResult) -> None:
    assert actual.data == expected.data
    shown = [(e.message, e.path, e.locations) for e in expected.errors or []]
    assert [(e.message, e.path, e.locations) for e in actual.errors or []] == shown


PLAIN_LEAVES = "number maybe label colour colours loose at ratio uid day"
ALL_LEAVES = f"{PLAIN_LEAVES} computed later"


@pytest.mark.parametrize(
    "document",
    [
        f"{{ holder {{ edges {{ cursor node {{ {ALL_LEAVES} }} }} first {{ number }} maybeFirst {{ number }} }} }}",
        # Aliases, the same field twice, fragments and __typename.
        "{ holder { e: edges { c: cursor n: node { a: number b: number __typename } } } }",
        "{ holder { edges { ...E } } } fragment E on Edge { cursor node { ...L label } } fragment L on Leaf { colour }",
        # Directives decide what is selected before any field runs.
        "{ holder { edges @include(if: true) { cursor @skip(if: true) node { number @include(if: false) label } } } }",
        # Nullable items, one of them null.
        "{ holder { looseEdges { cursor node { number } } } }",
        # Plain fields only, down to the leaves: one walk of the selection's plan.
        f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} first {{ label }} maybeFirst {{ number }} }} }}",
        "{ holder { looseEdges { cursor node { number at } } e: edges { node { n: number } } } }",
    ],
)
async def test_a_plain_selection_answers_what_graphql_core_answers(document: str) -> None:
    expected, actual = await both(document)
    assert not expected.errors
    same(expected, actual)


@pytest.mark.parametrize(
    ("root", "document"),
    [
        # null in a non-null leaf: the error bubbles to the nearest nullable parent.
        (holder(leaf(1, number=None)), "{ maybeHolder { edges { node { number } } } }"),
        # A value the scalar refuses.
        (holder(leaf(1, number="many")), "{ maybeHolder { edges { node { number } } } }"),
        (holder(leaf(1, number=2**31)), "{ maybeHolder { edges { node { number } } } }"),
        (holder(leaf(1, maybe=-(2**31) - 1)), "{ maybeHolder { first { maybe } } }"),
        (holder(leaf(1, colour="green")), "{ maybeHolder { first { colour } } }"),
        # A Float that is not finite.
        (holder(leaf(1, ratio=float("inf"))), "{ maybeHolder { first { ratio } } }"),
        (holder(leaf(1, ratio=float("nan"))), "{ maybeHolder { edges { node { ratio } } } }"),
        # null inside a list of non-null leaves, and a list that is not one.
        (holder(leaf(1, colours=[Colour.RED, None])), "{ maybeHolder { first { colours } } }"),
        (holder(leaf(1, colours="RED")), "{ maybeHolder { first { colours } } }"),
        # An exception instance as a value, and a missing attribute.
        (holder(leaf(1, label=ValueError("stored error"))), "{ maybeHolder { first { label } } }"),
        # null in a non-null list of objects, and a null non-null object.
        (Holder(edges=[None], loose_edges=[], first=leaf(1), maybe_first=None), "{ maybeHolder { edges { cursor } } }"),  # type: ignore[list-item]
        (Holder(edges=[], loose_edges=[], first=None, maybe_first=None), "{ maybeHolder { first { number } } }"),  # type: ignore[arg-type]
        # A resolver failing inside list items: synchronously bubbling, and after an await.
        (GOOD, "{ maybeHolder { edges { cursor node { number failing } } } }"),
        (GOOD, "{ holder { edges { cursor node { number failingMaybe } } } }"),
        (GOOD, "{ holder { looseEdges { node { later failing } } } }"),
        (GOOD, "{ holder { looseEdges { node { number syncFailing } } } }"),
        (GOOD, "{ maybeHolder { edges { node { later syncFailing } } } }"),
        (holder(leaf(2)), "{ maybeHolder { first { syncFailing } } }"),
    ],
)
async def test_errors_are_reported_as_graphql_core_reports_them(root: Holder, document: str) -> None:
    expected, actual = await both(document, root)
    assert expected.errors
    same(expected, actual)


class Label(str):
    pass


class Instant(datetime):
    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "an instant of its own"


class Identifier(UUID):
    def __str__(self) -> str:
        return "an identifier of its own"


@pytest.mark.parametrize(
    "root",
    [
        # Values the scalars coerce: a bool as an Int, a str subclass as a String, the ends of Int's 32 bits.
        holder(leaf(1, number=True, label=Label("sub"))),
        holder(leaf(1, number=2**31 - 1, maybe=-(2**31))),
        # Those whose coercion is written out for one exact type (schema/execution.py `WrittenOut`), given values of
        # that type and of others: an offset and a naive instant, a date as a DateTime, subclasses that answer
        # differently, an int and a bool as a Float, a str as a UUID, an instant as a Date.
        holder(leaf(1, at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))), leaf(2)),
        holder(leaf(1, at=datetime(2026, 1, 2, 3, 4)), leaf(2, at=date(2026, 1, 2))),
        holder(leaf(1, at=Instant(2026, 1, 2, tzinfo=UTC), uid=Identifier(int=7))),
        holder(leaf(1, ratio=3), leaf(2, ratio=True), leaf(3, ratio=-0.0)),
        holder(leaf(1, uid="not a uuid"), leaf(2, day=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))),
    ],
)
async def test_values_a_scalar_coerces_are_answered_as_graphql_core_answers_them(root: Holder) -> None:
    expected, actual = await both(f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} }} }}", root)
    assert not expected.errors
    same(expected, actual)
    assert type(cast("Any", actual.data)["holder"]["edges"][0]["node"]["label"]) is type(
        cast("Any", expected.data)["holder"]["edges"][0]["node"]["label"]
    )


class Later:
    """An awaitable standing as a value, which can be awaited again (each schema of a comparison awaits it)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self._value().__await__()

    async def _value(self) -> object:
        return self.value


@pytest.mark.parametrize(
    "root",
    [
        holder(leaf(1, extra=Later({"a": 1}))),
        holder(leaf(1, extras=[{"b": 2}, Later({"c": 3})])),
        holder(leaf(1, label=Later("later label"))),
    ],
)
async def test_an_awaitable_leaf_value_is_awaited_as_graphql_core_awaits_it(root: Holder) -> None:
    """A scalar whose coercion takes anything (JSON) must not answer the awaitable itself."""
    expected, actual = await both("{ holder { first { extra extras label } } }", root)
    assert not expected.errors
    same(expected, actual)


async def test_a_selection_of_plain_fields_only_is_answered_in_one_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """graphql-core collects and executes the holder's selection once, after its root field's resolver: the edges,
    their nodes and every leaf are then answered by the plan, not collected and executed object by object."""
    objects: list[str] = []
    original = Executor.collect_and_execute_subfields

    def counted(self: Any, return_type: Any, *args: Any) -> Any:
        objects.append(return_type.name)
        return original(self, return_type, *args)

    monkeypatch.setattr(Executor, "collect_and_execute_subfields", counted)
    _, fast = schemas(GOOD)
    result = await fast.execute(f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} first {{ number }} }} }}")
    assert not result.errors
    assert objects == ["Holder"]


async def test_a_selection_is_compiled_once_and_its_answer_kept_for_later_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[int] = []
    original = execution._compile

    def counted(plan: execution.Plan) -> execution.Answer:
        compiled.append(len(plan))
        return original(plan)

    monkeypatch.setattr(execution, "_compile", counted)
    _, fast = schemas(GOOD)
    document = f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} first {{ number }} }} }}"
    first = await fast.execute(document)
    # Holder's selection, an edge's, a node's, `first`'s: each once, though there are three edges.
    assert sorted(compiled) == [1, 2, 2, len(PLAIN_LEAVES.split())]
    again = await fast.execute(document)
    assert sorted(compiled) == [1, 2, 2, len(PLAIN_LEAVES.split())]
    assert again.data == first.data
    assert not first.errors
    # The same fields under other response names are another selection.
    await fast.execute("{ holder { first { n: number } } }")
    assert len(compiled) == 6


async def test_the_compiled_answers_a_schema_keeps_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "COMPILED_PLANS", 3)
    plain, fast = schemas(GOOD)
    context_class = cast("type[PlainLeafExecutionContext]", fast.execution_context_class)
    for name in ("number", "label", "maybe", "colour", "at"):
        document = f"{{ holder {{ first {{ {name} }} edges {{ cursor }} }} }}"
        same(await plain.execute(document), await fast.execute(document))
        assert 0 < len(context_class.compiled) <= 3


def test_an_attribute_that_is_not_a_python_name_is_read_all_the_same() -> None:
    """Strawberry's attributes are Python names, but a plan does not rely on it: any other is read with getattr."""
    for attribute in ("class", "with-dash"):
        plain = PlainLeaf(attribute, str, nullable=False, unchanged=str)
        answer = execution._compile((("value", plain, None, None),))
        assert answer(SimpleNamespace(**{attribute: "read"})) == {"value": "read"}
        assert answer(SimpleNamespace()) is execution._MISSING


async def test_a_missing_attribute_is_reported_as_graphql_core_reports_it() -> None:
    root = holder(leaf(1))
    del root.first.__dict__["label"]
    expected, actual = await both("{ maybeHolder { first { label } } }", root)
    assert expected.errors
    same(expected, actual)


def test_the_table_holds_the_plain_fields_of_the_real_schema_and_nothing_with_a_resolver() -> None:
    table = plain_fields(build_schema()._schema)

    assert isinstance(table[("DiaryEntry", "painNow")], PlainLeaf)
    assert isinstance(table[("DiaryEntry", "painLocations")], PlainLeaf)  # a list of enums
    assert isinstance(table[("DiaryEntryEdge", "node")], PlainObject)
    edges = table[("DiaryEntryConnection", "edges")]
    assert isinstance(edges, PlainObject)
    assert edges.is_list
    # Fields with resolvers or arguments always go through graphql-core.
    assert ("Patient", "diary") not in table
    assert ("Patient", "lastEntry") not in table
    assert ("Query", "myDiary") not in table


def test_the_real_schema_executes_with_the_shortcut() -> None:
    context_class = build_schema().execution_context_class
    assert isinstance(context_class, type)
    assert issubclass(context_class, PlainLeafExecutionContext)
    table = cast("type[PlainLeafExecutionContext]", context_class).plain
    assert plain_fields(build_schema()._schema).keys() == table.keys()


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        return str(next_(source, info, **kwargs)).upper()


@strawberry.type
class Guarded:
    secret: str | None = strawberry.field(permission_classes=[Deny])
    shouted: str = strawberry.field(extensions=[Upper()])
    plain: str = "plain"


@strawberry.type
class WithProperty:
    ok: str
    bad: str | None = None


async def test_permission_classes_and_field_extensions_always_run() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def guarded(self) -> Guarded:
            return Guarded(secret="s", shouted="quiet")

    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query)
    fast.execution_context_class = PlainLeafExecutionContext.for_schema(fast._schema)
    table = PlainLeafExecutionContext.for_schema(fast._schema).plain
    assert ("Guarded", "secret") not in table
    assert ("Guarded", "shouted") not in table
    assert ("Guarded", "plain") in table

    document = "{ guarded { secret shouted plain } }"
    expected, actual = await plain.execute(document), await fast.execute(document)
    assert actual.data == {"guarded": {"secret": None, "shouted": "QUIET", "plain": "plain"}}
    same(expected, actual)


async def test_an_attribute_that_raises_is_reported_at_its_own_path() -> None:
    class Source:
        ok = "x"

        @property
        def bad(self) -> str:
            raise ValueError("cannot read")

    @strawberry.type
    class Query:
        @strawberry.field
        def item(self) -> WithProperty:
            return cast("WithProperty", Source())

        @strawberry.field
        def stored_error(self) -> Holder | None:
            return Holder(edges=[], loose_edges=[], first=ValueError("stored"), maybe_first=None)  # type: ignore[arg-type]

    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query)
    fast.execution_context_class = PlainLeafExecutionContext.for_schema(fast._schema)
    for document in ("{ item { ok bad } }", "{ storedError { first { number } } }"):
        expected, actual = await plain.execute(document), await fast.execute(document)
        assert expected.errors
        same(expected, actual)


def test_each_subscription_event_has_a_table_of_selections_of_its_own() -> None:
    context_class = PlainLeafExecutionContext.for_schema(build_schema()._schema)
    executor = context_class.build(build_schema()._schema, parse("subscription { alertRaised { id } }"))
    assert isinstance(executor, PlainLeafExecutionContext)
    executor._plans[1] = ({}, None)
    memo = executor._relevant_sub_fields
    event = executor.build_per_event_executor(object())
    assert isinstance(event, PlainLeafExecutionContext)
    assert event._plans == {}
    assert executor._plans == {1: ({}, None)}
    # graphql-core's memo of sub-selections too: an event's new lists would otherwise pile up in the shared one.
    assert event._relevant_sub_fields is not memo
    assert event._relevant_sub_fields == {}


# --- plans kept with an operation across requests -----------------------------------------------------------------

# A parser cache of its own (Strawberry keeps one per size): the same text is the same parsed operation.
KEPT_DOCUMENTS = 7


def cached(root: Holder) -> strawberry.Schema:
    """The fast schema with a parser cache, as the app's: each request of a text gets the same parsed operation."""
    _, fast = schemas(root)
    fast.extensions = (lambda: ParserCache(maxsize=KEPT_DOCUMENTS),)
    return fast


def counting_plans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    planned: list[str] = []
    original = PlainLeafExecutionContext._planned

    def counted(self: PlainLeafExecutionContext, parent_type: Any, grouped_field_set: Any) -> Any:
        planned.append(parent_type.name)
        return original(self, parent_type, grouped_field_set)

    monkeypatch.setattr(PlainLeafExecutionContext, "_planned", counted)
    return planned


async def test_an_operations_plans_are_kept_across_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    planned = counting_plans(monkeypatch)
    fast = cached(GOOD)
    document = f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} first {{ number }} }} }} # {uuid4()}"
    first = await fast.execute(document)
    assert not first.errors
    # The root's selection, the holder's, an edge's, a node's, `first`'s.
    assert sorted(planned) == ["Edge", "Holder", "Leaf", "Leaf", "Query"]
    again = await fast.execute(document)
    assert again.data == first.data
    assert not again.errors
    assert len(planned) == 5
    # Another text is another operation, planned for itself.
    await fast.execute("{ holder { first { number } } }")
    assert len(planned) == 8


def counting_collections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The object types whose selections graphql-core's executor collects (`Executor.collect_subfields`)."""
    collected: list[str] = []
    original = executor_module.collect_subfields  # type: ignore[attr-defined]  # imported there, not exported

    def counted(*args: Any, **kwargs: Any) -> Any:
        collected.append(args[4].name)  # the return type
        return original(*args, **kwargs)

    monkeypatch.setattr(executor_module, "collect_subfields", counted)
    return collected


async def test_a_kept_selection_is_answered_without_collecting_its_fields_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collected = counting_collections(monkeypatch)
    plain, _ = schemas(GOOD)
    fast = cached(GOOD)
    document = f"{{ holder {{ edges {{ cursor node {{ {PLAIN_LEAVES} }} }} first {{ number }} }} }} # {uuid4()}"
    expected = await plain.execute(document)
    collected.clear()
    same(expected, await fast.execute(document))
    assert sorted(collected) == ["Edge", "Holder", "Leaf", "Leaf"]  # learnt on the first request
    collected.clear()
    same(expected, await fast.execute(document))
    assert collected == []


async def test_a_value_a_kept_selection_cannot_answer_is_answered_as_graphql_core_answers_it() -> None:
    root = holder(leaf(1), leaf(2))
    plain, _ = schemas(root)
    fast = cached(root)
    document = f"{{ holder {{ edges {{ cursor node {{ number label }} }} first {{ label }} }} }} # {uuid4()}"
    for first in (leaf(3), leaf(4, label=None), leaf(5), leaf(6, label=[7])):  # fine, null, fine, no string
        root.first = first
        expected = await plain.execute(document)
        same(expected, await fast.execute(document))
        assert bool(expected.errors) == (first.number in (4, 6))


class CountedLeaf:
    """A leaf whose `label` counts its reads."""

    def __init__(self, label: object) -> None:
        self.number = 1
        self._label = label
        self.reads = 0

    @property
    def label(self) -> object:
        self.reads += 1
        return self._label


async def test_a_value_a_kept_selection_cannot_answer_is_read_no_more_often_than_before_it_was_kept() -> None:
    """On the first request the selection's plan is learnt on graphql-core's path; on the next it is called
    directly. A value it cannot answer is then read as often as on that first path (each level's plan tries it
    once before graphql-core reads it), not once more."""
    root = holder(leaf(1))
    plain, _ = schemas(root)
    fast = cached(root)
    document = f"{{ holder {{ first {{ number label }} }} }} # {uuid4()}"
    reads = []
    for _ in range(2):
        refused = CountedLeaf(None)  # a null where the schema promises a label
        root.first = cast("Leaf", refused)
        expected = await plain.execute(document)
        refused.reads = 0
        same(expected, await fast.execute(document))
        reads.append(refused.reads)
    assert reads[1] == reads[0]


@pytest.mark.parametrize(
    "document",
    [
        # The same fields under other response names, twice in one selection, merged, and through fragments.
        "{ holder { a: edges { c: cursor } edges { cursor node { n: number number } } first { number } } }",
        "{ holder { edges { node { number } } edges { node { label } } e: edges { node { label } } } }",
        "{ holder { ...H } } fragment H on Holder { edges { ...E } first { ...L } } fragment E on Edge { node { "
        "...L } } fragment L on Leaf { number label }",
    ],
)
async def test_kept_plans_answer_what_graphql_core_answers_in_every_request(
    document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = counting_plans(monkeypatch)
    plain, _ = schemas(GOOD)
    fast = cached(GOOD)
    expected = await plain.execute(document)
    assert not expected.errors
    for _ in range(3):
        same(expected, await fast.execute(document))
    made = len(planned)
    same(expected, await fast.execute(document))
    assert len(planned) == made  # kept


@pytest.mark.parametrize(
    "document",
    [
        "query($w: Boolean!) { holder { edges { node { number label @include(if: $w) } } } }",
        "query($w: Boolean!) { holder { edges { node { number ... @skip(if: $w) { label } } } } }",
        "query($w: Boolean!) { holder { edges { node { ...L } } } }"
        " fragment L on Leaf { number label @include(if: $w) }",
        "query($w: Boolean!) { holder { edges { ...E } } } fragment E on Edge { node { label } ...F @include(if: $w) }"
        " fragment F on Edge { cursor }",
    ],
)
async def test_with_a_directive_anywhere_each_request_selects_by_its_own_variables(
    document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = counting_plans(monkeypatch)
    plain, _ = schemas(GOOD)
    fast = cached(GOOD)
    for shown in (True, False, True, False):
        expected = await plain.execute(document, variable_values={"w": shown})
        same(expected, await fast.execute(document, variable_values={"w": shown}))
    assert len(planned) == 4 * 4  # the root's selection, the holder's, an edge's, a node's: in every request


async def test_an_operations_plans_leave_with_its_document() -> None:
    fast = cached(GOOD)
    context_class = cast("type[PlainLeafExecutionContext]", fast.execution_context_class)
    await fast.execute(f"{{ holder {{ first {{ number }} }} }} # {uuid4()}")
    assert len(context_class.operations) == 1
    ParserCache(maxsize=KEPT_DOCUMENTS).cached_parse_document.cache_clear()  # type: ignore[attr-defined]
    gc.collect()
    assert len(context_class.operations) == 0
