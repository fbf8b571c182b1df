"""The HTTP status of each error code, wherever a refusal is answered with one: a GraphQL request error in
application/graphql-response+json (`api.graphql_http`), an export route (`api.export`)."""

from __future__ import annotations

from collections.abc import Mapping

from api.domain.errors import ErrorCode

HTTP_STATUS: Mapping[str, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}


def http_status(code: str | None) -> int:
    """400 for any other code (bad input, a query too complex, an expired prompt) or none: the request is at fault."""
    return HTTP_STATUS.get(code, 400) if code is not None else 400
