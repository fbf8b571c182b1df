"""Registering a phone or browser for push."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.push import devices
from api.domain.push.models import Device as DeviceModel
from api.domain.push.models import ProviderName
from schema.context import Info
from schema.ids import to_id

PushProvider = strawberry.enum(ProviderName, name="PushProvider")


@strawberry.type(description="A push target. The token itself is never returned.")
class Device:
    id: strawberry.ID
    provider: PushProvider  # type: ignore[valid-type]
    platform: str | None
    last_seen_at: datetime
    enabled: bool

    @classmethod
    def from_model(cls, d: DeviceModel) -> Device:
        return cls(
            id=to_id(d.id),
            provider=d.provider,
            platform=d.platform,
            last_seen_at=d.last_seen_at,
            enabled=d.disabled_at is None,
        )


@strawberry.input
class DeviceInput:
    provider: PushProvider  # type: ignore[valid-type]
    token: str = strawberry.field(description="FCM/APNs/Expo token, or the Web Push subscription as JSON.")
    platform: str | None = None


@strawberry.type
class DeviceMutation:
    @strawberry.mutation(description="Registers this phone; a token seen before moves to the signed-in patient.")
    async def register_device(self, info: Info, input: DeviceInput) -> Device:
        ctx = info.context
        device = await devices.register(ctx.require_actor(), input.provider, input.token, input.platform, now=ctx.now)
        return Device.from_model(device)

    @strawberry.mutation(description="Stops pushes to this token; false when it is not one of yours.")
    async def unregister_device(self, info: Info, token: str) -> bool:
        ctx = info.context
        return await devices.unregister(ctx.require_actor(), token, now=ctx.now)
