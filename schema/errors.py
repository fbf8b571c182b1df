"""One place that turns failures into GraphQL errors with a stable `extensions.code`.

Domain errors pass with their code and field; parse, validation and variable-coercion errors become
BAD_USER_INPUT naming the variable path; anything else is masked as INTERNAL and logged with the request id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api.domain.errors import DomainError, ErrorCode

log = logging.getLogger("interlude.graphql")

_VARIABLE_PATH = re.compile(r"at '([^']+)'")
_VARIABLE_NAME = re.compile(r"Variable '\$(\w+)'")


def camel(path: str) -> str:
    """`side_effects[0].severity` → `sideEffects[0].severity`: errors name fields as the API spells them."""
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def domain_extensions(error: DomainError) -> dict[str, object]:
    extensions: dict[str, object] = {"code": error.code.value}
    if error.field is not None:
        extensions["field"] = camel(error.field)
    return extensions


def _input_error_field(message: str) -> str | None:
    if match := _VARIABLE_PATH.search(message):
        return match.group(1)
    if match := _VARIABLE_NAME.search(message):
        return match.group(1)
    return None


class ErrorPolicy(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._public(error) for error in errors]

    def _public(self, error: GraphQLError) -> GraphQLError:
        cause = error.original_error
        if isinstance(cause, DomainError):
            return _with(error, error.message, domain_extensions(cause))
        if cause is None or error.path is None:
            # Raised before execution (syntax, validation, variable coercion): a path-less error is the caller's.
            extensions: dict[str, object] = {
                "code": (error.extensions or {}).get("code", ErrorCode.BAD_USER_INPUT.value)
            }
            if field := _input_error_field(error.message):
                extensions["field"] = field
            return _with(error, error.message, extensions)
        request_id = self._request_id()
        log.error(
            "graphql.unexpected_error",
            exc_info=(type(cause), cause, cause.__traceback__),
            extra={"request_id": request_id, "path": list(error.path or [])},
        )
        return _with(error, "Internal error", {"code": ErrorCode.INTERNAL.value, "requestId": request_id})

    def _request_id(self) -> str:
        context = self.execution_context.context
        meta = getattr(context, "meta", None)
        return getattr(meta, "request_id", "") or ""


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
