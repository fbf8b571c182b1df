"""What is worked out once per parsed document and kept with it: the parser cache (`SafeParserCache`) hands the
same tree to every request that sends the same text, so anything that depends only on the tree need not be worked
out again for each (bench/README.md)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Generic, TypeVar

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, Node
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

T = TypeVar("T")


class PerDocument(Generic[T]):
    """A value per parsed document (or per node of one: an operation), by its identity; an entry leaves with its
    document, so the table is bounded by the parser cache and the requests in flight.

    Not a WeakKeyDictionary: a document's hash walks the whole tree (graphql-core's nodes are frozen dataclasses,
    hashed field by field), and that walk is what is being saved."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Node], T]] = {}

    def get(self, document: Node) -> T | None:
        known = self._entries.get(id(document))
        return known[1] if known is not None and known[0]() is document else None

    def put(self, document: Node, value: T) -> T:
        key = id(document)
        entries = self._entries
        entries[key] = (weakref.ref(document, lambda _: entries.pop(key, None)), value)
        return value

    def __len__(self) -> int:
        return len(self._entries)


Rules = tuple[type[ASTValidationRule], ...]
_VALIDATED = PerDocument[tuple[GraphQLSchema, Rules, list[GraphQLError]]]()


class DocumentValidation(SchemaExtension):
    """Strawberry's `ValidationCache`, kept with each parsed document: that cache is an lru_cache keyed by the
    document, so every request hashed the whole tree to find its entry (about 1% of a diary read's CPU)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:  # a document that did not parse is reported before validation
            context.pre_execution_errors = validated(context.schema._schema, document, context.validation_rules)
        yield


def validated(schema: GraphQLSchema, document: DocumentNode, rules: Rules) -> list[GraphQLError]:
    """The errors of validating the document against the schema with these rules, worked out once per document."""
    known = _VALIDATED.get(document)
    if known is not None and known[0] is schema and known[1] == rules:
        return known[2]
    errors = validate_document(schema, document, rules)
    _VALIDATED.put(document, (schema, rules, errors))
    return errors
