"""Bounds on a GraphQL document, refused with QUERY_TOO_COMPLEX before anything runs.

Bytes are bounded by the transport before the document is parsed or cached (`oversized`). Tokens are bounded while
parsing, so an oversized document is never parsed in full. Depth, aliases and an
estimated cost are measured on the parsed operation, with the request's variables, once the standard validation
has passed and before execution: a refused document runs no resolver and sends no SQL. Lists in the input are
bounded there too (BAD_USER_INPUT).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    visit,
)
from strawberry.extensions import SchemaExtension

from api.domain.alert.rules import RULES as ALERT_RULES
from api.domain.errors import ErrorCode
from api.domain.outcome.response import TREND_MEASURES
from api.domain.paging import DEFAULT_PAGE, MAX_PAGE
from api.domain.prompt import service as prompts
from schema.documents import PerDocument

# How many items each list of objects that is not a connection may hold: its selection counts that many times.
# Lists that grow without bound are connections (design §6); these are capped by their service or a vocabulary, or
# (where nothing caps them) weighed by what a patient's record holds in practice. A test walks the schema: a new
# list of objects must be given its weight here. Lists of scalars and enums weigh 1, like any leaf.
LIST_WEIGHTS: Mapping[tuple[str, str], int] = {
    ("Patient", "prompts"): prompts.PATIENT_LIMIT,
    ("Query", "myPrompts"): prompts.MINE_LIMIT,
    # One result per entry sent (at most MAX_SYNC, within the body limit): the caller pays for this list by sending
    # it, and no resolver under it reads the database (a test checks the result's types). Weighed at its cap, the
    # documented sync of 200 entries, echoed in full, would be refused.
    ("Mutation", "syncDiaryEntries"): 1,
    # Stored on the entry (no query): each code at most once, a handful in practice.
    ("DiaryEntry", "sideEffects"): 5,
    ("AlertSettings", "rules"): len(ALERT_RULES),
    ("CourseOutcome", "trends"): len(TREND_MEASURES),
    # Uncapped: an induction series and boosters for years; a course's outcome and pain areas.
    ("Patient", "sessions"): 50,
    ("Patient", "courses"): 10,
    ("Patient", "outcomes"): 10,
    ("CourseOutcome", "areas"): 10,
    # Overall, then one per instrument.
    ("Patient", "adherence"): 10,
    ("Trends", "adherence"): 10,
    # Uncapped: each new record that meets the rule adds a trigger; the lifecycle's steps make the history.
    ("Alert", "triggers"): 10,
    ("Alert", "history"): 10,
    ("Query", "promptPlans"): 10,
    ("PromptPlan", "rules"): 10,
    # Stored on the response (no query): an instrument's items, ten for the PHQ-9 (the longest built-in has 18).
    ("QuestionnaireResponse", "answers"): 10,
    # Instrument definitions are read from memory, their size set by the deployment (at most 18 items of 9 options
    # among the built-in ones), never by what anyone records; and they are reachable from the root only (a test
    # checks it), so that only the alias limit repeats them. Weighed by their size, the whole catalogue (what the
    # apps load at start) would cost most of the budget.
    ("Query", "instruments"): 1,
    ("Instrument", "items"): 1,
    ("Instrument", "bands"): 1,
    ("InstrumentItem", "options"): 1,
}
# A list of objects missing from LIST_WEIGHTS (the schema test fails first): counted as a full page.
UNDECLARED_LIST = MAX_PAGE
# Sizes stop growing here: fragments spread into each other can describe astronomically large results, and
# the number only has to be compared and printed.
CEILING = 10**9
# No argument takes more items than this (the longest is a sync of 200 diary entries). Within the body limit a list
# could hold hundreds of thousands, each a parameter of some SQL statement (PostgreSQL takes at most 32767).
MAX_LIST_ITEMS = 1000
# graphql-core 3.3's own refusals of an oversized document while parsing it.
_TOO_MANY_TOKENS = re.compile(r"Document contains more than \d+ tokens")
_TOO_DEEP_TO_PARSE = re.compile(r"Document is nested too deeply")


@dataclass(frozen=True)
class Limits:
    """What one document may ask for. The defaults are `api.settings.Settings`'s (a test keeps them equal)."""

    depth: int = 10
    aliases: int = 15
    tokens: int = 2000
    cost: int = 10_000
    # UTF-8 bytes of the document (not of its variables), checked by the transport before parsing.
    bytes: int = 64 * 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Size:
    depth: int = 0
    aliases: int = 0
    cost: int = 0

    def beside(self, other: Size) -> Size:
        """This and `other` selected side by side."""
        return Size(max(self.depth, other.depth), _cap(self.aliases + other.aliases), _cap(self.cost + other.cost))


