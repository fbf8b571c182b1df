"""Execution that answers plain leaf fields without graphql-core's per-field machinery.

Most values a diary screen reads are attributes of a dataclass: `DiaryEntry.painNow`, an edge's `cursor`, a series'
`dates`. For each, graphql-core builds a ResolveInfo, calls Strawberry's default-resolver wrapper, checks whether
the result is awaitable and completes the leaf: about 4 µs a value, most of a 100-entry page's time
(bench/README.md). A *plain leaf field* is one Strawberry resolves by reading the attribute (no resolver, no field
extension, no permission, no argument) whose type is a scalar or enum, or a list of them. For those, the value is
read and coerced here directly, with the type's own `coerce_output_value`, exactly as graphql-core would. A plain
field whose value is an object of a type without `is_type_of` (an edge's `node`), or a list of them (`edges`), runs
its sub-selection directly on the value. A selection made only of plain fields, however deep (a diary page: its
edges, their cursors and nodes, the nodes' values, its pageInfo), is answered by one function compiled from its plan
(the fields selected, under their response names), kept per schema for the next request that selects the same.

Anything unusual goes back to graphql-core's own path, which then produces its usual value or error: a null in a
non-null position, a value the scalar refuses, an attribute that is missing or raises, an exception or an awaitable
standing as a value, schema middleware (an extension with a `resolve` hook). So errors, paths and masking are
unchanged; only the common case is fast.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from inspect import isawaitable
from keyword import iskeyword
from math import isfinite
from types import GeneratorType
from typing import Any, ParamSpec, TypeVar, cast
from uuid import UUID

from graphql import (
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined, UndefinedType, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types import base_scalars

from schema.documents import PerDocument

_MISSING = object()
# GraphQL's Int is 32 bits: graphql-core refuses a larger value.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
# graphql-core's built-in scalars whose coercion returns a value of this Python type as it is: `serialize_string`,
# `serialize_id`, `serialize_boolean`, `serialize_int` (in range). By the type objects themselves, which a schema
# uses for these names (Strawberry's included): another scalar of the same name would not be found here.
_UNCHANGED: dict[GraphQLNamedType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool, GraphQLInt: int}
Coerce = Callable[[Any], Any]
P = ParamSpec("P")
R = TypeVar("R")


# By identity (eq=False): each is made once per schema and field, and a plan's key hashes them for every request.
@dataclass(frozen=True, slots=True, eq=False)
class PlainLeaf:
    """How to answer one plain leaf field: the attribute it reads and how its value is coerced."""

    attribute: str
    # The leaf type's coercion: of the value, or of each item of a list of leaves.
    coerce: Coerce
    nullable: bool
    is_list: bool = False
    item_nullable: bool = False
    # The one Python type whose values the coercion returns unchanged (`str` for String and ID, `bool` for Boolean,
    # `int` for Int within its 32 bits), answered without calling it; None for any other leaf type.
    unchanged: type | None = None

    def answer(self, source: Any) -> Any:
        """The completed value, or `_MISSING` to let graphql-core answer (and report any error) itself."""
        return self.finish(_read(source, self.attribute))

    def finish(self, value: Any) -> Any:
        """`answer` of the value read (`_MISSING` when reading failed)."""
        if value is None:
            return None if self.nullable else _MISSING
        kind = type(value)
        if kind is self.unchanged and (kind is not int or _INT_MIN <= value <= _INT_MAX):
            return value
        # An exception or an awaitable standing as the value: graphql-core reports or awaits it.
        if value is _MISSING or not _is_settled(value):
            return _MISSING
        try:
            if not self.is_list:
                coerced = self.coerce(value)
                return _MISSING if coerced is None or coerced is Undefined else coerced
            return self._items(value)
        except Exception:  # graphql-core repeats the coercion and reports the error with its path
            return _MISSING

    def _items(self, values: Any) -> Any:
        return _each(values, self.item_nullable, self._item)

    def _item(self, item: Any) -> Any:
        if not _is_settled(item):
            return _MISSING
        coerced = self.coerce(item)
        return _MISSING if coerced is None or coerced is Undefined else coerced


@dataclass(frozen=True, slots=True, eq=False)
class PlainObject:
    """A plain field whose value is an object (`Edge.node`) or a list of objects (`Connection.edges`), of a type
    without `is_type_of` (no interfaces): its sub-selection runs directly on the attribute's value."""

    attribute: str
    type: GraphQLOutputType
    object_type: GraphQLObjectType
    nullable: bool
    is_list: bool
    item_nullable: bool = False

    def accepts(self, value: Any) -> bool:
        """Whether the value completes without an error of this field's own (those graphql-core reports): an
        object, or a list of objects (nulls where items may be null), none an exception or an awaitable."""
        if not self.is_list:
            return _is_settled(value)
        if not isinstance(value, list | tuple):
            return False
        return all((v is None and self.item_nullable) or (v is not None and _is_settled(v)) for v in value)


