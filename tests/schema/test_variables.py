"""An operation's variables coerced by its plan (schema/variables.py) exactly as graphql-core's `get_variable_values`
coerces them, for every value graphql-core accepts; every value it refuses, and every absent variable with a default,
declined to it."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language.parser import MAX_NESTING_DEPTH
from hypothesis import given, settings
from hypothesis import strategies as st

from schema import build_schema as build_interlude_schema
from schema.variables import plan_variables

SDL = """
directive @oneOf on INPUT_OBJECT
enum Mood { LOW OK HIGH }
scalar Odd
input Inner { n: Int!, tags: [String!], mood: Mood = OK }
input Outer {
  name: String!
  inner: Inner
  inners: [Inner!]
  grid: [[Int]]
  flag: Boolean = true
  ratio: Float
  id: ID
  odd: Odd
  moods: [Mood!]! = [LOW]
}
input Choice @oneOf { a: Int, b: String }
input Tree { value: Int, children: [Tree!] }
type Query {
  outer(o: Outer): Int
  many(i: Int, s: String!, f: Float, b: Boolean, id: ID, m: Mood, l: [Int!], ll: [[String]!]): Int
  choice(c: Choice): Int
  tree(t: Tree): Int
}
"""

OPERATION = (
    "query($o: Outer, $i: Int, $s: String!, $f: Float, $b: Boolean, $id: ID, $m: Mood, $l: [Int!], $ll: [[String]!]) "
    "{ outer(o: $o) many(i: $i, s: $s, f: $f, b: $b, id: $id, m: $m, l: $l, ll: $ll) }"
)


def _odd(value: Any) -> int:
    """A scalar of its own: odd integers only, refused by raising (as a custom scalar may)."""
    if type(value) is not int or value % 2 == 0:
        raise ValueError("not odd")
    return value


def _schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    odd = schema.type_map["Odd"]
    odd.coerce_input_value = _odd  # type: ignore[attr-defined]
    # An input type whose coerced fields become a value of its own (Strawberry makes its input classes so).
    inner = schema.type_map["Inner"]
    inner.out_type = lambda fields: ("Inner", fields)  # type: ignore[attr-defined]
    return schema


SCHEMA = _schema()


def _operation(text: str) -> OperationDefinitionNode:
    definition = parse(text).definitions[0]
    assert isinstance(definition, OperationDefinitionNode)
    return definition


def _same(schema: GraphQLSchema, operation: OperationDefinitionNode, inputs: dict[str, Any]) -> VariableValues | None:
    """The plan's answer, checked against graphql-core's: equal when the plan answers, and graphql-core refusing or
    applying a default whenever the plan declines."""
    plan = plan_variables(schema, operation)
    assert plan is not None
    got = plan.coerce(inputs)
    expected = get_variable_values(schema, operation.variable_definitions or (), inputs)
    if got is None:
        defaults = {d.variable.name.value for d in operation.variable_definitions or () if d.default_value is not None}
        assert isinstance(expected, list) or defaults - set(inputs), f"declined what graphql-core accepts: {inputs}"
        return None
    assert isinstance(expected, VariableValues), f"accepted what graphql-core refuses: {inputs}"
    assert got.coerced == expected.coerced
    assert _typed(got.coerced) == _typed(expected.coerced)  # 1 and 1.0 and True are equal, but not the same
    assert _sources(got) == _sources(expected)
    return got


def _sources(values: VariableValues) -> dict[str, Any]:
    # A wrapping type (`String!`) is made anew for each signature and compares by identity: compared as printed.
    return {
        name: (source.signature.name, str(source.signature.type), source.signature.default, source.value)
        for name, source in values.sources.items()
    }


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


ACCEPTED: list[dict[str, Any]] = [
    {"s": "x"},
    {"s": "x", "i": 3, "f": 2, "b": False, "id": 7, "m": "HIGH", "l": [1, 2], "ll": [["a", None], []]},
    {"s": "x", "i": None, "f": 1.5, "id": "abc", "l": 5, "ll": ["a"]},  # a lone value stands for a list of one
    {"s": "x", "o": {"name": "n"}},
    {"s": "x", "o": {"name": "n", "flag": None, "moods": ["HIGH", "LOW"], "ratio": 1, "odd": 3}},
    {"s": "x", "o": {"name": "n", "inner": {"n": 1, "tags": "t"}, "inners": [{"n": 2, "mood": "LOW"}]}},
    {"s": "x", "o": {"name": "n", "grid": [[1, None], None, 3]}},
    {"s": "x", "o": None, "m": None},
]

REFUSED: list[dict[str, Any]] = [
    {},
    {"s": None},
    {"s": 5},
    {"s": "x", "i": "3"},
    {"s": "x", "i": True},
    {"s": "x", "i": 2**31},
    {"s": "x", "i": 1.5},
    {"s": "x", "f": "1.5"},
    {"s": "x", "b": 1},
    {"s": "x", "id": 1.5},
    {"s": "x", "m": "MEH"},
    {"s": "x", "l": [1, None]},
    {"s": "x", "ll": [None]},
    {"s": "x", "o": {}},
    {"s": "x", "o": {"name": "n", "extra": 1}},
    {"s": "x", "o": {"name": "n", "moods": None}},
    {"s": "x", "o": {"name": "n", "inner": {"tags": []}}},
    {"s": "x", "o": {"name": "n", "inners": [None]}},
    {"s": "x", "o": {"name": "n", "odd": 2}},
    {"s": "x", "o": "not an object"},
    {"s": "x", "o": [{"name": "n"}]},
]


@pytest.mark.parametrize("inputs", ACCEPTED)
def test_what_graphql_core_accepts_is_coerced_by_the_plan_as_graphql_core_coerces_it(inputs: dict[str, Any]) -> None:
    assert _same(SCHEMA, _operation(OPERATION), inputs) is not None


@pytest.mark.parametrize("inputs", REFUSED)
def test_what_graphql_core_refuses_is_declined_to_it(inputs: dict[str, Any]) -> None:
    assert _same(SCHEMA, _operation(OPERATION), inputs) is None


def test_an_absent_variable_with_a_default_is_declined_and_an_absent_nullable_one_left_out() -> None:
    with_default = _operation("query($i: Int = 4, $s: String!) { many(i: $i, s: $s) }")
    assert _same(SCHEMA, with_default, {"s": "x"}) is None
    assert _same(SCHEMA, with_default, {"s": "x", "i": 5}) is not None
    without = _operation("query($i: Int, $s: String!) { many(i: $i, s: $s) }")
    got = _same(SCHEMA, without, {"s": "x"})
    assert got is not None
    assert "i" not in got.coerced
    assert "i" in got.sources  # as graphql-core records it: a source with no value


@pytest.mark.parametrize(
    "text",
    [
        "query($c: Choice) { choice(c: $c) }",  # @oneOf: graphql-core's own rules
        "query($t: Tree) { tree(t: $t) }",  # recursive: a value could be nested beyond graphql-core's limit
        "query($x: Unknown) { __typename }",  # not a type of the schema
        "query($q: Query) { __typename }",  # not an input type
    ],
)
def test_variables_of_types_left_to_graphql_core_are_not_planned(text: str) -> None:
    assert plan_variables(SCHEMA, _operation(text)) is None


@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH, MAX_NESTING_DEPTH + 1])
def test_a_type_whose_values_may_be_nested_too_deeply_is_left_to_graphql_core(levels: int) -> None:
    """Input types chained `levels` deep: a value filled to the last one has its leaf at depth `levels`, which
    graphql-core refuses beyond its limit (`input_is_nested_too_deeply`)."""
    types = " ".join(f"input T{i} {{ next: T{i + 1} }}" for i in range(1, levels))
    schema = build_schema(f"{types} input T{levels} {{ leaf: Int }} type Query {{ f(t: T1): Int }}")
    operation = _operation("query($t: T1) { f(t: $t) }")
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"next": value}
    accepted = isinstance(
        get_variable_values(schema, operation.variable_definitions or (), {"t": value}), VariableValues
    )
    assert accepted == (levels <= MAX_NESTING_DEPTH)
    plan = plan_variables(schema, operation)
    assert (plan is not None) == accepted
    if plan is not None:
        assert _same(schema, operation, {"t": value}) is not None


@strawberry.input(one_of=True)
class Pick:
    a: int | None = strawberry.UNSET
    b: str | None = strawberry.UNSET


@strawberry.type
class PickQuery:
    @strawberry.field
    def picked(self, pick: Pick) -> int:
        return 1


def test_an_input_that_strawberrys_one_of_check_refuses_is_declined_to_graphql_core() -> None:
    """Strawberry checks a `one_of` input in the type's `out_type`, which graphql-core calls and whose refusal it
    reports: the plan calls it too, and declines what it refuses."""
    schema = strawberry.Schema(query=PickQuery)._schema
    operation = _operation("query($p: Pick!) { picked(pick: $p) }")
    assert _same(schema, operation, {"p": {"a": 1}}) is not None
    for refused in ({"a": 1, "b": "x"}, {}, {"a": None}):
        assert _same(schema, operation, {"p": refused}) is None


def test_an_out_type_that_fails_otherwise_is_declined_and_fails_in_graphql_core() -> None:
    schema = build_schema("input Odd { n: Int } type Query { f(o: Odd): Int }")

    def failing(fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("n") == 13:
            raise ValueError("unlucky")
        return fields

    schema.type_map["Odd"].out_type = failing  # type: ignore[attr-defined]
    operation = _operation("query($o: Odd) { f(o: $o) }")
    assert _same(schema, operation, {"o": {"n": 12}}) is not None
    plan = plan_variables(schema, operation)
    assert plan is not None
    assert plan.coerce({"o": {"n": 13}}) is None
    with pytest.raises(ValueError, match="unlucky"):  # graphql-core's own path, as before
        get_variable_values(schema, operation.variable_definitions or (), {"o": {"n": 13}})


def test_an_input_field_whose_default_graphql_core_cannot_coerce_is_left_to_graphql_core() -> None:
    schema = build_schema('input Bad { n: Int = "x" } type Query { f(b: Bad): Int }')
    operation = _operation("query($b: Bad) { f(b: $b) }")
    assert plan_variables(schema, operation) is None
    with pytest.raises(TypeError):  # graphql-core's own failure, as before
        get_variable_values(schema, operation.variable_definitions or (), {"b": {}})


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**33), max_value=2**33)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["LOW", "OK", "HIGH", "n", "x", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "n", "inner", "tags", "mood", "moods", "grid", "odd", "x"]), inner)
    ),
    max_leaves=12,
)
NAMES = ["o", "i", "s", "f", "b", "id", "m", "l", "ll"]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), JSON, max_size=5))
def test_any_json_is_coerced_as_graphql_core_coerces_it_or_declined_to_it(inputs: dict[str, Any]) -> None:
    _same(SCHEMA, _operation(OPERATION), inputs)


OUTER_FIELDS = st.fixed_dictionaries(
    {"name": st.text(max_size=3)},
    optional={
        "inner": st.none() | st.fixed_dictionaries({"n": st.integers(-5, 5)}, optional={"tags": st.lists(st.text())}),
        "grid": st.lists(st.none() | st.lists(st.none() | st.integers(-5, 5), max_size=3), max_size=3),
        "flag": st.none() | st.booleans(),
        "ratio": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5),
        "odd": st.none() | st.integers(-5, 5),
        "moods": st.lists(st.sampled_from(["LOW", "OK", "HIGH"]), max_size=3),
    },
)


@settings(max_examples=300, deadline=None)
@given(OUTER_FIELDS)
def test_well_formed_objects_are_coerced_by_the_plan(outer: dict[str, Any]) -> None:
    """Mostly values graphql-core accepts (random JSON rarely is one): the plan answers each that it accepts."""
    got = _same(SCHEMA, _operation(OPERATION), {"s": "x", "o": outer})
    expected = get_variable_values(SCHEMA, _operation(OPERATION).variable_definitions or (), {"s": "x", "o": outer})
    assert (got is None) == isinstance(expected, list)


def test_the_apps_diary_entry_input_is_planned_and_coerced_as_graphql_core_coerces_it() -> None:
    schema = build_interlude_schema()._schema
    operation = _operation("mutation($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id } }")
    entry = {
        "clientId": "6f1c8d52-7c1e-4a53-9d51-0f7f4b0f2a11",
        "recordedAt": "2026-11-28T08:00:00+01:00",
        "painNow": 4,
        "painAverage": 5,
        "sleepHours": 7.5,
        "mood": 3,
        "note": "fine",
        "painLocations": ["HEAD", "NECK"],
        "sideEffects": [{"code": "NAUSEA", "severity": 1}],
    }
    assert _same(schema, operation, {"input": entry}) is not None
    assert _same(schema, operation, {"input": {**entry, "recordedAt": "yesterday"}}) is None
    assert _same(schema, operation, {"input": {**entry, "painNow": "4"}}) is None
    assert _same(schema, operation, {"input": {**entry, "sideEffects": ["NAUSEA"]}}) is None
