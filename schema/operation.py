"""Names the operation in the request metadata, so audit events and logs say what was run."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


class OperationName(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        meta = getattr(ec.context, "meta", None)
        if meta is not None:
            meta.operation = ec.operation_name or _first_field(ec.graphql_document)
        yield


def _first_field(document: DocumentNode | None) -> str | None:
    """An anonymous operation is named after its first top-level field (`{ me { id } }` is "me")."""
    if document is None:
        return None
    # Fragments may come first in the document; the operation is what runs.
    operation = next((d for d in document.definitions if isinstance(d, OperationDefinitionNode)), None)
    if operation is None:
        return None
    first = next((s for s in operation.selection_set.selections if isinstance(s, FieldNode)), None)
    return first.name.value if first is not None else None
