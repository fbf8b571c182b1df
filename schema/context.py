"""Per-request GraphQL context: who is asking, when, and the request's own DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    # A websocket connection outlives its access token: there the token is kept, and `require_actor` checks it
    # again at every use (UNAUTHENTICATED once it has expired).
    token: str | None = None
    # The app's clock, for work that outlives the request's `now`: the operations of a websocket connection and
    # each delivery of a subscription (`for_operation`, `renew`).
    clock: Callable[[], datetime] | None = None
    # Made at the first use: most operations load nothing through them.
    _loaders: Loaders | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self)
        return self._loaders

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise self.auth_error or Unauthenticated("sign in first")
        if self.token is not None:
            self.services.accounts.tokens.verify(self.token, now=self.current_time())
        return self.actor

    def current_time(self) -> datetime:
        """The clock's time where there is a clock, else `now`."""
        return self.clock() if self.clock is not None else self.now

    def for_operation(self) -> Context:
        """This context for one operation of a websocket connection: the connection's caller, token and
        request, with the operation's own time, audit bookkeeping and DataLoaders. Shared by the connection's
        operations, a context would date every one of them at connection time and audit a patient once per
        connection instead of once per operation."""
        context = replace(self)  # without this one's loaders: the copy makes its own
        context.renew()
        return context

    def renew(self) -> None:
        """Starts the next unit of work of a long-lived operation (each delivery of a subscription is one):
        the current time, audit bookkeeping that has audited no one yet, empty DataLoaders."""
        self.now = self.current_time()
        self.meta = RequestMeta(request_id=self.meta.request_id, ip=self.meta.ip, operation=self.meta.operation)
        if self.actor is not None:
            self.actor = replace(self.actor, meta=self.meta)
        self._loaders = None


Info = StrawberryInfo[Context, None]
