"""Names the operation in the request metadata, so audit events and logs say what was run."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension


class OperationName(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        meta = getattr(ec.context, "meta", None)
        if meta is not None:
            meta.operation = ec.operation_name or _first_field(ec)
        yield


def _first_field(ec: object) -> str | None:
    document = getattr(ec, "graphql_document", None)
    if document is None or not document.definitions:
        return None
    selections = getattr(document.definitions[0], "selection_set", None)
    if selections is None or not selections.selections:
        return None
    first = selections.selections[0]
    return getattr(getattr(first, "name", None), "value", None)
