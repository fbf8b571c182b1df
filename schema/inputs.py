"""Input objects built from their GraphQL values by a plan made once per type.

For every input value, Strawberry resolves each field's annotation again, asks whether it is generic, and converts
the field through its general `convert_argument`: about half of the GraphQL layer's cost of a `logDiaryEntry` that
is not the entry's own work (bench/README.md). Strawberry's `from_input` hook on a type's definition lets the type
build its values itself; `install` gives each input type of a schema one that does exactly what Strawberry would,
from a plan of its fields made on first use: a scalar or enum value (already coerced by graphql-core) and a list of
them are taken as they are (the list copied, as Strawberry does: graphql-core shares defaults between requests);
anything else (a nested input object, a list of them) goes back to Strawberry's own conversion through the hook's
`InputContext.convert`, which then meets the nested type's own plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from enum import Enum
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.unset import UNSET


class Kind(Enum):
    """How a field's value becomes the Python value."""

    AS_IS = "as is"
    LIST_COPY = "a copied list"
    STRAWBERRY = "through Strawberry"


# Plans kept per schema (the name converter and scalar registry a plan was made with); tests build many schemas.
KEPT_PLANS = 16


@dataclass(frozen=True, slots=True)
class FieldPlan:
    graphql_name: str
    python_name: str
    kind: Kind
    type: StrawberryType | type


@dataclass(frozen=True, slots=True)
class Plan:
    # The fields without a default, None unless sent (graphql-core has refused a required field left out).
    implicit: Mapping[str, None]
    fields: tuple[FieldPlan, ...]


class PlannedInput:
    """A `from_input` hook for one input type (see the module's docstring)."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self.definition = definition
        # By the ids of the configuration and the scalar registry, both kept alive so that their ids are not reused.
        self._plans: dict[tuple[int, int], tuple[object, object, Plan]] = {}

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        plan = self._plan(context)
        kwargs: dict[str, Any] = dict(plan.implicit)
        for field in plan.fields:
            if field.graphql_name not in value:
                continue
            item = value[field.graphql_name]
            if field.kind is Kind.AS_IS or item is None or item is UNSET:
                kwargs[field.python_name] = item
            elif field.kind is Kind.LIST_COPY:
                kwargs[field.python_name] = list(item)
            else:
                kwargs[field.python_name] = context.convert(item, field.type, field.graphql_name)
        return cls(**kwargs)

    def _plan(self, context: InputContext) -> Plan:
        key = (id(context.config), id(context.scalar_registry))
        known = self._plans.get(key)
        if known is not None and known[0] is context.config and known[1] is context.scalar_registry:
            return known[2]
        definition = self.definition
        fields = tuple(
            FieldPlan(
                graphql_name=context.config.name_converter.from_field(field),
                python_name=field.python_name,
                kind=_kind(resolved, context),
                type=resolved,
            )
            for field in definition.fields
            for resolved in [field.resolve_type(type_definition=definition)]
        )
        implicit = {
            f.python_name: None
            for f in definition.fields
            if f.default_value is MISSING and f.default_factory is MISSING
        }
        plan = Plan(implicit=implicit, fields=fields)
        if len(self._plans) >= KEPT_PLANS:
            self._plans.clear()
        self._plans[key] = (context.config, context.scalar_registry, plan)
        return plan


def _kind(type_: StrawberryType | type, context: InputContext) -> Kind:
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if _leaf(type_, context):
        return Kind.AS_IS
    if isinstance(type_, StrawberryList):
        item = type_.of_type.of_type if isinstance(type_.of_type, StrawberryOptional) else type_.of_type
        if _leaf(item, context):
            return Kind.LIST_COPY
    return Kind.STRAWBERRY


def _leaf(type_: StrawberryType | type, context: InputContext) -> bool:
    """A scalar or an enum, whose value graphql-core has already made Python's. A GlobalID is built by Strawberry."""
    if type_ is GlobalID:
        return False
    return (
        is_scalar(type_, context.scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )


def install(schema: strawberry.Schema) -> None:
    """Gives every input type of the schema a planned `from_input`, unless it has a hook of its own or a `Maybe`
    field (Strawberry leaves a null sent for one to the hook to refuse).

    The hook is set on the type's definition, which belongs to the class, not to the schema: every schema built from
    the same classes, before or after, uses it too. That is why a plan is kept per configuration and scalar
    registry, and why the hook does exactly what Strawberry's conversion would for any schema."""
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            continue
        if definition.from_input is not None or any(isinstance(f.type, StrawberryMaybe) for f in definition.fields):
            continue
        definition.from_input = PlannedInput(definition)
