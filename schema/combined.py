"""Several schema extensions run as one.

For every request Strawberry instantiates each extension, and for each of its five hooks asks every extension
whether it overrides the hook, wraps each override in a context manager and enters it through an exit stack: with
the eight extensions of this schema about 50 µs a request, as much as the rest of Strawberry's own work for a small
query (bench/README.md). `Combined` is one extension that runs the hooks of its parts in their order (each hook's
code before its `yield` in list order, after it in reverse, as Strawberry does), knowing from the schema's build
which hooks each part overrides.

Only synchronous generator hooks are run (every part here has only those). When the operation raises inside a hook,
the parts' hooks are closed, not resumed: like Strawberry's, their code after `yield` does not run, and no part here
catches an exception at its `yield`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from inspect import isgeneratorfunction
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

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
