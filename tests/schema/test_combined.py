"""Extensions run as one (schema/combined.py) run as Strawberry runs them one by one: each hook's code before its
`yield` in list order, after it in reverse; on an exception the code after `yield` does not run."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import cast

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from schema.combined import Combined

LOG: list[str] = []


def recording(name: str) -> type[SchemaExtension]:
    class Recording(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            LOG.append(f"{name} operation before")
            yield
            LOG.append(f"{name} operation after")

        def on_validate(self) -> Iterator[None]:
            LOG.append(f"{name} validate before")
            yield
            LOG.append(f"{name} validate after")

        def on_execute(self) -> Iterator[None]:
            LOG.append(f"{name} execute before")
            yield
            LOG.append(f"{name} execute after")

    return Recording


class ParseOnly(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        LOG.append("parse before")
        yield
        LOG.append("parse after")


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> int:
        return 1

    @strawberry.field
    def failing(self) -> int:
        raise ValueError("no")


async def logs(schema: strawberry.Schema, document: str) -> list[str]:
    LOG.clear()
    await schema.execute(document)
    return list(LOG)


async def test_the_hooks_run_in_the_order_strawberry_runs_separate_extensions() -> None:
    parts = [recording("a"), ParseOnly, recording("b")]
    separate = strawberry.Schema(query=Query, extensions=parts)
    combined = strawberry.Schema(query=Query, extensions=[lambda: Combined(parts)])
    for document in ("{ ok }", "{ failing }", "{ unknown }", "{"):
        expected = await logs(separate, document)
        assert expected
        assert await logs(combined, document) == expected


async def test_each_request_gets_new_parts() -> None:
    seen: list[int] = []

    class Remembering(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            seen.append(id(self))
            yield

    schema = strawberry.Schema(query=Query, extensions=[lambda: Combined([Remembering])])
    first, second = await schema.execute("{ ok }"), await schema.execute("{ ok }")
    assert first.data == second.data == {"ok": 1}
    assert len(set(seen)) == 2


def test_an_exception_inside_closes_the_started_hooks_without_running_their_rest() -> None:
    combined = Combined([recording("a"), recording("b")])
    combined.execution_context = None  # type: ignore[assignment]
    LOG.clear()
    hook = cast("Generator[None, None, None]", combined.on_operation())
    next(hook)
    with pytest.raises(RuntimeError, match="boom"):
        hook.throw(RuntimeError("boom"))
    assert LOG == ["a operation before", "b operation before"]


def test_a_hook_that_is_not_a_generator_cannot_run_combined() -> None:
    class Plain(SchemaExtension):
        def on_execute(self) -> None:  # type: ignore[override]
            return None

    combined = Combined([Plain])
    combined.execution_context = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="must be a generator"):
        next(combined.on_execute())
