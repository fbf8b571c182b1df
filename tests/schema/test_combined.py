"""Extensions run as one (schema/combined.py) run as Strawberry runs them one by one: each hook's code before its
`yield` in list order, after it in reverse; on an exception the code after `yield` does not run. So they do under
Strawberry's own runner and under `CombinedRunner`, which the app's schema uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import cast

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from schema.combined import Combined, CombinedRunner, combined, runner

LOG: list[str] = []


class RunnerSchema(strawberry.Schema):
    """As the app's schema runs its extensions (schema/__init__.py)."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        made = runner(execution_context, extensions)
        RUNNERS.append(type(made))
        return made


RUNNERS: list[type[SchemaExtensionsRunner]] = []
# The schema classes `combined` runs under: Strawberry's runner, and the app's.
RUNNING = pytest.mark.parametrize(
    "kind", [strawberry.Schema, RunnerSchema], ids=["strawberry-runner", "combined-runner"]
)


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


@RUNNING
async def test_the_hooks_run_in_the_order_strawberry_runs_separate_extensions(kind: type[strawberry.Schema]) -> None:
    parts = [recording("a"), ParseOnly, recording("b")]
    separate = strawberry.Schema(query=Query, extensions=parts)
    together = kind(query=Query, extensions=[combined(parts)])
    for document in ("{ ok }", "{ failing }", "{ unknown }", "{"):
        expected = await logs(separate, document)
        assert expected
        assert await logs(together, document) == expected


@RUNNING
def test_the_hooks_run_in_that_order_when_executed_synchronously(kind: type[strawberry.Schema]) -> None:
    parts = [recording("a"), ParseOnly, recording("b")]
    outcomes = []
    for schema in (strawberry.Schema(query=Query, extensions=parts), kind(query=Query, extensions=[combined(parts)])):
        LOG.clear()
        result = schema.execute_sync("{ ok failing }")
        outcomes.append((result.data, [e.message for e in result.errors or []], list(LOG)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2][-1] == "a operation after"


async def test_the_apps_schema_runs_a_combined_extension_with_the_combined_runner() -> None:
    RUNNERS.clear()
    await RunnerSchema(query=Query, extensions=[combined([recording("a")])]).execute("{ ok }")
    await RunnerSchema(query=Query, extensions=[recording("a")]).execute("{ ok }")
    assert [CombinedRunner, SchemaExtensionsRunner] == RUNNERS


async def test_each_request_gets_new_parts() -> None:
    seen: list[SchemaExtension] = []  # the parts themselves, so that an id is not reused

    class Remembering(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            seen.append(self)
            yield

    schema = strawberry.Schema(query=Query, extensions=[combined([Remembering])])
    first, second = await schema.execute("{ ok }"), await schema.execute("{ ok }")
    assert first.data == second.data == {"ok": 1}
    assert len(seen) == 2
    assert seen[0] is not seen[1]


def test_an_exception_inside_closes_the_started_hooks_without_running_their_rest() -> None:
    extension = Combined([recording("a"), recording("b")])
    extension.execution_context = None  # type: ignore[assignment]
    LOG.clear()
    hook = cast("Generator[None, None, None]", extension.on_operation())
    next(hook)
    with pytest.raises(RuntimeError, match="boom"):
        hook.throw(RuntimeError("boom"))
    assert LOG == ["a operation before", "b operation before"]


def test_a_hook_that_is_not_a_generator_cannot_run_combined() -> None:
    class Plain(SchemaExtension):
        def on_execute(self) -> None:  # type: ignore[override]
            return None

    with pytest.raises(TypeError, match="must be a generator"):
        combined([Plain])


class RefusingBeforeExecution(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        LOG.append("refusing execute before")
        if LOG:  # always: a generator whose code before its yield raises
            raise RuntimeError("refused")
        yield


@RUNNING
async def test_a_hook_that_raises_before_its_yield_ends_as_with_separate_extensions(
    kind: type[strawberry.Schema],
) -> None:
    parts = [recording("a"), RefusingBeforeExecution, recording("b")]
    separate = strawberry.Schema(query=Query, extensions=parts)
    together = kind(query=Query, extensions=[combined(parts)])
    outcomes = []
    for schema in (separate, together):
        LOG.clear()
        result = await schema.execute("{ ok }")
        outcomes.append((result.data, [e.message for e in result.errors or []], list(LOG)))
    assert outcomes[0] == outcomes[1]
    data, errors, log = outcomes[0]
    assert (data, errors) == (None, ["refused"])
    assert "refusing execute before" in log
    assert "b execute before" not in log


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self) -> AsyncGenerator[int, None]:
        for n in (1, 2):
            yield n


class StreamRecording(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        LOG.append("operation before")
        yield
        LOG.append("operation after")

    def on_stream_result(self, result: strawberry.types.StreamExecutionResult) -> Iterator[None]:
        LOG.append(f"result before {getattr(result, 'data', None)}")
        yield
        LOG.append("result after")


@RUNNING
async def test_a_subscriptions_results_pass_the_hooks_as_with_separate_extensions(
    kind: type[strawberry.Schema],
) -> None:
    outcomes = []
    parts: list[Callable[[], SchemaExtension]] = [StreamRecording, recording("a")]
    for schema_kind, extensions in ((strawberry.Schema, parts), (kind, [combined(parts)])):
        schema = schema_kind(query=Query, subscription=Subscription, extensions=extensions)
        LOG.clear()
        stream = await schema.subscribe("subscription { count }")
        assert not isinstance(stream, strawberry.types.ExecutionResult)
        data = [getattr(result, "data", None) async for result in stream]
        assert data == [{"count": 1}, {"count": 2}]
        outcomes.append(list(LOG))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].count("result after") == 2
