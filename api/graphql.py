"""The GraphQL endpoint: bearer-token authentication and the per-request context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from api.auth import bearer_token, request_meta
from api.domain.errors import DomainError
from api.domain.services import Services
from schema.context import Context
from schema.errors import has_code, public_error


class OperationContexts:
    """The schema as a websocket connection's operations reach it: each operation runs on its own copy of the
    connection's context (`Context.for_operation`), with its own time and audit bookkeeping."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema

    async def stream(self, query: str | None, **kwargs: Any) -> Any:
        connection: Context = kwargs["context_value"]
        return await self._schema.stream(query, **{**kwargs, "context_value": connection.for_operation()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, where Strawberry would run every operation of a connection on the one context it
    made for the connection: queries and mutations as well as subscriptions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry starts every operation with `self.schema.stream(…, context_value=self.context)`.
        self.schema = cast(BaseSchema, OperationContexts(self.schema))


class InterludeGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, *args: object, services: Services, clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.services = services
        self.clock = clock

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        now = self.clock()
        meta = request_meta(request)
        context = Context(
            services=self.services, now=now, meta=meta, request=request, response=response, clock=self.clock
        )
        header = request.headers.get("authorization")
        if header:
            self._authenticate(context, header, now)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws `connection_init`: the token comes in its payload as {"authorization": "Bearer …"}
        (browsers cannot set headers on a websocket), else from the upgrade request's Authorization header.
        Without a valid token the connection is closed with 4403 before any operation can start."""
        params = {str(k).lower(): v for k, v in (context.connection_params or {}).items()}
        authorization = params.get("authorization")
        if authorization is not None:
            context.actor, context.auth_error, context.token = None, None, None
            self._authenticate(context, authorization if isinstance(authorization, str) else "", self.clock())
        if context.actor is None:
            raise ConnectionRejectionError
        return UnsetType()  # the singleton UNSET: a plain connection_ack

    def _authenticate(self, context: Context, authorization: str, now: datetime) -> None:
        try:
            token = bearer_token(authorization)
            context.actor = self.services.accounts.tokens.verify(token, now=now, meta=context.meta)
        except DomainError as exc:
            context.auth_error = exc
            return
        if isinstance(context.request, WebSocket):
            # Kept so that every later use on the connection checks the token again (`Context.require_actor`).
            context.token = token
        if context.request is not None:
            context.request.scope.setdefault("state", {})["actor_id"] = str(context.actor.account_id)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Strawberry answers an exception raised by an extension's hook outside the operation, and so outside
        # `ErrorPolicy`. Such errors get their code (and, if unexpected, their log line) here.
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id", "")
            result.errors = [e if has_code(e) else public_error(e, request_id) for e in result.errors]
        return await super().process_result(request, result)
