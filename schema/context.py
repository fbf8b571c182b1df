"""Per-request GraphQL context: who is asking, when, and the request's own DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from api.domain.actor import Actor, RequestMeta
from api.domain.errors import DomainError, Unauthenticated
from api.domain.services import Services
from schema.loaders import Loaders


@dataclass
class Context:
    services: Services
    now: datetime
    actor: Actor | None = None
    meta: RequestMeta = field(default_factory=RequestMeta)
    # Why the bearer token was refused, shown only when an operation needs a signed-in actor.
    auth_error: DomainError | None = None
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    # graphql-transport-ws: the `connection_init` payload (Strawberry fills it in).
    connection_params: dict[str, object] | None = None
    # A websocket connection outlives its access token: there the token and the clock are kept, and
    # `require_actor` checks the token again at every use (UNAUTHENTICATED once it has expired).
    token: str | None = None
    clock: Callable[[], datetime] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise self.auth_error or Unauthenticated("sign in first")
        if self.token is not None:
            self.services.accounts.tokens.verify(self.token, now=self.current_time())
        return self.actor

    def current_time(self) -> datetime:
        """`now` for a request; the clock's time for an operation that outlives it (a subscription)."""
        return self.clock() if self.clock is not None else self.now


Info = StrawberryInfo[Context, None]