Plain = PlainLeaf | PlainObject


def _read(source: Any, attribute: str) -> Any:
    """The attribute, or `_MISSING` when reading it fails in any way (graphql-core then reads and reports it)."""
    try:
        return getattr(source, attribute, _MISSING)
    except Exception:  # a property or __getattr__ that raises: graphql-core reports it at the field's own path
        return _MISSING


def _is_settled(value: Any) -> bool:
    """Neither an exception nor an awaitable: a value graphql-core would complete as it is."""
    kind = type(value)
    if kind in _SETTLED_TYPES:
        return True
    if isinstance(value, Exception) or isawaitable(value):
        return False
    # Whether a value can be awaited depends on its type alone, but for generator-based coroutines.
    if kind is not GeneratorType and len(_SETTLED_TYPES) < _KNOWN_SETTLED_TYPES:
        _SETTLED_TYPES.add(kind)
    return True


# Types whose values are settled: the schema's types and the leaves' Python types, in practice. Bounded, and held
# strongly: a type that is gone (a test's) costs one slot, never a wrong answer, as its id is not reused while held.
_SETTLED_TYPES: set[type] = set()
_KNOWN_SETTLED_TYPES = 1024


# How to answer a selection made only of plain fields: per response name, either a leaf, or an object field with the
# answer of its own selection. A plan is compiled once into a function (`_compile`) and kept per schema.
Answer = Callable[[Any], Any]
# A selection of an operation, by its parent type and the field nodes it merges, in order.
SelectionKey = tuple[object, ...]
# Marks the key of an object's selection by the fields it is selected under (`collect_and_execute_subfields`), apart
# from a selection's own key (`_plan_of`) in the same table.
_SUBFIELDS = object()
Step = tuple[str, "PlainLeaf | None", "PlainObject | None", "Answer | None"]
Plan = tuple[Step, ...]
# Compiled plans kept per schema: one per distinct selection of plain fields the clients send.
COMPILED_PLANS = 512


def _compile(plan: Plan) -> Answer:
    """The plan as one Python function of its source: the selection's completed value, or `_MISSING` as soon as any
    value needs graphql-core's judgement (then graphql-core answers the whole object again: plain fields only read
    attributes, so nothing runs twice).

    Each attribute is read once, inline; a leaf whose coercion is written out for its value's exact Python type
    (`WrittenOut`: a String, ID, Boolean, in-range Int or finite Float as it is, a datetime's `isoformat()`, a
    UUID's `str`) is computed inline, any other goes through `PlainLeaf.finish`, and an object field through its own
    compiled selection. The text is made only of the schema's attribute names and the document's response names,
    both GraphQL or Python names, quoted with `repr`, and of this module's fixed templates; every value is a
    parameter.
    """
    scope: dict[str, Any] = {
        "_MISSING": _MISSING,
        "_SETTLED_TYPES": _SETTLED_TYPES,
        "_is_settled": _is_settled,
        "_each": _each,
        "_INT_MIN": _INT_MIN,
        "_INT_MAX": _INT_MAX,
        "_isfinite": isfinite,
    }
    lines = [
        "def answer(source):",
        "    if type(source) not in _SETTLED_TYPES and not _is_settled(source):",
        "        return _MISSING",
    ]
    for i, (_, leaf, field, sub) in enumerate(plan):
        if leaf is not None:
            lines += _leaf_lines(i, leaf, scope)
        elif field is not None and sub is not None:
            lines += _object_lines(i, field, sub, scope)
    lines.append("    return {" + ", ".join(f"{name!r}: v{i}" for i, (name, *_) in enumerate(plan)) + "}")
    exec("\n".join(lines), scope)  # noqa: S102 -- names only, quoted; see the docstring
    return cast("Answer", scope["answer"])


