"""An operation's variables coerced by a plan made once per operation, as graphql-core coerces them.

For every request graphql-core's `get_variable_values` works out each variable's type from the document again and
walks the value twice: once to check that it is not nested too deeply, once to coerce it, dispatching on the kind of
type at every step. For a diary entry's write (a `DiaryEntryInput` of 14 fields) that was 4% of the request's time in
process (bench/README.md, session 17). Here each variable's signature, and for each input type the function that
coerces a value of it, is worked out once per operation; a request's values are then coerced by calling, for each
leaf, the same `coerce_input_value` of the same scalar or enum type that graphql-core calls, in the same order, and
the result is graphql-core's own `VariableValues`.

A plan only ever answers a request that graphql-core would accept, with what graphql-core would make of it. Anything
else it declines (None), and the request goes through graphql-core's `get_variable_values`, which answers it as
always, errors included: a value the type refuses, a missing or null required value, an unknown field, an absent
variable that has a default, an input type's own `out_type` failing (Strawberry checks its `one_of` inputs there).
An operation whose variables could be nested deeper than graphql-core's limit (a recursive input type) or that uses
an input type graphql-core itself knows as `@oneOf` is not planned at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    is_leaf_type,
    is_required_input_field,
)
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.pyutils import Undefined, is_iterable
from graphql.utilities.coerce_input_value import coerce_default_value

# A value's coercion: the coerced value, or `Undefined` where graphql-core's `coerce_input_value` returns it.
Coerce = Callable[[Any], Any]


class _NotPlanned(Exception):
    """A type this module leaves to graphql-core (see the module's docstring)."""


@dataclass(frozen=True, slots=True)
class _Variable:
    signature: GraphQLVariableSignature
    coerce: Coerce
    required: bool
    has_default: bool


@dataclass(frozen=True, slots=True)
class VariablesPlan:
    """How to coerce the variables of one operation."""

    variables: tuple[_Variable, ...]

    def coerce(self, inputs: Mapping[str, Any]) -> VariableValues | None:
        """graphql-core's `get_variable_values` of these inputs, when it would accept them; else None."""
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for variable in self.variables:
            signature = variable.signature
            name = signature.name
            value = inputs.get(name, Undefined)
            if value is Undefined:
                if variable.has_default or variable.required:
                    return None  # graphql-core applies the default, or refuses the missing value
                sources[name] = VariableValueSource(signature)
                continue
            sources[name] = VariableValueSource(signature, value)
            value = variable.coerce(value)
            if value is Undefined:
                return None  # graphql-core refuses it, and says why
            coerced[name] = value
        return VariableValues(sources, coerced)


def plan_variables(schema: GraphQLSchema, operation: OperationDefinitionNode) -> VariablesPlan | None:
    """The operation's plan, or None when its variables are left to graphql-core (see the module's docstring)."""
    variables = []
    try:
        for node in operation.variable_definitions or ():
            signature = get_variable_signature(schema, node)
            if isinstance(signature, GraphQLError):
                return None
            variables.append(
                _Variable(
                    signature=signature,
                    coerce=_coercion(signature.type, depth=0, seen=frozenset()),
                    required=isinstance(signature.type, GraphQLNonNull),
                    has_default=node.default_value is not None,
                )
            )
    except _NotPlanned:
        return None
    return VariablesPlan(tuple(variables))


def _coercion(type_: GraphQLInputType, *, depth: int, seen: frozenset[str]) -> Coerce:
    """`coerce_input_value(value, type_)` for this one type, each step decided here rather than for every value.

    `depth` counts as graphql-core's `input_is_nested_too_deeply` counts (a list's items and an input object's
    fields one deeper): a type that cannot reach its limit needs no check of the value; one that can is not
    planned. `seen`: the input object types above, to find a recursive one."""
    if depth > MAX_NESTING_DEPTH:
        raise _NotPlanned
    required = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    return _or_null(_present(inner, depth=depth, seen=seen), required=required)


def _present(type_: GraphQLInputType, *, depth: int, seen: frozenset[str]) -> Coerce:
    """The coercion of a value that is neither null nor undefined."""
    if is_leaf_type(type_):
        return _leaf(type_.coerce_input_value)
    if isinstance(type_, GraphQLList):
        return _list(_coercion(type_.of_type, depth=depth + 1, seen=seen))
    if isinstance(type_, GraphQLInputObjectType):
        if type_.is_one_of or type_.name in seen:
            raise _NotPlanned
        return _input_object(type_, depth=depth, seen=seen | {type_.name})
    raise _NotPlanned


def _or_null(inner: Coerce, *, required: bool) -> Coerce:
    """Null (or no value) where the type is required: Undefined, refused; where it is not: None."""
    null = Undefined if required else None

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return null
        return inner(value)

    return coerce


def _list(item: Coerce) -> Coerce:
    def coerce(value: Any) -> Any:
        if not is_iterable(value):  # a value that is not a list stands for a list of one
            single = item(value)
            return Undefined if single is Undefined else [single]
        items = []
        for each in value:
            coerced = item(each)
            if coerced is Undefined:
                return Undefined
            items.append(coerced)
        return items

    return coerce


def _input_object(type_: GraphQLInputObjectType, *, depth: int, seen: frozenset[str]) -> Coerce:
    fields = type_.fields
    names = frozenset(fields)
    # Per field, in the type's order: its name, the key it is stored under, its coercion, whether it is required,
    # and the value it takes when left out (`Undefined`: none, the field is then left out too).
    steps = tuple(
        (
            name,
            field.out_name or name,
            _coercion(field.type, depth=depth + 1, seen=seen),
            is_required_input_field(field),
            _default(field),
        )
        for name, field in fields.items()
    )
    out_type = type_.out_type

    def coerce(value: Any) -> Any:
        if not isinstance(value, dict):
            return Undefined
        if not value.keys() <= names:
            for name, item in value.items():
                if item is not Undefined and name not in names:
                    return Undefined
        coerced: dict[str, Any] = {}
        for name, key, coerce_field, required, default in steps:
            item = value.get(name, Undefined)
            if item is Undefined:
                if required:
                    return Undefined
                if default is not Undefined:
                    coerced[key] = default
                continue
            item = coerce_field(item)
            if item is Undefined:
                return Undefined
            coerced[key] = item
        try:
            return out_type(coerced)
        except Exception:  # Strawberry's `@oneOf` check, say: graphql-core reports it (or raises it) itself
            return Undefined

    return coerce


def _default(field: GraphQLInputField) -> Any:
    """`coerce_default_value(field)`, which graphql-core computes once and keeps on the field: the same value (the same
    object) it gives every request. A default it cannot coerce is left to graphql-core to fail on."""
    try:
        return coerce_default_value(field)
    except Exception as failed:
        raise _NotPlanned from failed


def _leaf(coerce_input_value: Coerce) -> Coerce:
    """A scalar's or an enum's own coercion; Undefined where it refuses the value (as graphql-core's:
    `get_variable_values` then says why)."""

    def coerce(value: Any) -> Any:
        try:
            return coerce_input_value(value)
        except Exception:
            return Undefined

    return coerce
