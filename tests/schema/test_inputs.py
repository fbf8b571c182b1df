"""Planned input conversion (schema/inputs.py) builds every input type of the schema exactly as Strawberry's own
conversion does: with every field sent, with only the required ones, and with nulls where nulls may go."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from schema import build_schema
from schema.inputs import PlannedInput, install

SCHEMA = build_schema()
SAMPLES: dict[str, object] = {
    "String": "text",
    "ID": "0b6f1d0e-8f0e-4a53-9d1e-0d8f2b6f1a11",
    "Int": 3,
    "Float": 6.5,
    "Boolean": True,
    "UUID": UUID("0b6f1d0e-8f0e-4a53-9d1e-0d8f2b6f1a11"),
    "DateTime": datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    "Date": date(2026, 11, 26),
    "JSON": {"a": [1, 2]},
}


def _inputs() -> list[tuple[StrawberryObjectDefinition, GraphQLInputObjectType]]:
    found = []
    for concrete in SCHEMA.schema_converter.type_map.values():
        definition = concrete.definition
        if isinstance(definition, StrawberryObjectDefinition) and definition.is_input:
            graphql_type = SCHEMA._schema.type_map[definition.name]
            assert isinstance(graphql_type, GraphQLInputObjectType)
            found.append((definition, graphql_type))
    return found


INPUTS = _inputs()


def sample(type_: GraphQLInputType, mode: str) -> Any:
    """An input value as graphql-core hands it to Strawberry (scalars and enums already Python's). `mode`: "all"
    fields, "required" ones only, or "nulls" wherever a null may go."""
    nullable = not isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if mode == "nulls" and nullable:
        return None
    if isinstance(inner, GraphQLList):
        return [sample(inner.of_type, mode), sample(inner.of_type, "all")]
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values.values())).value
    if isinstance(inner, GraphQLScalarType):
        return SAMPLES[inner.name]
    assert isinstance(inner, GraphQLInputObjectType)
    return {
        name: sample(field.type, mode)
        for name, field in inner.fields.items()
        if mode != "required" or isinstance(field.type, GraphQLNonNull)
    }


def test_every_input_type_of_the_schema_is_planned() -> None:
    assert len(INPUTS) >= 13
    assert all(isinstance(d.from_input, PlannedInput) for d, _ in INPUTS)


@pytest.mark.parametrize("mode", ["all", "required", "nulls"])
@pytest.mark.parametrize(("definition", "graphql_type"), INPUTS, ids=[d.name for d, _ in INPUTS])
def test_an_input_is_built_as_strawberry_builds_it(
    definition: StrawberryObjectDefinition, graphql_type: GraphQLInputObjectType, mode: str
) -> None:
    value = sample(GraphQLNonNull(graphql_type), mode)
    registry = SCHEMA.schema_converter.scalar_registry
    planned = convert_argument(value, definition.origin, registry, SCHEMA.config)
    with _strawberrys_own_conversion():
        expected = convert_argument(value, definition.origin, registry, SCHEMA.config)
    assert planned == expected
    assert type(planned) is type(expected)
    # Lists are copies, never the value graphql-core handed over (it shares defaults between requests).
    for field_value in vars(planned).values():
        if isinstance(field_value, list):
            assert all(field_value is not v for v in value.values())


@contextmanager
def _strawberrys_own_conversion() -> Iterator[None]:
    """Every planned hook taken off, nested input types' included, and put back."""
    planned = [d for d, _ in INPUTS if isinstance(d.from_input, PlannedInput)]
    hooks = [d.from_input for d in planned]
    for definition in planned:
        definition.from_input = None
    try:
        yield
    finally:
        for definition, hook in zip(planned, hooks, strict=True):
            definition.from_input = hook


@strawberry.input
class WithMaybe:
    name: strawberry.Maybe[str]


@strawberry.type
class MaybeQuery:
    @strawberry.field
    def echo(self, value: WithMaybe) -> str:
        return "ok"


def test_an_input_with_a_maybe_field_keeps_strawberrys_conversion() -> None:
    """Strawberry leaves a null sent for a `Maybe` field to a type's own hook to refuse: such a type keeps none."""
    install(strawberry.Schema(query=MaybeQuery))
    assert WithMaybe.__strawberry_definition__.from_input is None  # type: ignore[attr-defined]


def test_a_plan_is_made_per_configuration_and_scalar_registry() -> None:
    """A hook belongs to the type, shared by every schema built from it: a plan made with one schema's scalars is
    never used with another's, even under the same configuration."""
    definition, _ = INPUTS[0]
    hook = definition.from_input
    assert isinstance(hook, PlannedInput)
    registry = SCHEMA.schema_converter.scalar_registry

    def context(scalars: Any) -> InputContext:
        return InputContext(info=None, config=SCHEMA.config, scalar_registry=scalars, path=())

    first = hook._plan(context(registry))
    assert hook._plan(context(registry)) is first
    assert hook._plan(context(dict(registry))) is not first
