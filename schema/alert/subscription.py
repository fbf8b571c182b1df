"""Live alerts over graphql-transport-ws: `alertRaised` for clinic staff, `alertEscalated` for clinic admins.

The connection is authenticated at `connection_init` (api/graphql.py). Each notice is read back through the
domain as the subscriber, so only the subscriber's clinic's alerts arrive, each an audited read.

Each delivery is a unit of work of its own (`Context.renew`): fields resolved for it (the alert's `patient`)
read and audit at the delivery's time, once per delivery, not at the time the subscription started.

Token expiry: the connection outlives its access token. The token is checked again before every delivery; once
it has expired the subscription ends with UNAUTHENTICATED instead of delivering, and the client reconnects with
a fresh token (and reads `alerts` for anything raised meanwhile). Nothing is delivered on an expired token.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import strawberry

from api.domain.actor import Actor
from api.domain.alert import feed
from api.domain.alert.broker import AlertBroker, AlertNotice
from schema.alert.types import Alert
from schema.context import Info

Feed = Callable[[AlertBroker, Actor], AbstractAsyncContextManager[AsyncIterator[AlertNotice]]]


@strawberry.type
class AlertSubscription:
    @strawberry.subscription(
        description=(
            "Clinic staff: each alert of your clinic as it is raised or reopened, when an open critical alert "
            "gets a new report, and when it is escalated."
        )
    )
    def alert_raised(self, info: Info) -> AsyncGenerator[Alert, None]:
        return _deliveries(info, feed.subscribe)

    @strawberry.subscription(
        description="Clinic admins: each alert of your clinic as it is escalated (unacknowledged for too long)."
    )
    def alert_escalated(self, info: Info) -> AsyncGenerator[Alert, None]:
        return _deliveries(info, feed.escalations)


async def _deliveries(info: Info, subscribe: Feed) -> AsyncGenerator[Alert, None]:
    ctx = info.context
    async with subscribe(ctx.services.alerts.broker, ctx.require_actor()) as notices:
        async for notice in notices:
            ctx.renew()
            actor = ctx.require_actor()  # the token may have expired since the last delivery
            alert = await feed.read(actor, notice, now=ctx.now)
            if alert is not None:
                yield Alert.from_model(alert)
