"""Relay connection shapes for the domain's keyset pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from api.domain.paging import Page

M = TypeVar("M")
N = TypeVar("N")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    # Keyset pages only go forward; these two are here so that Relay clients find them.
    has_previous_page: bool = False
    start_cursor: str | None = None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[M], to_node: Callable[[M], N]) -> Connection[N]:
        edges = [Edge(cursor=c, node=to_node(item)) for c, item in zip(page.cursors, page.items, strict=True)]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                end_cursor=page.end_cursor,
                start_cursor=page.cursors[0] if page.cursors else None,
            ),
        )
