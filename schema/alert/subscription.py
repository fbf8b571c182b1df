"""`alertRaised`: a clinic's alerts as they are raised (and again when escalated), over graphql-transport-ws.

The connection is authenticated at `connection_init` (api/graphql.py). Each notice is read back through the
domain as the subscriber, so only the subscriber's clinic's alerts arrive, each an audited read.

Token expiry: the connection outlives its access token. The token is checked again before every delivery; once
it has expired the subscription ends with UNAUTHENTICATED instead of delivering, and the client reconnects with
a fresh token (and reads `alerts` for anything raised meanwhile). Nothing is delivered on an expired token.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from api.domain.alert import feed
from schema.alert.types import Alert
from schema.context import Info


@strawberry.type
class AlertSubscription:
    @strawberry.subscription(
        description="Clinic staff: each alert of your clinic as it is raised, and again when it is escalated."
    )
    async def alert_raised(self, info: Info) -> AsyncGenerator[Alert, None]:
        ctx = info.context
        actor = ctx.require_actor()
        async with feed.subscribe(ctx.services.alerts.broker, actor) as notices:
            async for notice in notices:
                ctx.require_actor()  # the token may have expired since the last delivery
                alert = await feed.read(actor, notice, now=ctx.current_time())
                if alert is not None:
                    yield Alert.from_model(alert)