def _leaf_lines(i: int, leaf: PlainLeaf, scope: dict[str, Any]) -> list[str]:
    scope[f"leaf{i}"] = leaf
    lines = _read_lines(i, leaf.attribute)
    slow = [f"v{i} = leaf{i}.finish(v{i})", f"if v{i} is _MISSING:", "    return _MISSING"]
    written = _written_out(leaf)
    if written is None:
        return [*lines, *(f"    {line}" for line in slow)]
    scope[f"kind{i}"] = written.kind
    value = f"v{i}"
    condition = f"type({value}) is kind{i}" + (f" and {written.guard.format(value)}" if written.guard else "")
    if written.expression == "{}":  # taken as it is: only another value is finished
        return [*lines, f"    if not ({condition}):", *(f"        {line}" for line in slow)]
    fast = f"        {value} = {written.expression.format(value)}"
    return [*lines, f"    if {condition}:", fast, "    else:", *(f"        {line}" for line in slow)]


@dataclass(frozen=True, slots=True)
class WrittenOut:
    """A leaf's coercion written out for a value of exactly one Python type: for such a value (for which `guard`
    holds, if given) the coercion returns `expression`. Both are templates of the value's name, `{}`."""

    kind: type
    expression: str = "{}"
    guard: str = ""


# By the coercion itself, each expression being exactly what it computes: Strawberry's DateTime (and Date, Time)
# serialize with a `methodcaller("isoformat")`, its UUID with `str`.
_WRITTEN_OUT: dict[Coerce, WrittenOut] = {
    base_scalars.isoformat: WrittenOut(datetime, "{}.isoformat()"),
    str: WrittenOut(UUID, "str({})"),
}
# graphql-core's `serialize_float` returns a finite float as it is.
_FINITE_FLOAT = WrittenOut(float, guard="_isfinite({})")


def _written_out(leaf: PlainLeaf) -> WrittenOut | None:
    if leaf.is_list:
        return None
    if leaf.unchanged is not None:
        return WrittenOut(leaf.unchanged, guard="_INT_MIN <= {} <= _INT_MAX" if leaf.unchanged is int else "")
    if leaf.coerce is GraphQLFloat.coerce_output_value:
        return _FINITE_FLOAT
    return _WRITTEN_OUT.get(leaf.coerce)


def _object_lines(i: int, field: PlainObject, sub: Answer, scope: dict[str, Any]) -> list[str]:
    scope[f"sub{i}"] = sub
    done = f"_each(v{i}, {field.item_nullable!r}, sub{i})" if field.is_list else f"sub{i}(v{i})"
    return [
        *_read_lines(i, field.attribute),
        f"    if v{i} is None:",
        "        pass" if field.nullable else "        return _MISSING",
        "    else:",
        f"        v{i} = {done}",
        f"        if v{i} is _MISSING:",
        "            return _MISSING",
    ]


def _read_lines(i: int, attribute: str) -> list[str]:
    """The attribute into `v<i>`; the answer is `_MISSING` if reading it fails in any way (see `_read`)."""
    read = (
        f"source.{attribute}"
        if attribute.isidentifier() and not iskeyword(attribute)
        else f"getattr(source, {attribute!r})"
    )
    return ["    try:", f"        v{i} = {read}", "    except Exception:", "        return _MISSING"]


def _each(values: Any, item_nullable: bool, answer: Callable[[Any], Any]) -> Any:
    """Each item of a list answered, a null kept where items may be null; `_MISSING` when the value is not a list or
    any item needs graphql-core's judgement."""
    if not isinstance(values, list | tuple):
        return _MISSING
    out: list[Any] = []
    for item in values:
        if item is None:
            if not item_nullable:
                return _MISSING
            out.append(None)
            continue
        done = answer(item)
        if done is _MISSING:
            return _MISSING
        out.append(done)
    return out


