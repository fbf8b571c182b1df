"""Names the operation in the request metadata, so audit events and logs say what was run; and leaves in the
request's state the root field that runs, for metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    ValueNode,
    VariableNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension

# Where the request's state holds the name of the first root field the operation runs (`api.metrics` reads it).
# Unlike the operation's name, which the client chooses, it is a field of the schema that actually ran.
ROOT_FIELD = "graphql_root_field"


class OperationName(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        name_operation(ec.context, ec.graphql_document, ec.operation_name, ec.variables or {})
        yield


def name_operation(
    context: object, document: DocumentNode | None, operation_name: str | None, variables: Mapping[str, object]
) -> None:
    """As the operation starts: its name in the request's metadata (`operation_name`, the one the request gave or
    the operation's own, else its first field's), and its root field in the request's state."""
    meta = getattr(context, "meta", None)
    if meta is not None:
        meta.operation = operation_name or _first_field(document)
    request = getattr(context, "request", None)
    if request is not None and document is not None:
        root = root_field(document, operation_name, variables)
        request.scope.setdefault("state", {})[ROOT_FIELD] = root


def root_field(document: DocumentNode, operation_name: str | None, variables: Mapping[str, object]) -> str | None:
    """The name (never the alias) of the first root field the chosen operation runs: through fragments, past
    fields that `@skip` or `@include` leave out. None when it runs none."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    defaults = {
        v.variable.name.value: v.default_value.value
        for v in operation.variable_definitions or ()
        if isinstance(v.default_value, BooleanValueNode)
    }
    variables = {**defaults, **variables}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    # Depth first, in document order; each fragment once (validation has refused cycles, not repeats).
    pending: list[SelectionNode] = list(reversed(operation.selection_set.selections))
    spread: set[str] = set()
    while pending:
        selection = pending.pop()
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            return selection.name.value
        if isinstance(selection, InlineFragmentNode):
            pending.extend(reversed(selection.selection_set.selections))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
            spread.add(selection.name.value)
            if (fragment := fragments.get(selection.name.value)) is not None:
                pending.extend(reversed(fragment.selection_set.selections))
    return None


def _included(selection: SelectionNode, variables: Mapping[str, object]) -> bool:
    for directive in selection.directives or ():
        name = directive.name.value
        condition = next((a.value for a in directive.arguments or () if a.name.value == "if"), None)
        if name in ("skip", "include") and _true(condition, variables) == (name == "skip"):
            return False
    return True


def _true(node: ValueNode | None, variables: Mapping[str, object]) -> bool:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value) is True
    return isinstance(node, BooleanValueNode) and node.value


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
