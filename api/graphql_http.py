"""GraphQL over HTTP (graphql.github.io/graphql-over-http): the media type of a response, the request's parameters
from a GET query string or a POST body, and the status code a response carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from starlette.responses import Response

from api.domain.errors import ErrorCode
from api.http_status import http_status

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
OFFERED = (GRAPHQL_RESPONSE, JSON)


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None


@dataclass
class Refusal(Exception):
    """A request refused before GraphQL sees it; answered as a GraphQL response with an error and no `data`."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


# Kept per header: an app sends the same Accept header with every request, and parsing it cost ~10 µs of each.
# Bounded, as the header is the client's to choose.
@lru_cache(maxsize=64)
def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither (406).

    Each offered type takes the quality of the most specific range that matches it (RFC 9110 §12.5.1); among equal
    qualities an explicitly named type beats a wildcard, then application/graphql-response+json wins. A missing
    Accept header, or only wildcards, gets application/json: what clients written before the media type expect.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = [r for r in (_media_range(part) for part in accept.split(",")) if r is not None]
    quality, *_, best = max(_rank(offered, ranges) for offered in OFFERED)
    return best if quality > 0 else None


def from_query_string(params: Mapping[str, str]) -> GraphQLRequest:
    """GET: parameters in the URL; variables and extensions as JSON text. An empty operationName means none."""
    return _request(
        {
            "query": params.get("query"),
            "variables": _json_parameter(params, "variables"),
            "operationName": params.get("operationName") or None,
            "extensions": _json_parameter(params, "extensions"),
        }
    )


def from_body(content_type: str | None, body: bytes) -> GraphQLRequest:
    """POST: one JSON object in UTF-8. Batches (a JSON array) are not served."""
    mime, charset = _content_type(content_type)
    if mime != JSON or charset not in (None, "utf-8"):
        raise Refusal(415, "Send the request as application/json (UTF-8)", {"accept-post": JSON})
    try:
        parsed = json.loads(body.decode("utf-8"))
    # ValueError covers malformed JSON and bytes that are not UTF-8; RecursionError, arrays nested too deep to read.
    except (ValueError, RecursionError):
        raise Refusal(400, "The request body is not valid JSON") from None
    if isinstance(parsed, list):
        raise Refusal(400, "Batched requests are not supported: send one operation per request")
    if not isinstance(parsed, dict):
        raise Refusal(400, "The request body must be a JSON object")
    return _request(parsed)


def status_of(media: str, body: Mapping[str, object]) -> int:
    """application/json: 200 for every response from GraphQL (legacy clients trust no other status).
    application/graphql-response+json: 200 with `data`, even null; without it (a request error), 400 or the
    status of the first error's code."""
    if media == JSON or "data" in body:
        return 200
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = (first.get("extensions") or {}).get("code")
    return http_status(str(code) if code is not None else None)


def is_request_error(body: Mapping[str, object]) -> bool:
    """Refused before execution (parse, validation, variables, limits): errors, no data, and none at a path."""
    errors = body.get("errors")
    return (
        body.get("data") is None
        and isinstance(errors, list)
        and bool(errors)
        and all(isinstance(e, dict) and "path" not in e for e in errors)
    )


def graphql_response(
    media: str, body: Mapping[str, object], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    # Responses hold patient data and depend on Accept: no cache may keep them, or serve one for the other.
    return Response(
        _encode(body),
        status_code=status,
        headers={**(headers or {}), "cache-control": "no-store", "vary": "Accept"},
        media_type=f"{media}; charset=utf-8",
    )


_AS_STANDARD = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _encode(body: Mapping[str, object]) -> bytes:
    try:
        # What the standard library cannot encode must not become encodable (dataclasses, instants, subclasses):
        # those go to the fallback, which refuses them as before.
        return orjson.dumps(body, option=_AS_STANDARD)
    except TypeError:  # orjson.JSONEncodeError is one
        # orjson refuses what the standard library escapes: a lone surrogate an error message quotes from the
        # document, an integer beyond 64 bits in a JSON scalar.
        return json.dumps(body, separators=(",", ":")).encode()


def refusal_response(media: str, refusal: Refusal) -> Response:
    body = {"errors": [{"message": refusal.message, "extensions": {"code": ErrorCode.BAD_USER_INPUT.value}}]}
    return graphql_response(media, body, refusal.status, refusal.headers)


def _request(data: Mapping[str, object]) -> GraphQLRequest:
    query, variables = data.get("query"), data.get("variables")
    operation_name, extensions = data.get("operationName"), data.get("extensions")
    if query is None:
        raise Refusal(400, "The request has no GraphQL document (`query`)")
    if not isinstance(query, str):
        raise Refusal(400, "`query` must be a string")
    if not isinstance(variables, dict | None):
        raise Refusal(400, "`variables` must be an object")
    if not isinstance(operation_name, str | None):
        raise Refusal(400, "`operationName` must be a string")
    if not isinstance(extensions, dict | None):
        raise Refusal(400, "`extensions` must be an object")
    return GraphQLRequest(query, variables, operation_name, extensions)


def _json_parameter(params: Mapping[str, str], name: str) -> object:
    text = params.get(name)
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Refusal(400, f"`{name}` must be JSON") from None


@dataclass(frozen=True)
class _Range:
    type: str
    subtype: str
    quality: float


def _media_range(text: str) -> _Range | None:
    mime, params = _parameters(text)
    kind, _, subtype = mime.partition("/")
    charset = params.get("charset", "utf-8").lower()
    if not kind or not subtype or charset != "utf-8":
        return None  # malformed, or in an encoding never sent
    try:
        quality = float(params.get("q", "1"))
    except ValueError:
        return None
    return _Range(kind, subtype, min(max(quality, 0.0), 1.0))


def _rank(offered: str, ranges: list[_Range]) -> tuple[float, bool, bool, str]:
    quality, explicit = _quality(offered, ranges)
    # Named explicitly and as wanted as application/json, the new type wins; reached by wildcards only, the old.
    preferred = offered == GRAPHQL_RESPONSE if explicit else offered == JSON
    return quality, explicit, preferred, offered


def _quality(offered: str, ranges: list[_Range]) -> tuple[float, bool]:
    """The quality of the most specific range matching `offered`, and whether that range names it; (0, False)
    when none matches."""
    kind, _, subtype = offered.partition("/")
    matches = [
        (2 if r.subtype == subtype else 1 if r.type == kind else 0, r.quality)
        for r in ranges
        if (r.type, r.subtype) in ((kind, subtype), (kind, "*"), ("*", "*"))
    ]
    if not matches:
        return 0.0, False
    specificity, quality = max(matches)
    return quality, specificity == 2


def _content_type(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    mime, params = _parameters(header)
    charset = params.get("charset")
    return mime, charset.lower() if charset is not None else None


def _parameters(text: str) -> tuple[str, dict[str, str]]:
    """`type/subtype; key=value; …` as the lower-cased type and its parameters (keys lower-cased)."""
    mime, *rest = text.split(";")
    params = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return mime.strip().lower(), params
