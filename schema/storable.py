"""Text no column can hold is refused before anything runs: NUL (PostgreSQL's text refuses it) and lone surrogates
(no encoding has them), in variables and in literals alike, as BAD_USER_INPUT naming where it was sent.

Otherwise such text reaches a driver or `str.encode()` inside a resolver (a filter, a hash, an insert) and fails
as INTERNAL. Every string is checked, whatever its type: a JSON scalar's strings and keys are stored too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLSchema,
    GraphQLType,
    ObjectFieldNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    visit,
)
from graphql.language import ArgumentNode, ListValueNode, ObjectValueNode
from strawberry.extensions import SchemaExtension

from api.domain.errors import ErrorCode
from api.domain.text import storable

MESSAGE = "contains characters that cannot be stored"
# Input fields whose service refuses such text itself, better than a refusal of the whole operation could: the diary
# answers each entry of a sync batch on its own (design §6), so one note cut inside an emoji by a phone must not
# refuse the rest of the offline queue.
CHECKED_BY_THE_DOMAIN = frozenset({("DiaryEntryInput", "note"), ("DiaryEntryPatch", "note")})


class StorableText(SchemaExtension):
    """List it after `ValidationCache` and `QueryLimits`: only a valid document within the limits is searched."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if not context.pre_execution_errors and document is not None:
            schema = context.schema._schema
            if (field := unstorable_input(schema, document, context.query, context.variables or {})) is not None:
                extensions = {"code": ErrorCode.BAD_USER_INPUT.value, "field": field}
                context.pre_execution_errors = [GraphQLError(MESSAGE, extensions=extensions)]
        yield


def unstorable_input(
    schema: GraphQLSchema, document: DocumentNode, query: str | None, variables: Mapping[str, object]
) -> str | None:
    """Where the document or its variables hold text no column can hold (`input.displayName`, `entries[2].promptId`,
    `search`), else None.

    A quick look first, as almost no request holds such text: searching where it sits, with the schema's types, is
    ten times slower (most of a second for a megabyte of JSON). A literal holds NUL only written raw or escaped
    (\\u0000, \\u{0}); the parser refuses lone surrogates."""
    in_literals = literals_may_be_unstorable(query)
    in_variables = any_unstorable(variables)
    if not (in_literals or in_variables):
        return None
    finder = _Finder(TypeInfo(schema), variables if in_variables else {})
    visit(document, TypeInfoVisitor(finder.info, finder))
    return finder.found


def literals_may_be_unstorable(query: str | None) -> bool:
    """Whether the document's text may hold a literal no column can hold: NUL, written raw or escaped."""
    return query is None or "\x00" in query or "\\u" in query


def any_unstorable(variables: Mapping[str, object]) -> bool:
    """Whether any string in the variables (a key or a value, at any depth) cannot be stored.

    A quick look first, in C: orjson writes every such string's NUL as `\\u0000` and refuses a lone surrogate, and
    it writes every string the walk below reads (and more: a tuple's, a dataclass's). Without either, no string
    holds one; with either (or a value orjson refuses, such as an integer beyond 64 bits), the walk decides. The
    walk alone was 2% of a diary write's Python (bench/README.md, session 17)."""
    try:
        text = orjson.dumps(variables)
    except TypeError:  # orjson.JSONEncodeError included
        return _walk_unstorable(variables)
    return b"\\u0000" in text and _walk_unstorable(variables)


def _walk_unstorable(variables: Mapping[str, object]) -> bool:
    stack: list[object] = [variables]
    while stack:
        top = stack.pop()
        if isinstance(top, str):
            if not storable(top):
                return True
        elif isinstance(top, dict):
            stack.extend(top)
            stack.extend(top.values())
        elif isinstance(top, list):
            stack.extend(top)
    return False


class _Finder(Visitor):
    """The first unstorable string: in a literal, where it is written; in a variable, at each place the variable
    is used (which says whether the domain checks it there)."""

    def __init__(self, info: TypeInfo, variables: Mapping[str, object]) -> None:
        super().__init__()
        self.info = info
        self.variables = variables
        self.path: list[str] = []
        self.found: str | None = None

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        self.path.append(node.name.value)

    def leave_argument(self, *_: object) -> None:
        self.path.pop()

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: object) -> None:
        # A default value is named after its variable.
        self.path.append(node.variable.name.value)

    def leave_variable_definition(self, *_: object) -> None:
        self.path.pop()

    def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
        self.path.append(f".{node.name.value}")

    def leave_object_field(self, *_: object) -> None:
        self.path.pop()

    def enter_list_value(self, _: ListValueNode, key: object, *__: object) -> None:
        self.path.append(_index(key))

    def leave_list_value(self, *_: object) -> None:
        self.path.pop()

    def enter_object_value(self, _: ObjectValueNode, key: object, *__: object) -> None:
        self.path.append(_index(key))

    def leave_object_value(self, *_: object) -> None:
        self.path.pop()

    def enter_string_value(self, node: StringValueNode, key: object, *_: object) -> None:
        if self.found is None and not self._checked_by_the_domain() and not storable(node.value):
            self.found = "".join(self.path) + _index(key)

    def enter_variable(self, node: VariableNode, key: object, parent: object, *_: object) -> None:
        if self.found is not None or isinstance(parent, VariableDefinitionNode) or self._checked_by_the_domain():
            return
        name = node.name.value
        if name in self.variables:
            self.found = _in_value(self.variables[name], self.info.get_input_type(), name)

    def _checked_by_the_domain(self) -> bool:
        field = self.path[-1][1:] if self.path and self.path[-1].startswith(".") else ""
        return _checked_by_the_domain(self.info.get_parent_input_type(), field)


def _in_value(value: object, input_type: GraphQLInputType | None, path: str) -> str | None:
    """The path of the first unstorable string in a variable's value (keys included). Iterative: a JSON value may
    be nested as deep as the body allows."""
    stack: list[tuple[object, GraphQLInputType | None, str]] = [(value, input_type, path)]
    while stack:
        top, top_type, at = stack.pop()
        kind = get_nullable_type(top_type)
        if isinstance(kind, GraphQLList) and not isinstance(top, list):
            # GraphQL takes a single value where a list is expected as a list of one.
            kind = get_nullable_type(kind.of_type)
        if isinstance(top, str):
            if not storable(top):
                return at
        elif isinstance(top, list):
            item = kind.of_type if isinstance(kind, GraphQLList) else None
            stack.extend((v, item, f"{at}[{i}]") for i, v in reversed(list(enumerate(top))))
        elif isinstance(top, dict):
            if any(not storable(str(k)) for k in top):
                return at
            fields = [(str(k), v) for k, v in top.items() if not _checked_by_the_domain(kind, str(k))]
            stack.extend(reversed([(v, _field_type(kind, k), f"{at}.{k}") for k, v in fields]))
    return None


def _checked_by_the_domain(parent: GraphQLType | None, field: str) -> bool:
    named = get_named_type(parent)
    return isinstance(named, GraphQLInputObjectType) and (named.name, field) in CHECKED_BY_THE_DOMAIN


def _field_type(kind: object, name: str) -> GraphQLInputType | None:
    """The type of an input object's field; None inside a JSON value (whose strings are checked all the same)."""
    if not isinstance(kind, GraphQLInputObjectType):
        return None
    field = kind.fields.get(name)
    return field.type if field is not None else None


def _index(key: object) -> str:
    return f"[{key}]" if isinstance(key, int) else ""
