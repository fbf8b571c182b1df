"""Running operations through `schema.execute` with variables, as a given actor at a given time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.domain.actor import Actor, RequestMeta
from api.domain.services import Services
from schema import build_schema
from schema.context import Context

SCHEMA = build_schema()


@dataclass
class Result:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]]

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code", "") for e in self.errors]

    @property
    def fields(self) -> list[str | None]:
        return [e.get("extensions", {}).get("field") for e in self.errors]

    def ok(self) -> dict[str, Any]:
        assert not self.errors, self.errors
        assert self.data is not None
        return self.data


class GraphQLClient:
    def __init__(self, services: Services, now: datetime) -> None:
        self.services = services
        self.now = now

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        actor: Actor | None = None,
        now: datetime | None = None,
        ip: str | None = "198.51.100.1",
        request_id: str = "test-request",
    ) -> Result:
        meta = RequestMeta(request_id=request_id, ip=ip)
        if actor is not None:
            # A fresh actor per operation, as the HTTP layer builds one per request.
            actor = Actor(actor.account_id, actor.role, actor.clinic_id, actor.patient_id, meta=meta)
        context = Context(services=self.services, now=now or self.now, actor=actor, meta=meta)
        result = await SCHEMA.execute(query, variable_values=variables, context_value=context)
        errors = [dict(e.formatted) for e in result.errors or []]
        return Result(data=result.data, errors=errors)
