"""Alert queries and mutations: unpack, call the service, map the result."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.domain.alert.service import AlertFilter
from schema.alert.types import Alert, AlertSettings, AlertSettingsInput, AlertStatus, Severity
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection


async def alert_page(
    info: Info,
    *,
    patient_id: strawberry.ID | None,
    status: list[AlertStatus] | None,  # type: ignore[valid-type]
    severity: list[Severity] | None,  # type: ignore[valid-type]
    escalated: bool | None,
    first: int | None,
    after: str | None,
) -> Connection[Alert]:
    ctx = info.context
    where = AlertFilter(
        statuses=status or (),
        severities=severity or (),
        patient_id=parse_id(patient_id, "patient", "patient_id") if patient_id is not None else None,
        escalated=escalated,
    )
    page = await ctx.services.alerts.search(ctx.require_actor(), where, first=first, after=after, now=ctx.now)
    return Connection[Alert].from_page(page, Alert.from_model)


@strawberry.type
class AlertQuery:
    @strawberry.field(description="Clinic staff: the clinic's alerts, newest (or most recently reopened) first.")
    async def alerts(
        self,
        info: Info,
        status: list[AlertStatus] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
        severity: list[Severity] | None = None,  # type: ignore[valid-type]
        patient_id: strawberry.ID | None = None,
        escalated: Annotated[
            bool | None,
            strawberry.argument(description="true: only alerts escalated to the admins; false: only the others."),
        ] = None,
    ) -> Connection[Alert]:
        return await alert_page(
            info,
            patient_id=patient_id,
            status=status,
            severity=severity,
            escalated=escalated,
            first=first,
            after=after,
        )

    @strawberry.field(description="Clinic admins: thresholds, escalation delay and crisis message in force.")
    async def alert_settings(self, info: Info) -> AlertSettings:
        ctx = info.context
        return AlertSettings.from_domain(await ctx.services.alerts.settings(ctx.require_actor()))


@strawberry.type
class AlertMutation:
    @strawberry.mutation(
        description="Someone is on it. Only an open alert can be acknowledged; "
        "a new report of a critical or high alert reopens it."
    )
    async def acknowledge_alert(self, info: Info, id: strawberry.ID, note: str | None = None) -> Alert:
        ctx = info.context
        alert = await ctx.services.alerts.acknowledge(ctx.require_actor(), parse_id(id, "alert"), note, now=ctx.now)
        return Alert.from_model(alert)

    @strawberry.mutation(
        description="Closes an open or acknowledged alert; a new report then raises a new one "
        "(loss of response: once per session)."
    )
    async def resolve_alert(self, info: Info, id: strawberry.ID, note: str | None = None) -> Alert:
        ctx = info.context
        alert = await ctx.services.alerts.resolve(ctx.require_actor(), parse_id(id, "alert"), note, now=ctx.now)
        return Alert.from_model(alert)

    @strawberry.mutation(
        description="Clinic admins: change thresholds, escalation delay or crisis message, "
        "from the settings version read (CONFLICT if they changed since)."
    )
    async def update_alert_settings(self, info: Info, input: AlertSettingsInput) -> AlertSettings:
        ctx = info.context
        updated = await ctx.services.alerts.update_settings(ctx.require_actor(), input.to_domain(), now=ctx.now)
        return AlertSettings.from_domain(updated)
