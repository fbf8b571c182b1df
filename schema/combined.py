"""Several schema extensions run as one.

For every request Strawberry instantiates each extension, and for each of its five hooks asks every extension
whether it overrides the hook, wraps each override in a context manager and enters it through an exit stack: with
the eight extensions of this schema about 50 µs a request, as much as the rest of Strawberry's own work for a small
query (bench/README.md). `Combined` is one extension that runs the hooks of its parts in their order (each hook's
code before its `yield` in list order, after it in reverse, as Strawberry does), knowing once per part's class which
hooks it overrides.

Only synchronous generator hooks are run (every part here has only those). When the operation raises inside a hook,
the parts' hooks are closed, not resumed: like Strawberry's, their code after `yield` does not run, and no part here
catches an exception at its `yield`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from inspect import isgeneratorfunction
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

HOOKS = ("on_operation", "on_parse", "on_validate", "on_execute", "on_stream_result")


class Combined(SchemaExtension):
    def __init__(self, parts: Sequence[Callable[[], SchemaExtension]]) -> None:
        super().__init__()
        self.parts = [make() for make in parts]

    def _run(self, hook: str, *args: Any) -> Iterator[None]:
        started: list[Iterator[None]] = []
        context = self.execution_context
        try:
            for part in self.parts:
                if hook in _overridden(type(part)):
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


def _overridden(kind: type[SchemaExtension]) -> frozenset[str]:
    """The hooks a part's class overrides; each must be a generator function."""
    known = _OVERRIDDEN.get(kind)
    if known is not None:
        return known
    found = {hook for hook in HOOKS if getattr(kind, hook) is not getattr(SchemaExtension, hook)}
    for hook in found:
        if not isgeneratorfunction(getattr(kind, hook)):
            raise TypeError(f"{kind.__name__}.{hook} must be a generator to run combined")
    if kind.resolve is not SchemaExtension.resolve or kind.get_results is not SchemaExtension.get_results:
        raise TypeError(f"{kind.__name__} has a hook that cannot run combined")
    _OVERRIDDEN[kind] = frozenset(found)
    return _OVERRIDDEN[kind]


# By extension class: a few, fixed when the schema is built.
_OVERRIDDEN: dict[type[SchemaExtension], frozenset[str]] = {}
