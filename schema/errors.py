"""One place that turns failures into GraphQL errors with a stable `extensions.code`.

Domain errors pass with their code and field; parse, validation and variable-coercion errors become
BAD_USER_INPUT naming the variable path; anything else is masked as INTERNAL and logged with the request id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult, StreamExecutionResult

from api.db import is_connection_failure
from api.domain.errors import DomainError, ErrorCode

log = logging.getLogger("interlude.graphql")

# Where the app leaves, in the request's state, a callable that counts error codes (`api.metrics`); absent, the
# codes are only logged.
ERROR_COUNTER = "count_graphql_errors"
ErrorCounter = Callable[[Sequence[str]], None]

# graphql-core 3.3: "Variable '$input' has invalid value at .sideEffects[0].severity: …",
# "Variable '$email' of required type 'String!' was not provided.", "… of non-null type … must not be null."
_VARIABLE = re.compile(r"^Variable '\$(\w+)'(?: has invalid (?:default )?value(?: at ((?:\.\w+|\[\d+\])+))?:)?")
# The inner message names a field of an input object that is missing or unknown.
_INPUT_FIELD = re.compile(r"to include required field '(\w+)'|not to include unknown field '(\w+)'")


def camel(path: str) -> str:
    """`side_effects[0].severity` → `sideEffects[0].severity`: errors name fields as the API spells them.

    Brackets hold data, not field names (`answers[phq9_difficulty]` names the item the client sent), and are kept.
    """
    parts = re.split(r"(\[[^\]]*\])", path)
    return "".join(p if p.startswith("[") else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), p) for p in parts)


def domain_extensions(error: DomainError) -> dict[str, object]:
    extensions: dict[str, object] = {"code": error.code.value}
    if error.field is not None:
        extensions["field"] = camel(error.field)
    return extensions


def input_error_field(message: str) -> str | None:
    """The variable path a coercion error is about, e.g. `input.clientId`; None for other errors."""
    match = _VARIABLE.match(message)
    if match is None:
        return None
    field = match.group(1) + (match.group(2) or "")
    if inner := _INPUT_FIELD.search(message, match.end()):
        field += "." + (inner.group(1) or inner.group(2))
    return field


def has_code(error: GraphQLError) -> bool:
    return bool((error.extensions or {}).get("code"))


def public_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the caller may see it. An unexpected failure is logged here, with its traceback."""
    cause = error.original_error
    if isinstance(cause, DomainError):
        return _with(error, error.message, domain_extensions(cause))
    if error.path is None and (cause is None or isinstance(cause, GraphQLError)):
        # Raised before execution (syntax, validation, variable coercion): the request itself is at fault.
        extensions: dict[str, object] = {"code": (error.extensions or {}).get("code", ErrorCode.BAD_USER_INPUT.value)}
        if field := input_error_field(error.message):
            extensions["field"] = field
        return _with(error, error.message, extensions)
    if cause is not None and is_connection_failure(cause):
        # The exception's class only: driver messages may quote the URL or the statement.
        log.warning("graphql.database_unavailable", extra={"request_id": request_id, "error": type(cause).__name__})
        return _with(
            error,
            "The service is briefly unavailable; send the request again",
            {"code": ErrorCode.UNAVAILABLE.value, "retryable": True, "requestId": request_id},
        )
    log.error(
        "graphql.unexpected_error",
        exc_info=(type(cause), cause, cause.__traceback__) if cause is not None else None,
        extra={"request_id": request_id, "path": list(error.path or [])},
    )
    return _with(error, "Internal error", {"code": ErrorCode.INTERNAL.value, "requestId": request_id})


class _Result(Protocol):
    errors: list[GraphQLError] | None


class ErrorPolicy(SchemaExtension):
    streamed = False

    def on_operation(self) -> Iterator[None]:
        yield
        if not self.streamed:
            make_public(self.execution_context.result, self.execution_context.context)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # A subscription sends each result as it comes, before the operation ends: each gets its codes here.
        self.streamed = True
        if isinstance(result, ExecutionResult):
            make_public(result, self.execution_context.context)
        yield


def make_public(result: _Result | None, context: object) -> None:
    """The result's errors as the caller may see them (`public_error`), counted and logged by their codes.
    `context` is the operation's (its request id, the request's error counter)."""
    errors = getattr(result, "errors", None)
    if result is None or not errors:
        return
    request_id = _request_id(context)
    result.errors = [e if _already_public(e) else public_error(e, request_id) for e in errors]
    for replaced in errors:
        _drop_tracebacks(replaced)
    codes = error_codes(result.errors)
    # Codes only: messages of refused requests may quote the caller's variables (health data, emails).
    log.info("graphql.errors", extra={"request_id": request_id, "codes": codes})
    if (count := _error_counter(context)) is not None:
        count(codes)


def _error_counter(context: object) -> ErrorCounter | None:
    request = getattr(context, "request", None)
    counter: ErrorCounter | None = getattr(request.state, ERROR_COUNTER, None) if request is not None else None
    return counter


def _request_id(context: object) -> str:
    meta = getattr(context, "meta", None)
    return getattr(meta, "request_id", "") or ""


def _drop_tracebacks(error: GraphQLError) -> None:
    """A failure's traceback holds the frames it passed through, and they hold the executor, which holds the
    failure: a reference cycle that kept the whole request for the garbage collector. Logged by now where it had
    to be (`public_error`), it is not needed any more; the public error the caller gets never had one."""
    seen: set[int] = set()
    failure: BaseException | None = error
    while failure is not None and id(failure) not in seen:
        seen.add(id(failure))
        failure.__traceback__ = None
        nested = failure.original_error if isinstance(failure, GraphQLError) else None
        failure = nested or failure.__cause__ or failure.__context__


def _already_public(error: GraphQLError) -> bool:
    return has_code(error) and error.original_error is None


def error_codes(errors: Sequence[GraphQLError]) -> list[str]:
    """Each error's `extensions.code` ("" for none), as counted and logged."""
    return [str((e.extensions or {}).get("code", "")) for e in errors]


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )
