"""What a request selects below a field, read from its document before the field's resolver reads the database.

A page of the diary reads only the columns its selection shows (`DiaryEntry.reads`): a 30-entry page of three
fields need not fetch, decode and convert twenty. Only what the document says for certain counts: a `@skip` or
`@include` anywhere on the way makes the answer "unknown", and the caller reads everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from schema.context import Info


def selected_below(info: Info, path: Sequence[str]) -> frozenset[str] | None:
    """The names of the fields selected at `path` (field names, not aliases) below the field being resolved, in all
    the places the document selects it; `None` when a directive decides it at run time."""
    # graphql-core's own info (Strawberry 0.341, pinned): `info.selected_fields` would convert the whole subtree,
    # argument values included, on every call; the tests of the diary's columns fail if this attribute goes.
    raw = info._raw_info
    names: set[str] = set()
    for node in raw.field_nodes:
        if not _collect(node.selection_set, path, raw.fragments, names):
            return None
    return frozenset(names)


def _collect(
    selections: SelectionSetNode | None,
    path: Sequence[str],
    fragments: Mapping[str, FragmentDefinitionNode],
    names: set[str],
) -> bool:
    """Adds to `names` what `selections` select at `path`; False when a directive makes it unknown."""
    for selection in selections.selections if selections is not None else ():
        if selection.directives:
            return False
        below, rest = None, path
        if isinstance(selection, FieldNode):
            if not path:
                names.add(selection.name.value)
            elif selection.name.value == path[0]:
                below, rest = selection.selection_set, path[1:]
        elif isinstance(selection, InlineFragmentNode):
            below = selection.selection_set
        elif isinstance(selection, FragmentSpreadNode):
            # Known: validation refuses a spread of a fragment the document does not define.
            below = fragments[selection.name.value].selection_set
        if below is not None and not _collect(below, rest, fragments, names):
            return False
    return True