def plain_fields(schema: GraphQLSchema) -> dict[tuple[str, str], Plain]:
    """Every plain field of the schema's object types, by (type name, field name)."""
    found: dict[tuple[str, str], Plain] = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            attribute = _plain_attribute(field)
            plain = None if attribute is None else _plain_leaf(attribute, field) or _plain_object(attribute, field)
            if plain is not None:
                found[(type_.name, name)] = plain
    return found


def _plain_attribute(field: GraphQLField) -> str | None:
    """The attribute a field only reads, if that is all it does."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    # Strawberry marks the resolver it builds for a field that only reads its attribute, but also one wrapped by
    # field extensions (permission classes are one): those must run, so the field itself must have none.
    if definition is None or field.args or not getattr(field.resolve, "_is_default", False):
        return None
    if not definition.is_basic_field or definition.permission_classes or definition.default_resolver is not getattr:
        return None
    return str(definition.python_name)


def _plain_object(attribute: str, field: GraphQLField) -> PlainObject | None:
    nullable, inner = _unwrap(field.type)
    if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
        return PlainObject(attribute, field.type, inner, nullable, is_list=False)
    if isinstance(inner, GraphQLList):
        item_nullable, item = _unwrap(inner.of_type)
        if isinstance(item, GraphQLObjectType) and item.is_type_of is None:
            return PlainObject(attribute, field.type, item, nullable, is_list=True, item_nullable=item_nullable)
    return None


def _plain_leaf(attribute: str, field: GraphQLField) -> PlainLeaf | None:
    nullable, inner = _unwrap(field.type)
    if is_leaf_type(inner):
        return PlainLeaf(attribute, inner.coerce_output_value, nullable, unchanged=_UNCHANGED.get(inner))
    if isinstance(inner, GraphQLList):
        item_nullable, item = _unwrap(inner.of_type)
        if is_leaf_type(item):
            return PlainLeaf(attribute, item.coerce_output_value, nullable, is_list=True, item_nullable=item_nullable)
    return None


def _unwrap(type_: GraphQLOutputType) -> tuple[bool, GraphQLOutputType]:
    if isinstance(type_, GraphQLNonNull):
        return False, type_.of_type
    return True, type_


def _weakly(method: Callable[P, R]) -> Callable[P, R]:
    """The method, called through a weak reference to its object (which must outlive every call)."""
    ref = weakref.WeakMethod(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = ref()
        if bound is None:
            raise RuntimeError("the execution this helper belongs to has ended")
        return bound(*args, **kwargs)

    return call


@dataclass(frozen=True, slots=True)
class _OperationPlans:
    """An operation's selections' answers, kept across requests, by the field nodes each selection is made of
    (`SelectionKey`); the nodes live as long as the operation, and the table with it.

    graphql-core collects each request's selections anew, and each plan was made anew for every request (about 3%
    of a 30-entry read, bench/README.md). Without a directive on any selection (`@skip`, `@include`, `@defer`,
    `@stream`), in the operation or in any fragment of its document, an operation selects the same fields whatever
    its variables: so does each of its selections, and a selection's answer is the same for every request. With
    one, `table` is None and every request makes its plans."""

    table: dict[SelectionKey, Answer | None] | None


def _plans_for(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> _OperationPlans:
    pending = [operation.selection_set, *(f.selection_set for f in fragments.values())]
    while pending:
        for selection in pending.pop().selections:
            if selection.directives:
                return _OperationPlans(None)
            if (below := getattr(selection, "selection_set", None)) is not None:
                pending.append(below)
    return _OperationPlans({})


class PlainLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, answering plain fields directly (see the module's docstring).

    `plain` and `compiled` are made per schema by `for_schema`: a subclass per schema, so that two schemas in one
    process (tests build several) never share a table."""

    plain: dict[tuple[str, str], Plain] = {}  # noqa: RUF012 -- replaced per schema, never mutated
    # Each plan's compiled answer, by the plan (its fields by identity, its sub-selections by their answers).
    compiled: dict[Plan, Answer] = {}  # noqa: RUF012 -- replaced per schema
    # Per operation: its selections' answers, kept across requests (`_OperationPlans`). Replaced per schema.
    operations: PerDocument[_OperationPlans] = PerDocument()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # With schema middleware every field must pass through it: no shortcut at all.
        self._shortcut = manager is None or getattr(manager, "_middleware_resolvers", None) is None
        # graphql-core's helpers for resolvers are bound methods of this executor, which keeps them: a reference
        # cycle that left the executor, and the request's context with it, to the garbage collector after every
        # request. Held weakly here, they are freed with the request (bench/README.md).
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_weakly(self.gather_async_work), track=_weakly(self.track_async_work)
        )
        # Per selection (graphql-core keeps each alive for the request, so its id is not reused): its compiled plan,
        # or None when it selects anything but plain fields.
        self._plans: dict[int, tuple[GroupedFieldSet, Answer | None]] = {}
        self._kept = self._operation_plans()

    def _operation_plans(self) -> dict[SelectionKey, Answer | None] | None:
        """The table of this operation's selections kept across requests, or None when its selections may differ
        from one request to the next."""
        operation = self.operation
        known = self.operations.get(operation)
        if known is None:
            known = self.operations.put(operation, _plans_for(operation, self.fragment_definitions))
        return known.table

    def build_per_event_executor(self, payload: Any) -> PlainLeafExecutionContext:
        """A subscription's copy per event: with tables of selections of its own, this one's and graphql-core's
        memo of sub-selections, which the copy would otherwise share and grow for as long as the subscription lives
        (each event collects its selections anew, as new lists)."""
        executor = cast("PlainLeafExecutionContext", super().build_per_event_executor(payload))
        executor._plans = {}
        executor._relevant_sub_fields = {}
        return executor

    @classmethod
    def for_schema(cls, schema: GraphQLSchema) -> type[PlainLeafExecutionContext]:
        tables = {"plain": plain_fields(schema), "compiled": {}, "operations": PerDocument[_OperationPlans]()}
        return type(cls.__name__, (cls,), tables)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """An object of which only plain fields are selected, down to its leaves (a diary page: its edges, their
        cursors and nodes, the nodes' values, its pageInfo), in one walk of its plan; any value graphql-core must
        judge sends the whole object back through graphql-core."""
        answer = self._plan_of(parent_type, grouped_field_set) if self._shortcut and position_context is None else None
        if answer is not None:
            results = answer(source_value)
            if results is not _MISSING:
                return cast("dict[str, Any]", results)
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """An object's selection (the entry a `logDiaryEntry` returns, a page `myDiary` returns) answered by the
        plan kept for it, without collecting its fields again: graphql-core collects them anew for every request,
        a tenth of the GraphQL work of a diary write (bench/README.md, session 17). Kept only where the operation's
        selections are the same for every request (`_OperationPlans`); learnt on the first request through
        graphql-core's own path, which any value the plan cannot answer goes back to."""
        kept = self._kept
        if kept is None or not self._shortcut or position_context is not None:
            return super().collect_and_execute_subfields(
                return_type, field_details_list, path, result, position_context
            )
        key = (_SUBFIELDS, return_type.name, *[id(d.node) for d in field_details_list])
        answer = kept.get(key, _MISSING)
        if answer is _MISSING:
            grouped_field_set, deferred, _ = self.collect_subfields(return_type, field_details_list)
            answer = kept[key] = None if deferred else self._plan_of(return_type, grouped_field_set)
        elif answer is not None:
            results = cast("Answer", answer)(result)
            if results is not _MISSING:
                return cast("dict[str, Any]", results)
            # graphql-core answers the object itself (and reports what the plan could not), the plan not tried
            # again: its fields collected as `super()` would, without `@defer` in the operation (`_plans_for`).
            grouped_field_set = self.collect_subfields(return_type, field_details_list).grouped_field_set
            return super().execute_fields(return_type, result, path, grouped_field_set, None)
        return super().collect_and_execute_subfields(return_type, field_details_list, path, result, None)

    def _plan_of(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Answer | None:
        known = self._plans.get(id(grouped_field_set))
        if known is not None and known[0] is grouped_field_set:
            return known[1]
        kept = self._kept
        if kept is None:
            found = self._planned(parent_type, grouped_field_set)
        else:
            # The nodes alone: each names its response, and the nodes under one name come together.
            key = (parent_type.name, *[id(d.node) for details in grouped_field_set.values() for d in details])
            if key in kept:
                found = kept[key]
            else:
                found = kept[key] = self._planned(parent_type, grouped_field_set)
        self._plans[id(grouped_field_set)] = (grouped_field_set, found)
        return found

    def _planned(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> Answer | None:
        steps: list[Step] = []
        for response_name, details in grouped_field_set.items():
            plain = self.plain.get((parent_type.name, details[0].node.name.value))
            if type(plain) is PlainLeaf:
                steps.append((response_name, plain, None, None))
                continue
            if type(plain) is not PlainObject or any(d.node.directives for d in details):
                steps = []
                break
            sub_fields, deferred, _ = self.collect_subfields(plain.object_type, details)
            sub_answer = None if deferred else self._plan_of(plain.object_type, sub_fields)
            if sub_answer is None:
                steps = []
                break
            steps.append((response_name, None, plain, sub_answer))
        return self._compiled(tuple(steps)) if steps else None

    def _compiled(self, plan: Plan) -> Answer:
        answer = self.compiled.get(plan)
        if answer is None:
            if len(self.compiled) >= COMPILED_PLANS:
                self.compiled.clear()
            answer = self.compiled[plan] = _compile(plan)
        return answer

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any] | UndefinedType:
        if self._shortcut:
            plain = self.plain.get((parent_type.name, field_details_list[0].node.name.value))
            if type(plain) is PlainLeaf:
                value = plain.answer(source)
                if value is not _MISSING:
                    return value
            elif type(plain) is PlainObject and not any(d.node.directives for d in field_details_list):
                value = _read(source, plain.attribute)
                if value is None and plain.nullable:
                    return None
                if value is not None and value is not _MISSING and plain.accepts(value):
                    return self._plain_object(plain, value, field_details_list, path, position_context)
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def _plain_object(
        self, plain: PlainObject, value: Any, details: FieldDetailsList, path: Path, position_context: Any
    ) -> AwaitableOrValue[Any]:
        """graphql-core's completion of an object, or a list of objects, minus what a plain field never needs."""
        completed: AwaitableOrValue[Any]
        try:
            if not plain.is_list:
                completed = self.collect_and_execute_subfields(
                    plain.object_type, details, path, value, position_context
                )
            else:
                completed = self._objects(plain, value, details, path, position_context)
        except Exception as raw_error:  # handled exactly as graphql-core's execute_field does
            self.handle_field_error(raw_error, plain.type, details, path)
            return None
        if self.is_awaitable(completed):
            return self._settled(completed, plain.type, details, path)
        return completed

    def _objects(
        self, plain: PlainObject, values: Any, details: FieldDetailsList, path: Path, position_context: Any
    ) -> AwaitableOrValue[list[Any]]:
        item_type: GraphQLOutputType = plain.object_type if plain.item_nullable else GraphQLNonNull(plain.object_type)
        completed: list[Any] = []
        pending: list[int] = []
        try:
            for index, item in enumerate(values):
                if item is None:  # `accepts` let it through: the items are nullable
                    completed.append(None)
                    continue
                item_path = path.add_key(index, None)
                try:
                    done = self.collect_and_execute_subfields(
                        plain.object_type, details, item_path, item, position_context
                    )
                except Exception as raw_error:  # as graphql-core's complete_list_item_value
                    self.handle_field_error(raw_error, item_type, details, item_path)
                    completed.append(None)
                    continue
                if self.is_awaitable(done):
                    pending.append(index)
                    done = self._settled(done, item_type, details, item_path)
                completed.append(done)
        except Exception:
            # A non-null item failed: the field fails, and items already started must still settle.
            if pending:
                self.settle_in_background([completed[i] for i in pending])
            raise
        if not pending:
            return completed

        async def gathered() -> list[Any]:
            for index, result in zip(pending, await gather_with_cancel(*(completed[i] for i in pending)), strict=True):
                completed[index] = result
            return completed

        return gathered()

    async def _settled(
        self, completed: Awaitable[Any], return_type: GraphQLOutputType, details: FieldDetailsList, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:  # as graphql-core's execute_field
            self.handle_field_error(raw_error, return_type, details, path)
            return None
