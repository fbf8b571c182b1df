"""The GraphQL endpoint: bearer-token authentication and the per-request context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api.domain.actor import RequestMeta
from api.domain.errors import DomainError, Unauthenticated
from api.domain.services import Services
from schema.context import Context
from schema.errors import has_code, public_error


class InterludeGraphQL(GraphQL[Context, None]):
    def __init__(self, *args: object, services: Services, clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.services = services
        self.clock = clock

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        now = self.clock()
        client = request.client
        state = request.scope.setdefault("state", {})
        meta = RequestMeta(request_id=state.get("request_id", ""), ip=client.host if client else None)
        # The request log line reads the operation name from here once the operation has run.
        state["meta"] = meta
        context = Context(services=self.services, now=now, meta=meta, request=request, response=response)
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated("use an Authorization: Bearer <access token> header")
                context.actor = self.services.accounts.tokens.verify(token.strip(), now=now, meta=meta)
                state["actor_id"] = str(context.actor.account_id)
            except DomainError as exc:
                context.auth_error = exc
        return context

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Strawberry answers an exception raised by an extension's hook outside the operation, and so outside
        # `ErrorPolicy`. Such errors get their code (and, if unexpected, their log line) here.
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id", "")
            result.errors = [e if has_code(e) else public_error(e, request_id) for e in result.errors]
        return await super().process_result(request, result)