def measure(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, object]
) -> Size:
    """Depth in fields, aliases, and cost: each field 1, a connection's selection once per item its `first` asks
    for (the default page when absent), any other list of objects its `LIST_WEIGHTS` times. Fragments count where
    they are spread; introspection is not measured."""
    values = {**_defaults(operation), **variables}
    operations = _measured(schema, document)
    known = operations.get(id(operation))
    if known is not None and known.operation is operation:
        page_sizes = known.page_sizes(values)
        size = known.sizes.get(page_sizes)
        if size is not None:
            return size
    else:
        known = None
    measuring = _Measure(schema, document, values)
    size = measuring.selections(operation.selection_set, schema.get_root_type(operation.operation))
    if known is None:
        known = operations[id(operation)] = _Sizes(operation, tuple(sorted(measuring.read)))
        page_sizes = known.page_sizes(values)
    if len(known.sizes) >= SIZES_PER_OPERATION:
        known.sizes.clear()
    known.sizes[page_sizes] = size
    return size


# An operation's size depends on the document and on the page sizes its variables ask for (`first: $first`) only.
# Sizes are kept per parsed document (schema/documents.py), and per operation, for each of the page sizes asked
# for, a few of them.
SIZES_PER_OPERATION = 32


@dataclass
class _Sizes:
    operation: OperationDefinitionNode
    # The variables the measure read, in order: the key of `sizes` is their page sizes.
    variables: tuple[str, ...]
    sizes: dict[tuple[int, ...], Size] = field(default_factory=dict)

    def page_sizes(self, values: Mapping[str, object]) -> tuple[int, ...]:
        return tuple(_page_size(values.get(name)) for name in self.variables)


@dataclass
class _Measured:
    schema: GraphQLSchema
    operations: dict[int, _Sizes] = field(default_factory=dict)


_MEASURED = PerDocument[_Measured]()


def _measured(schema: GraphQLSchema, document: DocumentNode) -> dict[int, _Sizes]:
    known = _MEASURED.get(document)
    if known is None or known.schema is not schema:
        known = _MEASURED.put(document, _Measured(schema))
    return known.operations


def oversized(document: object, limits: Limits) -> GraphQLError | None:
    """The refusal of a document longer than `limits.bytes`, or None. Checked before parsing: a single string
    literal is one token however long, the parser reads it to its end, and the parser cache would keep it."""
    if not isinstance(document, str) or len(document) * 4 <= limits.bytes:
        return None
    size = len(document.encode("utf-8", "surrogatepass"))
    if size <= limits.bytes:
        return None
    message = f"The document has {size} bytes; the limit is {limits.bytes}. Send values as variables."
    return GraphQLError(message, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})


def refusals(size: Size, limits: Limits) -> list[str]:
    found = []
    if size.depth > limits.depth:
        found.append(f"The query nests fields {size.depth} deep; the limit is {limits.depth}.")
    if size.aliases > limits.aliases:
        found.append(f"The query uses {_shown(size.aliases)} aliases; the limit is {limits.aliases}.")
    if size.cost > limits.cost:
        found.append(
            f"The query's estimated cost is {_shown(size.cost)}; the limit is {limits.cost}. A connection's "
            "selection counts once per item its `first` asks for: ask for fewer items or fewer fields."
        )
    return found


