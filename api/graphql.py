"""The GraphQL endpoint: bearer-token authentication, the per-request context, and GraphQL over HTTP."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Any, cast

from graphql import GraphQLError
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from api.auth import bearer_token, request_meta
from api.domain.errors import DomainError, ErrorCode
from api.domain.services import Services
from api.graphql_http import (
    GRAPHQL_RESPONSE,
    JSON,
    GraphQLRequest,
    Refusal,
    from_body,
    from_query_string,
    graphql_response,
    is_request_error,
    negotiate,
    refusal_response,
    status_of,
)
from schema.context import Context
from schema.errors import ERROR_COUNTER, ErrorCounter, error_codes, has_code, public_error
from schema.limits import DEFAULT_LIMITS, Limits, oversized


class OperationContexts:
    """The schema as a websocket connection's operations reach it: each operation runs on its own copy of the
    connection's context (`Context.for_operation`), with its own time and audit bookkeeping. A document over the
    byte limit is refused before the schema parses (or caches) it, as over HTTP."""

    def __init__(self, schema: BaseSchema, limits: Limits) -> None:
        self._schema = schema
        self._limits = limits

    async def stream(self, query: str | None, **kwargs: Any) -> Any:
        connection: Context = kwargs["context_value"]
        if (refusal := oversized(query, self._limits)) is not None:
            if connection.request is not None:
                _count(connection.request, [refusal])
            return _refused(refusal)
        return await self._schema.stream(query, **{**kwargs, "context_value": connection.for_operation()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, where Strawberry would run every operation of a connection on the one context it
    made for the connection: queries and mutations as well as subscriptions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry starts every operation with `self.schema.stream(…, context_value=self.context)`.
        view = cast(InterludeGraphQL, self.view)
        self.schema = cast(BaseSchema, OperationContexts(self.schema, view.limits))


SUBSCRIPTIONS = "Subscriptions are served over the websocket (graphql-transport-ws)"


class InterludeGraphQL(GraphQL[Context, None]):
    """Over HTTP, the GraphQL-over-HTTP specification (api/graphql_http.py) rather than Strawberry's own handling,
    which answers refusals in plain text with 400 and knows no application/graphql-response+json."""

    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(
        self,
        *args: object,
        services: Services,
        clock: Callable[[], datetime],
        limits: Limits = DEFAULT_LIMITS,
        **kwargs: object,
    ) -> None:
        """`limits` are the schema's; the view applies the byte limit, before the schema parses anything."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.services = services
        self.clock = clock
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response = await self.serve(Request(scope, receive))
        await response(scope, receive, send)

    async def serve(self, request: Request) -> Response:
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # No IDE in production: the page is simply not there.
            return await self.render_graphql_ide(request) if self.graphql_ide else PlainTextResponse("Not Found", 404)
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return refusal_response(JSON, Refusal(406, f"Accept {GRAPHQL_RESPONSE} or {JSON}"))
        try:
            operation = await self._read(request)
            sub_response = await self.get_sub_response(request)
            context = await self.get_context(request, sub_response)
            result = await self._run(operation, context, over_get=request.method == "GET")
        except Refusal as refusal:
            return refusal_response(media, refusal)
        body = await self.process_result(request, result)
        if media == GRAPHQL_RESPONSE and is_request_error(body):
            # Refused before execution: no `data` at all (GraphQL spec, "Response Format"), hence a 4xx or 5xx.
            body.pop("data", None)
        return graphql_response(media, body, status_of(media, body), sub_response.headers)

    async def _read(self, request: Request) -> GraphQLRequest:
        if request.method == "GET":
            return from_query_string(request.query_params)
        if request.method == "POST":
            return from_body(request.headers.get("content-type"), await request.body())
        raise Refusal(405, "Send GraphQL requests with GET (queries) or POST", {"allow": "GET, POST"})

    async def _run(self, operation: GraphQLRequest, context: Context, *, over_get: bool) -> ExecutionResult:
        if (refusal := oversized(operation.query, self.limits)) is not None:
            return _request_error(context, refusal)
        try:
            return await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                allowed_operation_types=_allowed(over_get, queries_via_get=self.allow_queries_via_get),
                operation_extensions=operation.extensions,
            )
        except InvalidOperationTypeError as exc:
            kind = exc.operation_type
            message = SUBSCRIPTIONS if kind is OperationType.SUBSCRIPTION else f"Send {kind.value} operations with POST"
            # GET is safe (prefetched, cached, logged with its URL): nothing that changes data runs over it.
            if over_get:
                raise Refusal(405, message, {"allow": "POST"}) from None
            return _request_error(context, _bad_request(message))
        except CannotGetOperationTypeError as exc:
            return _request_error(context, _bad_request(exc.as_http_error_reason()))
        except MissingQueryError:
            raise Refusal(400, "The request has no GraphQL document (`query`)") from None

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
            coded_here = [(e, public_error(e, request_id)) for e in result.errors if not has_code(e)]
            public = {id(e): p for e, p in coded_here}
            result.errors = [public.get(id(e), e) for e in result.errors]
            _count(request, [p for _, p in coded_here])
        return await super().process_result(request, result)


def _allowed(over_get: bool, *, queries_via_get: bool) -> set[OperationType]:
    if over_get:
        return {OperationType.QUERY} if queries_via_get else set()
    # Subscriptions run over the websocket only.
    return {OperationType.QUERY, OperationType.MUTATION}


def _bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": ErrorCode.BAD_USER_INPUT.value})


def _request_error(context: Context, error: GraphQLError) -> ExecutionResult:
    """A request refused by the view itself, outside the operation (and so outside `ErrorPolicy`, which counts the
    operation's errors): counted here."""
    if context.request is not None:
        _count(context.request, [error])
    return ExecutionResult(data=None, errors=[error])


async def _refused(error: GraphQLError) -> AsyncGenerator[ExecutionResult, None]:
    # What the schema's stream yields for an operation refused before execution: graphql-transport-ws answers it
    # with an `error` message for that operation, and the connection stays open.
    yield PreExecutionError(data=None, errors=[error])


def _count(request: HTTPConnection, errors: list[GraphQLError]) -> None:
    count: ErrorCounter | None = getattr(request.state, ERROR_COUNTER, None)
    if count is not None and errors:
        count(error_codes(errors))
