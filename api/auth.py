"""What every HTTP entry point (GraphQL, websocket, exports) reads from a request before it can act for someone."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from api.domain.actor import RequestMeta
from api.domain.errors import Unauthenticated


def request_meta(request: HTTPConnection) -> RequestMeta:
    """Where the request came from, for audit events; also left in the scope, where the request log line reads
    the operation name and actor once the request is done."""
    state = request.scope.setdefault("state", {})
    client = request.client
    meta = RequestMeta(request_id=state.get("request_id", ""), ip=client.host if client else None)
    state["meta"] = meta
    return meta


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` value; UNAUTHENTICATED for any other scheme or none."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("use an Authorization: Bearer <access token> header")
    return token