class QueryLimits(SchemaExtension):
    """List it after `ValidationCache`: the limits are measured once the standard rules have passed."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        # The parser stops at the limit (comments included), before reading the rest of the document.
        self.execution_context.parse_options["max_tokens"] = self.limits.tokens
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        # The parser's refusal reaches the caller as a syntax error; it is a limit, and says which.
        for error in self.execution_context.pre_execution_errors or []:
            if _TOO_MANY_TOKENS.search(error.message):
                _recode(error, f"The document has more than {self.limits.tokens} tokens, the limit.")
            elif _TOO_DEEP_TO_PARSE.search(error.message):
                _recode(error, f"The document is nested too deeply; the depth limit is {self.limits.depth}.")

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # An invalid document keeps the standard rules' errors (a fragment cycle among them).
        if not context.pre_execution_errors and document is not None:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                variables = context.variables or {}
                refused = limit_refusals(context.schema._schema, document, operation, variables, self.limits)
                context.pre_execution_errors = refused or context.pre_execution_errors
        yield


def limit_refusals(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, object],
    limits: Limits,
) -> list[GraphQLError]:
    """Why the limits refuse the operation with these variables: a list too long, or a query too large (none when
    it is within them). The document is valid: the standard rules have passed."""
    if long := long_list(document, operation, variables):
        field, items = long
        message = f"{field or 'A list'} has {items} items; at most {MAX_LIST_ITEMS} are accepted."
        extensions = {"code": ErrorCode.BAD_USER_INPUT.value, **({"field": field} if field else {})}
        return [GraphQLError(message, nodes=[operation], extensions=extensions)]
    size = measure(schema, document, operation, variables)
    return [_too_complex(message, operation) for message in refusals(size, limits)]


def long_list(
    document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, object]
) -> tuple[str | None, int] | None:
    """The first list over `MAX_LIST_ITEMS`: in a variable of the operation (with its path, e.g. `input.sideEffects`)
    or written in the document (no path); None when there is none."""
    declared = [v.variable.name.value for v in operation.variable_definitions or ()]
    for name in declared:
        if name in variables and (found := _long_list(variables[name], name)):
            return found
    longest = _longest_literal(document)
    return (None, longest) if longest > MAX_LIST_ITEMS else None


# Per parsed document (schema/documents.py): the walk would otherwise repeat for every request sending the text.
_LONGEST_LITERALS = PerDocument[int]()


def _longest_literal(document: DocumentNode) -> int:
    known = _LONGEST_LITERALS.get(document)
    if known is not None:
        return known
    literals = _LongestLiteral()
    visit(document, literals)
    return _LONGEST_LITERALS.put(document, literals.longest)


def _long_list(value: object, name: str) -> tuple[str, int] | None:
    # Found first, its path spelled out after: a megabyte of variables is walked in a few tens of milliseconds.
    stack = [value]
    while stack:
        top = stack.pop()
        if isinstance(top, list):
            if len(top) > MAX_LIST_ITEMS:
                return name + _path_to(top, value), len(top)
            stack.extend(v for v in top if isinstance(v, (list, dict)))
        elif isinstance(top, dict):
            stack.extend(v for v in top.values() if isinstance(v, (list, dict)))
    return None


def _path_to(target: object, value: object) -> str:
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        top, path = stack.pop()
        if top is target:
            return path
        if isinstance(top, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(top) if isinstance(v, (list, dict)))
        elif isinstance(top, dict):
            stack.extend((v, f"{path}.{k}") for k, v in top.items() if isinstance(v, (list, dict)))
    return ""


class _LongestLiteral(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.longest = 0

    def enter_list_value(self, node: ListValueNode, *_: object) -> None:
        self.longest = max(self.longest, len(node.values))


class _Measure:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, object]) -> None:
        self.schema = schema
        self.variables = variables
        # The variables read: the measure depends on nothing else than the document and their page sizes.
        self.read: set[str] = set()
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        # Each fragment is measured once, after those it spreads: spreading it again costs a lookup.
        self.fragments: dict[str, Size] = {}
        for name in _dependency_order(fragments):
            fragment = fragments[name]
            condition = self.schema.get_type(fragment.type_condition.name.value)
            self.fragments[name] = self.selections(fragment.selection_set, condition)

    def selections(self, node: SelectionSetNode, parent: GraphQLNamedType | None) -> Size:
        total = Size()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total = total.beside(self.field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition is not None else parent
                total = total.beside(self.selections(selection.selection_set, scope))
            elif isinstance(selection, FragmentSpreadNode):
                # A fragment in a cycle is cut where the cycle closes (validation refuses such documents anyway).
                total = total.beside(self.fragments.get(selection.name.value, Size()))
        return total

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> Size:
        aliases = 1 if node.alias is not None else 0
        definition = _definition(parent, node.name.value)
        # Introspection is answered from memory, and production refuses it before this point.
        if node.selection_set is None or definition is None or node.name.value.startswith("__"):
            return Size(1, aliases, 1)
        inner = self.selections(node.selection_set, get_named_type(definition.type))
        cost = 1 + self.items(node, definition, parent) * inner.cost
        return Size(1 + inner.depth, _cap(aliases + inner.aliases), _cap(cost))

    def items(self, node: FieldNode, definition: GraphQLField, parent: GraphQLNamedType | None) -> int:
        if "first" in definition.args and get_named_type(definition.type).name.endswith("Connection"):
            return self.first(node)
        # A connection's edges are already counted by its `first`.
        if parent is None or parent.name.endswith("Connection") or not is_list_type(get_nullable_type(definition.type)):
            return 1
        return LIST_WEIGHTS.get((parent.name, node.name.value), UNDECLARED_LIST)

    def first(self, node: FieldNode) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        value = _page_size(self.value(argument.value) if argument is not None else None)
        # Outside 1…MAX_PAGE the resolver refuses `first` (BAD_USER_INPUT) before it reads a row.
        return value if 1 <= value <= MAX_PAGE else 1

    def value(self, node: ValueNode) -> object:
        if isinstance(node, VariableNode):
            self.read.add(node.name.value)
            return self.variables.get(node.name.value)
        return _literal_int(node)


def _page_size(value: object) -> int:
    """`first` as the resolver will see it. graphql-core coerces an integral float variable (`100.0`, `1e2`) to
    that Int; any other value it refuses, but a guess that could undercount must not decide, so it weighs a page."""
    if value is None:
        return DEFAULT_PAGE
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return MAX_PAGE


def _definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if isinstance(fields, dict) else None


def _defaults(operation: OperationDefinitionNode) -> dict[str, object]:
    return {
        v.variable.name.value: _literal_int(v.default_value)
        for v in operation.variable_definitions or ()
        if v.default_value is not None
    }


def _literal_int(node: ValueNode | None) -> int | None:
    # Validation refuses an Int beyond 32 bits; the length check spares `int()` a literal of thousands of digits.
    return int(node.value) if isinstance(node, IntValueNode) and len(node.value) <= 11 else None


def _dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Every fragment after the fragments it spreads. Iterative: a long chain of fragments must not exhaust the
    interpreter's stack."""
    order: list[str] = []
    seen: set[str] = set()
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_spreads(fragments[root].selection_set)))]
        while stack:
            name, pending = stack[-1]
            child = next((c for c in pending if c in fragments and c not in seen), None)
            if child is None:
                stack.pop()
                order.append(name)
            else:
                seen.add(child)
                stack.append((child, iter(_spreads(fragments[child].selection_set))))
    return order


def _spreads(node: SelectionSetNode) -> list[str]:
    names: list[str] = []
    stack = [node]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set is not None:
                stack.append(selection.selection_set)
    return names


def _cap(value: int) -> int:
    return min(value, CEILING)


def _shown(value: int) -> str:
    return f"over {CEILING}" if value >= CEILING else str(value)


def _too_complex(message: str, operation: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(message, nodes=[operation], extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})


def _recode(error: GraphQLError, message: str) -> None:
    # In place: Strawberry holds the same error object in the result it is about to return.
    error.message = message
    error.extensions = {"code": ErrorCode.QUERY_TOO_COMPLEX.value}
