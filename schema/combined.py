"""Several schema extensions run as one.

For every request Strawberry instantiates each extension, and for each of its five hooks asks every extension
whether it overrides the hook, wraps each override in a context manager and enters it through an exit stack: with
the eight extensions of this schema about 50 µs a request, as much as the rest of Strawberry's own work for a small
query (bench/README.md). `Combined` is one extension that runs the hooks of its parts in their order (each hook's
code before its `yield` in list order, after it in reverse, as Strawberry does), knowing from the schema's build
which hooks each part overrides. `CombinedRunner` then enters each of its hooks directly: Strawberry's own runner
would still wrap the one extension's hooks in context managers and an exit stack for every stage of every request
(about a fifth of a `{ __typename }` request's CPU, bench/README.md).

Only synchronous generator hooks are run (every part here has only those). When the operation raises inside a hook,
the parts' hooks are closed, not resumed: like Strawberry's, their code after `yield` does not run, and no part here
catches an exception at its `yield`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from inspect import isgeneratorfunction
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext, StreamExecutionResult

HOOKS = ("on_operation", "on_parse", "on_validate", "on_execute", "on_stream_result")
# For each hook, the positions of the parts that override it.
Overriding = Mapping[str, tuple[int, ...]]


def combined(parts: Sequence[Callable[[], SchemaExtension]]) -> Callable[[], Combined]:
    """The schema's extension factory: each request gets a `Combined` of new parts. Each part is made once now to
    learn which hooks it overrides, so that a part that cannot run combined is refused when the schema is built."""
    overriding = _overriding([type(make()) for make in parts])
    return lambda: Combined(parts, overriding)


class Combined(SchemaExtension):
    def __init__(self, parts: Sequence[Callable[[], SchemaExtension]], overriding: Overriding | None = None) -> None:
        super().__init__()
        self.parts = [make() for make in parts]
        self.overriding = overriding if overriding is not None else _overriding([type(p) for p in self.parts])

    def _run(self, hook: str, *args: Any) -> Iterator[None]:
        started: list[Iterator[None]] = []
        context = self.execution_context
        try:
            for position in self.overriding[hook]:
                part = self.parts[position]
                part.execution_context = context
                steps: Iterator[None] = getattr(part, hook)(*args)
                next(steps)
                started.append(steps)
            yield
        except BaseException:
            for steps in reversed(started):
                steps.close()  # type: ignore[attr-defined]  # a generator
            raise
        for steps in reversed(started):
            _finish(steps)

    def on_operation(self) -> Iterator[None]:
        yield from self._run("on_operation")

    def on_parse(self) -> Iterator[None]:
        yield from self._run("on_parse")

    def on_validate(self) -> Iterator[None]:
        yield from self._run("on_validate")

    def on_execute(self) -> Iterator[None]:
        yield from self._run("on_execute")

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        yield from self._run("on_stream_result", result)


def runner(context: ExecutionContext, extensions: list[SchemaExtension]) -> SchemaExtensionsRunner:
    """The schema's `create_extensions_runner`: `CombinedRunner` for a request whose one extension is a `Combined`,
    Strawberry's own runner for any other."""
    if len(extensions) == 1 and type(extensions[0]) is Combined:
        return CombinedRunner(context, extensions[0])
    return SchemaExtensionsRunner(execution_context=context, extensions=extensions)


class CombinedRunner(SchemaExtensionsRunner):
    """Strawberry's runner for one `Combined`: each stage runs that hook of its parts (`Combined._run`) as the
    stage's context, with nothing in between."""

    def __init__(self, context: ExecutionContext, extension: Combined) -> None:
        super().__init__(execution_context=context, extensions=[extension])
        self.combined = extension

    def operation(self) -> OperationContextManager:
        return _Operation(self.combined)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.combined)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.combined)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.combined)

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        return _StreamResult(self.combined, result)


class _Stage(ExtensionContextManagerBase):
    """One stage of a request (its HOOK_NAME) entered and left as Strawberry's context manager for it is, sync or
    async: the code of the parts' hooks before `yield` on entry, after it on a normal exit. On an exception the
    started hooks are closed, not resumed, as `Combined._run` closes them when the exception is thrown into it."""

    def __init__(self, combined: Combined, *args: Any) -> None:
        # Not the base's __init__: it looks up and wraps every extension's hook, which is the cost avoided here.
        self.combined = combined
        self.args = args

    def __enter__(self) -> None:
        self.steps = self.combined._run(self.HOOK_NAME, *self.args)
        next(self.steps)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            _finish(self.steps)
        else:
            self.steps.close()  # type: ignore[attr-defined]  # a generator

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.__exit__(kind, error, trace)


class _Operation(_Stage, OperationContextManager):
    pass


class _Validation(_Stage, ValidationContextManager):
    pass


class _Parsing(_Stage, ParsingContextManager):
    pass


class _Executing(_Stage, ExecutingContextManager):
    pass


class _StreamResult(_Stage, StreamResultContextManager):
    pass


def _finish(steps: Iterator[None]) -> None:
    try:
        next(steps)
    except StopIteration:
        return
    raise RuntimeError("an extension hook yielded more than once")


def _overriding(kinds: Sequence[type[SchemaExtension]]) -> Overriding:
    """For each hook, which of the parts' classes override it; each override must be a generator function."""
    for kind in kinds:
        if kind.resolve is not SchemaExtension.resolve or kind.get_results is not SchemaExtension.get_results:
            raise TypeError(f"{kind.__name__} has a hook that cannot run combined")
        for hook in HOOKS:
            if _overrides(kind, hook) and not isgeneratorfunction(getattr(kind, hook)):
                raise TypeError(f"{kind.__name__}.{hook} must be a generator to run combined")
    return {hook: tuple(i for i, kind in enumerate(kinds) if _overrides(kind, hook)) for hook in HOOKS}


def _overrides(kind: type[SchemaExtension], hook: str) -> bool:
    return getattr(kind, hook) is not getattr(SchemaExtension, hook)
