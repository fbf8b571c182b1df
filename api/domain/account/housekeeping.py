"""Removing credentials that can no longer be used. Nothing here touches health data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q

from api.domain.account.models import RefreshToken, ThrottleBucket

# Kept a while after expiry so that a reuse attempt shortly after still finds its family and revokes it.
REFRESH_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    throttle_buckets: int


async def purge_expired_credentials(*, now: datetime, throttle_window: timedelta) -> Purged:
    tokens = await RefreshToken.filter(expires_at__lt=now - REFRESH_GRACE).delete()
    idle = Q(window_started_at__lt=now - throttle_window) & (Q(locked_until=None) | Q(locked_until__lt=now))
    buckets = await ThrottleBucket.filter(idle).delete()
    return Purged(refresh_tokens=tokens, throttle_buckets=buckets)
