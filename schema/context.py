"""Per-request GraphQL context: who is asking, when, and the request's own DataLoaders."""

from __future__ import annotations

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
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise self.auth_error or Unauthenticated("sign in first")
        return self.actor


Info = StrawberryInfo[Context, None]
